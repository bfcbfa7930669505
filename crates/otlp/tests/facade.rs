#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The facade on both runtime flavours, and outside any runtime.

use std::time::Duration;

use opentelemetry_proto::tonic::{
    common::v1::InstrumentationScope, resource::v1::Resource, trace::v1::Span,
};
use otlp::{Otlp, OtlpError, config::Config, core::Signal};

fn unreachable_config() -> Config {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = Config::default();
    config.retry.max_retries = Some(0);
    for s in &mut config.signals {
        s.endpoint = format!("http://{unused}");
    }
    config
}

#[test]
fn building_outside_a_runtime_is_a_clear_error_not_a_panic() {
    let err = Otlp::builder()
        .with_config(unreachable_config())
        .build()
        .unwrap_err();
    assert!(matches!(err, OtlpError::NoRuntime), "{err}");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

async fn export_and_shut_down() {
    let otlp = Otlp::builder()
        .with_config(unreachable_config())
        .build()
        .unwrap();
    let resource = otlp::resource_group(&Resource::default(), "");
    let scope = otlp::scope_group(&InstrumentationScope::default(), "");
    for i in 0..10 {
        let span = Span {
            name: format!("s{i}"),
            ..Default::default()
        };
        otlp.try_export(otlp::span_item(&resource, &scope, &span))
            .unwrap();
    }
    let report = otlp.shutdown(Duration::from_secs(3)).await;
    let stats = otlp.stats();
    let t = stats.signal(Signal::Traces);
    assert_eq!(t.accepted, 10);
    // Nothing listens: every span ends failed or dropped, and the books balance.
    assert_eq!(report.sent, 0);
    assert_eq!(
        t.sent + t.dropped_total() + t.failed_total() + t.queued_items,
        t.accepted
    );
}

#[test]
fn exports_and_shuts_down_on_a_current_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_and_shut_down());
}

#[test]
fn exports_and_shuts_down_on_a_multi_thread_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_and_shut_down());
}

/// A listener that accepts connections and reads them, but never answers.
async fn silent_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_configured_timeout_of_300ms_bounds_each_attempt_against_a_server_that_never_answers() {
    let addr = silent_server().await;
    for protocol in ["grpc", "http/protobuf"] {
        let flags = otlp::config::Flags::new()
            .set("endpoint", format!("http://{addr}"))
            .set("protocol", protocol)
            .set("timeout", "300ms")
            .set("retry.max_retries", "1")
            .set("retry.initial_backoff", "10ms")
            .set("retry.max_backoff", "10ms");
        let otlp = Otlp::builder().with_flags(flags).build().unwrap();
        let resource = otlp::resource_group(&Resource::default(), "");
        let scope = otlp::scope_group(&InstrumentationScope::default(), "");
        otlp.try_export(otlp::span_item(&resource, &scope, &Span::default()))
            .unwrap();
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), otlp.flush())
            .await
            .expect("two attempts of 300ms end well within 5s");
        let elapsed = started.elapsed();
        // Two attempts (one retry) of 300ms each, plus the batch timeout.
        assert!(
            elapsed >= Duration::from_millis(600),
            "{protocol}: {elapsed:?}"
        );
        let t = otlp.stats().signal(Signal::Traces).clone();
        assert_eq!((t.sent, t.failed_total()), (0, 1), "{protocol}: {t:?}");
        let last = otlp.last_error(Signal::Traces).unwrap_or_default();
        // gRPC's channel says "Timeout expired", HTTP "timed out after 300ms".
        let lower = last.to_ascii_lowercase();
        assert!(
            lower.contains("timeout expired") || lower.contains("timed out after 300ms"),
            "{protocol}: {last}"
        );
        otlp.shutdown(Duration::from_secs(1)).await;
    }
}
