//! `sink`: an embedded OTLP receiver that counts what arrives. It stands in
//! for a collector in the demo and in tests.

use std::{
    fs::File,
    future::{Ready, ready},
    io::{BufWriter, Write},
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use otlp::{
    core::{Batch, Classify, ExportResponse, Retryability, Signal},
    transport::{GrpcReceiver, HttpReceiver, ReceiveError},
};
use serde::Serialize;
use tokio::sync::Notify;
use tower::Service;

use crate::cli::{EXIT_OK, EXIT_USAGE, SinkArgs};

/// Per-signal counts of what arrived.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    requests: [AtomicU64; Signal::COUNT],
    items: [AtomicU64; Signal::COUNT],
    bytes: [AtomicU64; Signal::COUNT],
    changed: Notify,
}

/// A snapshot of [`Counts`], as `GET /stats` serves it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Stats {
    pub(crate) requests: u64,
    pub(crate) spans: u64,
    pub(crate) data_points: u64,
    pub(crate) log_records: u64,
    pub(crate) profiles: u64,
    pub(crate) bytes: u64,
}

/// The sink's inner service: counts each batch, optionally appends it to a
/// file as an OTLP/JSON line, and accepts it.
#[derive(Clone, Debug)]
pub(crate) struct Counter {
    counts: Arc<Counts>,
    output: Option<Arc<Mutex<BufWriter<File>>>>,
}

/// Why the sink refused a request (only the optional file output can fail).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    #[error("sink output file: {0}")]
    Output(String),
}

/// A running sink.
#[derive(Debug)]
pub(crate) struct RunningSink {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) counts: Arc<Counts>,
    stop: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

// === impl Counts ===

impl Counts {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |a: &[AtomicU64; Signal::COUNT], s: Signal| a[s.index()].load(Ordering::Relaxed);
        Stats {
            requests: self
                .requests
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .sum(),
            spans: get(&self.items, Signal::Traces),
            data_points: get(&self.items, Signal::Metrics),
            log_records: get(&self.items, Signal::Logs),
            profiles: get(&self.items, Signal::Profiles),
            bytes: self.bytes.iter().map(|a| a.load(Ordering::Relaxed)).sum(),
        }
    }

    /// Waits until at least `n` items (all signals) have arrived.
    pub(crate) async fn wait_for(&self, n: u64) {
        loop {
            let notified = self.changed.notified();
            let s = self.snapshot();
            if s.spans + s.data_points + s.log_records + s.profiles >= n {
                return;
            }
            notified.await;
        }
    }
}

// === impl Counter ===

impl Counter {
    pub(crate) fn new(output: Option<&Path>) -> std::io::Result<Self> {
        let output = match output {
            Some(p) => Some(Arc::new(Mutex::new(BufWriter::new(File::create(p)?)))),
            None => None,
        };
        Ok(Self {
            counts: Arc::default(),
            output,
        })
    }

    fn write_json(&self, batch: &Batch) -> Result<(), SinkError> {
        let Some(out) = &self.output else {
            return Ok(());
        };
        let line = otlp::transport::to_otlp_json(batch.signal(), batch.bytes())
            .map_err(|e| SinkError::Output(e.to_string()))?;
        let mut w = out
            .lock()
            .map_err(|_| SinkError::Output("writer poisoned by an earlier panic".into()))?;
        w.write_all(&line)
            .and_then(|()| w.write_all(b"\n"))
            .and_then(|()| w.flush())
            .map_err(|e| SinkError::Output(e.to_string()))
    }
}

impl Service<Batch> for Counter {
    type Response = ExportResponse;
    type Error = SinkError;
    type Future = Ready<Result<ExportResponse, SinkError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let res = self.write_json(&batch);
        let i = batch.signal().index();
        self.counts.requests[i].fetch_add(1, Ordering::Relaxed);
        self.counts.items[i].fetch_add(batch.items(), Ordering::Relaxed);
        self.counts.bytes[i].fetch_add(batch.byte_size() as u64, Ordering::Relaxed);
        self.counts.changed.notify_waiters();
        ready(res.map(|()| ExportResponse::success()))
    }
}

impl Classify for SinkError {
    fn classify(&self) -> Retryability {
        // A local disk problem: the sender may try again later.
        Retryability::Retryable
    }
}

// === impl RunningSink ===

impl RunningSink {
    /// Binds both receivers and serves them in the background.
    pub(crate) async fn start(
        grpc: SocketAddr,
        http: SocketAddr,
        output: Option<&Path>,
    ) -> Result<Self, String> {
        let counter =
            Counter::new(output).map_err(|e| format!("cannot create the output file: {e}"))?;
        let counts = counter.counts.clone();
        let stats_counts = counts.clone();
        let grpc_rx = GrpcReceiver::new(counter.clone())
            .bind(grpc)
            .await
            .map_err(|e: ReceiveError| e.to_string())?;
        let http_rx = HttpReceiver::new(counter)
            .with_get_route(
                "/stats",
                Arc::new(move || {
                    serde_json::to_string(&stats_counts.snapshot()).unwrap_or_default()
                }),
            )
            .bind(http)
            .await
            .map_err(|e: ReceiveError| e.to_string())?;
        let stop = Arc::new(Notify::new());
        let (grpc, http) = (grpc_rx.local_addr(), http_rx.local_addr());
        let tasks = vec![
            {
                let stop = stop.clone();
                tokio::spawn(
                    async move { grpc_rx.serve(async move { stop.notified().await }).await },
                )
            },
            {
                let stop = stop.clone();
                tokio::spawn(
                    async move { http_rx.serve(async move { stop.notified().await }).await },
                )
            },
        ];
        Ok(Self {
            grpc,
            http,
            counts,
            stop,
            tasks,
        })
    }

    /// Stops both receivers and waits for them.
    pub(crate) async fn stop(self) {
        self.stop.notify_waiters();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// `sink`: serve until SIGINT/SIGTERM (or `--expect N` items), then print the counts.
pub(crate) async fn sink(args: SinkArgs) -> ExitCode {
    let sink = match RunningSink::start(args.grpc, args.http, args.output.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("otlp-client sink: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    println!(
        "{}",
        serde_json::json!({ "grpc": sink.grpc.to_string(), "http": sink.http.to_string(),
            "stats": format!("http://{}/stats", sink.http) })
    );
    let counts = sink.counts.clone();
    match args.expect {
        Some(n) => tokio::select! {
            () = counts.wait_for(n) => {}
            () = super::shutdown_signal() => {}
        },
        None => super::shutdown_signal().await,
    }
    let stats = counts.snapshot();
    sink.stop().await;
    println!("{}", serde_json::to_string(&stats).unwrap_or_default());
    ExitCode::from(EXIT_OK)
}
