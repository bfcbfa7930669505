//! The `opentelemetry_sdk` bridge end to end on real sockets: spans, log
//! records and metrics made through the official SDK with our processors and
//! exporters arrive at an in-test OTLP/gRPC receiver with every field intact,
//! the `block` policy holds producers back, and flush is bounded.
#![cfg(all(feature = "sdk", feature = "grpc"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry::{
    InstrumentationScope, KeyValue,
    logs::{AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity},
    metrics::MeterProvider as _,
    trace::{SpanContext, TraceContextExt, TraceFlags, Tracer as _, TracerProvider as _},
};
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value::Value},
    logs::v1::ResourceLogs,
    metrics::v1::{AggregationTemporality, Sum, metric::Data, number_data_point},
    trace::v1::ResourceSpans,
};
use opentelemetry_sdk::{
    Resource,
    logs::SdkLoggerProvider,
    metrics::{SdkMeterProvider, Temporality, exporter::PushMetricExporter as _},
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider},
};
use otlp::{
    Otlp,
    config::{Config, Overflow},
    core::{Batch, Classify, ExportResponse, Retryability, Signal},
    sdk::{
        OtlpLogExporter, OtlpLogProcessor, OtlpMetricExporter, OtlpSpanExporter, OtlpSpanProcessor,
    },
    transport::GrpcReceiver,
};
use prost::Message;
use tokio::sync::{oneshot, watch};

// === the in-test receiver ===

/// The receiver's inner service never fails.
#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl Classify for Never {
    fn classify(&self) -> Retryability {
        Retryability::Permanent
    }
}

/// An OTLP/gRPC receiver on 127.0.0.1 that keeps every batch it is sent.
struct Receiver {
    addr: SocketAddr,
    batches: Arc<Mutex<Vec<Batch>>>,
    /// Requests wait until the gate is open: a receiver made with `stalled`
    /// holds every request until [`Receiver::release`].
    gate: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    async fn start() -> Self {
        Self::with_gate(true).await
    }

    async fn stalled() -> Self {
        Self::with_gate(false).await
    }

    async fn with_gate(open: bool) -> Self {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let (gate, opened) = watch::channel(open);
        let svc = {
            let batches = batches.clone();
            tower::service_fn(move |batch: Batch| {
                let batches = batches.clone();
                let mut opened = opened.clone();
                async move {
                    // Held here while the receiver is stalled (the sender side
                    // lives as long as the receiver, so this cannot fail early).
                    let _ = opened.wait_for(|open| *open).await;
                    batches.lock().unwrap().push(batch);
                    Ok::<_, Never>(ExportResponse::success())
                }
            })
        };
        let bound = GrpcReceiver::new(svc)
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            batches,
            gate,
            stop: Some(stop),
        }
    }

    fn release(&self) {
        self.gate.send_replace(true);
    }

    fn batches(&self, signal: Signal) -> Vec<Batch> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.signal() == signal)
            .cloned()
            .collect()
    }

    fn resource_spans(&self) -> Vec<ResourceSpans> {
        self.batches(Signal::Traces)
            .iter()
            .flat_map(|b| {
                ExportTraceServiceRequest::decode(b.bytes().clone())
                    .unwrap()
                    .resource_spans
            })
            .collect()
    }

    fn resource_logs(&self) -> Vec<ResourceLogs> {
        self.batches(Signal::Logs)
            .iter()
            .flat_map(|b| {
                ExportLogsServiceRequest::decode(b.bytes().clone())
                    .unwrap()
                    .resource_logs
            })
            .collect()
    }

    fn span_count(&self) -> usize {
        self.resource_spans()
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.gate.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Config sending every signal to `addr` over gRPC, with no retries and
/// short batches so tests finish promptly.
fn config_for(addr: SocketAddr) -> Config {
    let mut config = Config::default();
    for s in &mut config.signals {
        s.endpoint = format!("http://{addr}");
    }
    config.retry.max_retries = Some(0);
    config.batch.batch_timeout = Duration::from_millis(50);
    config
}

fn build(config: Config) -> Arc<Otlp> {
    Arc::new(Otlp::builder().with_config(config).build().unwrap())
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "bridge-test"),
            KeyValue::new("deployment.environment", "ci"),
        ])
        .build()
}

fn attr<'a>(attrs: &'a [ProtoKeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(s: &str) -> Value {
    Value::StringValue(s.to_owned())
}

fn assert_resource(attrs: &[ProtoKeyValue]) {
    assert_eq!(attr(attrs, "service.name"), Some(&string("bridge-test")));
    assert_eq!(attr(attrs, "deployment.environment"), Some(&string("ci")));
    assert_eq!(attrs.len(), 2, "{attrs:?}");
}

// === spans ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_processor_delivers_names_ids_attributes_resource_and_scope() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
        .build();
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("checkout-lib")
            .with_version("1.2.3")
            .build(),
    );
    let (parent, child): (SpanContext, SpanContext) = tracer.in_span("place-order", |cx| {
        cx.span().set_attribute(KeyValue::new("order.id", 42_i64));
        let parent = cx.span().span_context().clone();
        let child = tracer.in_span("charge-card", |cx| {
            cx.span().set_attribute(KeyValue::new("card.kind", "visa"));
            cx.span().span_context().clone()
        });
        (parent, child)
    });
    provider.shutdown().unwrap();

    let rs = receiver.resource_spans();
    let spans: Vec<_> = rs
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.iter().map(move |sp| (s, sp)))
        .collect();
    assert_eq!(spans.len(), 2);
    for r in &rs {
        assert_resource(&r.resource.as_ref().unwrap().attributes);
    }
    for (scope_spans, _) in &spans {
        let scope = scope_spans.scope.as_ref().unwrap();
        assert_eq!(scope.name, "checkout-lib");
        assert_eq!(scope.version, "1.2.3");
    }
    let find = |name: &str| spans.iter().find(|(_, s)| s.name == name).unwrap().1;
    let p = find("place-order");
    let c = find("charge-card");
    assert_eq!(p.trace_id, parent.trace_id().to_bytes().to_vec());
    assert_eq!(p.span_id, parent.span_id().to_bytes().to_vec());
    assert!(p.parent_span_id.is_empty());
    assert_eq!(c.trace_id, parent.trace_id().to_bytes().to_vec());
    assert_eq!(c.span_id, child.span_id().to_bytes().to_vec());
    assert_eq!(c.parent_span_id, parent.span_id().to_bytes().to_vec());
    assert_eq!(attr(&p.attributes, "order.id"), Some(&Value::IntValue(42)));
    assert_eq!(attr(&c.attributes, "card.kind"), Some(&string("visa")));
    assert!(c.end_time_unix_nano >= c.start_time_unix_nano && c.start_time_unix_nano > 0);

    let traces = otlp.stats().signal(Signal::Traces).clone();
    assert_eq!((traces.accepted, traces.sent), (2, 2));
    assert_eq!(traces.dropped_total() + traces.failed_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_processor_skips_unsampled_spans() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
        .build();
    provider.tracer("t").in_span("dropped-by-sampler", |_| {});
    provider.shutdown().unwrap();
    assert_eq!(otlp.stats().signal(Signal::Traces).accepted, 0);
    assert_eq!(receiver.span_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_exporter_under_the_sdk_batch_processor_delivers_every_span() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(OtlpSpanExporter::new(otlp.clone()))
        .build();
    let tracer = provider.tracer("batch-scope");
    for i in 0..25 {
        tracer.in_span(format!("op-{i}"), |_| {});
    }
    provider.shutdown().unwrap();

    let rs = receiver.resource_spans();
    let mut names: Vec<String> = rs
        .iter()
        .flat_map(|r| &r.scope_spans)
        .inspect(|s| assert_eq!(s.scope.as_ref().unwrap().name, "batch-scope"))
        .flat_map(|s| s.spans.iter().map(|sp| sp.name.clone()))
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("op-{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    for r in &rs {
        assert_resource(&r.resource.as_ref().unwrap().attributes);
    }
    assert_eq!(otlp.stats().signal(Signal::Traces).sent, 25);
}

// === logs ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_processor_delivers_body_severity_attributes_trace_context_and_target() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_log_processor(OtlpLogProcessor::new(otlp.clone()))
        .build();
    let logger = provider.logger("payments");
    let trace_id = opentelemetry::trace::TraceId::from_bytes([7; 16]);
    let span_id = opentelemetry::trace::SpanId::from_bytes([9; 8]);

    let mut record = logger.create_log_record();
    record.set_body(LogValue::from("card declined"));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.add_attribute("attempt", 3_i64);
    record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
    logger.emit(record);

    let mut targeted = logger.create_log_record();
    targeted.set_body(LogValue::from("retrying"));
    targeted.set_target("payments::retry");
    logger.emit(targeted);
    provider.shutdown().unwrap();

    let rl = receiver.resource_logs();
    for r in &rl {
        assert_resource(&r.resource.as_ref().unwrap().attributes);
    }
    let records: Vec<_> = rl
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| s.log_records.iter().map(move |l| (s, l)))
        .collect();
    assert_eq!(records.len(), 2);
    let body = |l: &opentelemetry_proto::tonic::logs::v1::LogRecord| {
        l.body.as_ref().and_then(|b: &AnyValue| b.value.clone())
    };
    let (scope, first) = records
        .iter()
        .find(|(_, l)| body(l) == Some(string("card declined")))
        .unwrap();
    assert_eq!(scope.scope.as_ref().unwrap().name, "payments");
    assert_eq!(first.severity_number, Severity::Warn as i32);
    assert_eq!(first.severity_text, "WARN");
    assert_eq!(
        attr(&first.attributes, "attempt"),
        Some(&Value::IntValue(3))
    );
    assert_eq!(first.trace_id, vec![7; 16]);
    assert_eq!(first.span_id, vec![9; 8]);
    assert!(first.observed_time_unix_nano > 0);
    let (scope, _) = records
        .iter()
        .find(|(_, l)| body(l) == Some(string("retrying")))
        .unwrap();
    assert_eq!(scope.scope.as_ref().unwrap().name, "payments::retry");

    let logs = otlp.stats().signal(Signal::Logs).clone();
    assert_eq!((logs.accepted, logs.sent), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_exporter_under_the_sdk_batch_processor_delivers_every_record() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(OtlpLogExporter::new(otlp.clone()))
        .build();
    let logger = provider.logger("batched-logs");
    for i in 0..20 {
        let mut r = logger.create_log_record();
        r.set_body(LogValue::from(format!("line {i}")));
        logger.emit(r);
    }
    provider.shutdown().unwrap();

    let rl = receiver.resource_logs();
    let count: usize = rl
        .iter()
        .flat_map(|r| &r.scope_logs)
        .inspect(|s| assert_eq!(s.scope.as_ref().unwrap().name, "batched-logs"))
        .map(|s| s.log_records.len())
        .sum();
    assert_eq!(count, 20);
    assert_eq!(otlp.stats().signal(Signal::Logs).sent, 20);
}

// === metrics ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_exporter_delivers_cumulative_sums_with_resource_and_scope() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_periodic_exporter(OtlpMetricExporter::new(otlp.clone()))
        .build();
    let counter = provider.meter("orders-meter").u64_counter("orders").build();
    counter.add(3, &[KeyValue::new("region", "eu")]);
    counter.add(4, &[KeyValue::new("region", "eu")]);
    provider.shutdown().unwrap();

    let requests: Vec<_> = receiver
        .batches(Signal::Metrics)
        .iter()
        .map(|b| ExportMetricsServiceRequest::decode(b.bytes().clone()).unwrap())
        .collect();
    let last = requests.last().expect("at least one metrics export");
    let rm = &last.resource_metrics[0];
    assert_resource(&rm.resource.as_ref().unwrap().attributes);
    let sm = &rm.scope_metrics[0];
    assert_eq!(sm.scope.as_ref().unwrap().name, "orders-meter");
    let metric = sm.metrics.iter().find(|m| m.name == "orders").unwrap();
    let Some(Data::Sum(sum)) = &metric.data else {
        panic!("orders is not a sum: {metric:?}")
    };
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(sum.data_points.len(), 1);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(7))
    );
    assert_eq!(
        attr(&sum.data_points[0].attributes, "region"),
        Some(&string("eu"))
    );
    let metrics = otlp.stats().signal(Signal::Metrics).clone();
    assert_eq!(metrics.accepted, requests.len() as u64);
    assert_eq!(metrics.sent, metrics.accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_exporter_takes_the_configured_temporality_preference() {
    let receiver = Receiver::start().await;
    let mut config = config_for(receiver.addr);
    config.metrics_temporality = otlp::config::Temporality::Delta;
    let otlp = build(config);
    let exporter = OtlpMetricExporter::new(otlp.clone());
    assert_eq!(exporter.temporality(), Temporality::Delta);
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .build();
    provider
        .meter("pref-meter")
        .u64_counter("hits")
        .build()
        .add(3, &[]);
    provider.shutdown().unwrap();
    let sum = first_sum(&receiver);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    // lowmemory maps to the SDK's own LowMemory selector.
    let mut config = config_for(receiver.addr);
    config.metrics_temporality = otlp::config::Temporality::LowMemory;
    let exporter = OtlpMetricExporter::new(build(config));
    assert_eq!(exporter.temporality(), Temporality::LowMemory);
}

/// The first metric the receiver got, which must be a sum.
fn first_sum(receiver: &Receiver) -> Sum {
    let batches = receiver.batches(Signal::Metrics);
    let request = ExportMetricsServiceRequest::decode(batches[0].bytes().clone()).unwrap();
    let metric = &request.resource_metrics[0].scope_metrics[0].metrics[0];
    match &metric.data {
        Some(Data::Sum(sum)) => sum.clone(),
        _ => panic!("{} is not a sum: {metric:?}", metric.name),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_exporter_reports_delta_temporality_when_asked() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let exporter = OtlpMetricExporter::new(otlp.clone()).with_temporality(Temporality::Delta);
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .build();
    let counter = provider.meter("delta-meter").u64_counter("hits").build();
    counter.add(5, &[]);
    provider.shutdown().unwrap();

    let sum = first_sum(&receiver);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(5))
    );
}

// === block policy and bounded waits ===

/// Config whose queue holds 4 spans and blocks producers for up to 30 s.
fn blocking_config(addr: SocketAddr) -> Config {
    let mut config = config_for(addr);
    config.queue.overflow = Overflow::Block;
    config.queue.max_items = 4;
    config.batch.max_batch_size = 1;
    // The block deadline (and the export timeout of the stalled requests).
    for s in &mut config.signals {
        s.timeout = Duration::from_secs(30);
    }
    config
}

/// Polls `cond` every 20 ms for at most 10 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Where the producer of `block_policy_*` ends its spans.
#[derive(Clone, Copy)]
enum Producer {
    /// A plain thread outside any runtime.
    Thread,
    /// A task on a multi-thread runtime worker.
    Worker,
}

async fn block_policy_holds_the_producer_back(producer: Producer) {
    const SPANS: u64 = 10;
    let receiver = Receiver::stalled().await;
    let otlp = build(blocking_config(receiver.addr));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
        .build();
    let ended = Arc::new(AtomicU64::new(0));
    let produce = {
        let tracer = provider.tracer("producer");
        let ended = ended.clone();
        move || {
            for i in 0..SPANS {
                tracer.in_span(format!("span-{i}"), |_| {});
                ended.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let done = match producer {
        Producer::Thread => {
            let t = std::thread::spawn(produce);
            Box::new(move || t.is_finished()) as Box<dyn Fn() -> bool>
        }
        Producer::Worker => {
            let t = tokio::spawn(async move { produce() });
            Box::new(move || t.is_finished())
        }
    };

    // The queue fills to its bound while the receiver holds every request...
    assert!(eventually(|| otlp.stats().signal(Signal::Traces).accepted >= 4).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and the producer waits instead of dropping.
    let traces = otlp.stats().signal(Signal::Traces).clone();
    assert_eq!(traces.dropped_total(), 0, "{traces:?}");
    assert!(ended.load(Ordering::SeqCst) < SPANS);
    assert!(!done());

    receiver.release();
    assert!(eventually(&done).await, "the producer was never let go");
    assert_eq!(ended.load(Ordering::SeqCst), SPANS);
    provider.shutdown().unwrap();
    let traces = otlp.stats().signal(Signal::Traces).clone();
    assert_eq!((traces.accepted, traces.sent), (SPANS, SPANS), "{traces:?}");
    assert_eq!(traces.dropped_total(), 0);
    assert_eq!(receiver.span_count() as u64, SPANS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_holds_back_a_producer_thread_outside_the_runtime() {
    block_policy_holds_the_producer_back(Producer::Thread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn block_policy_holds_back_a_producer_on_a_runtime_worker() {
    block_policy_holds_the_producer_back(Producer::Worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_holds_back_the_sdk_batch_processor_behind_the_span_exporter() {
    const SPANS: u64 = 10;
    let receiver = Receiver::stalled().await;
    let otlp = build(blocking_config(receiver.addr));
    // The SDK's processor polls `export` on its own thread, with no tokio context.
    let processor = BatchSpanProcessor::builder(OtlpSpanExporter::new(otlp.clone()))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(20))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("batched");
    for i in 0..SPANS {
        tracer.in_span(format!("span-{i}"), |_| {});
    }

    assert!(eventually(|| otlp.stats().signal(Signal::Traces).accepted >= 4).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let traces = otlp.stats().signal(Signal::Traces).clone();
    // The export waits for room: nothing dropped, the rest not yet accepted.
    assert_eq!(traces.dropped_total(), 0, "{traces:?}");
    assert!(traces.accepted < SPANS, "{traces:?}");

    receiver.release();
    assert!(eventually(|| otlp.stats().signal(Signal::Traces).sent == SPANS).await);
    provider.shutdown().unwrap();
    assert_eq!(otlp.stats().signal(Signal::Traces).dropped_total(), 0);
    assert_eq!(receiver.span_count() as u64, SPANS);
}

#[tokio::test]
async fn block_policy_on_a_current_thread_runtime_drops_and_counts_instead_of_deadlocking() {
    let receiver = Receiver::stalled().await;
    let otlp = build(blocking_config(receiver.addr));
    let processor = OtlpSpanProcessor::new(otlp.clone());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("current-thread");
    for i in 0..10 {
        tracer.in_span(format!("span-{i}"), |_| {});
    }
    let traces = otlp.stats().signal(Signal::Traces).clone();
    assert_eq!(traces.accepted, 10);
    assert_eq!(traces.dropped_total(), 6, "{traces:?}");
    drop(receiver);
    let report = otlp.shutdown(Duration::from_secs(5)).await;
    let t = report.stats.signal(Signal::Traces);
    assert_eq!(t.sent + t.dropped_total() + t.failed_total(), 10);
    // Off the runtime thread, so the bounded shutdown wait can make progress.
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn force_flush_times_out_within_its_bound_on_a_current_thread_runtime() {
    let receiver = Receiver::stalled().await;
    let otlp = build(config_for(receiver.addr));
    let bound = Duration::from_millis(300);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()).with_flush_timeout(bound))
        .build();
    provider.tracer("t").in_span("waits", |_| {});
    let started = Instant::now();
    // The flush cannot progress while this thread blocks: it must time out, not hang.
    let res = provider.force_flush();
    // The provider wraps each processor's error in its own.
    assert!(format!("{res:?}").contains("Timeout(300ms)"), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    receiver.release();
    // Off the runtime thread, the same processor drains within its bound.
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receiver.span_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_flush_waits_for_delivery_on_a_multi_thread_runtime() {
    let receiver = Receiver::start().await;
    let otlp = build(config_for(receiver.addr));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            OtlpSpanProcessor::new(otlp.clone()).with_flush_timeout(Duration::from_secs(10)),
        )
        .build();
    provider.tracer("t").in_span("flushed", |_| {});
    provider.force_flush().unwrap();
    // Flush returned only after the span reached the receiver.
    assert_eq!(receiver.span_count(), 1);
    assert_eq!(otlp.stats().signal(Signal::Traces).sent, 1);
    provider.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_flush_times_out_within_its_bound_on_a_multi_thread_runtime() {
    let receiver = Receiver::stalled().await;
    let otlp = build(config_for(receiver.addr));
    let bound = Duration::from_millis(300);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()).with_flush_timeout(bound))
        .build();
    provider.tracer("t").in_span("stuck", |_| {});
    let started = Instant::now();
    let res = provider.force_flush();
    // The provider wraps each processor's error in its own.
    assert!(format!("{res:?}").contains("Timeout(300ms)"), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    receiver.release();
    provider.shutdown().unwrap();
    assert_eq!(receiver.span_count(), 1);
}
