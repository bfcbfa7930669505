//! `run`: the agent. OTLP receivers -> pipeline -> upstream exporter, with the
//! admin server (`/health`, `/metrics`, `/debug/*`) beside it.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use otlp::{
    Intake, Otlp,
    config::{DEFAULT_RECEIVER_GRPC, DEFAULT_RECEIVER_HTTP, Env},
    observability::{AdminServer, AdminState, LogRing},
    transport::{GrpcReceiver, HttpReceiver},
};
use tokio::sync::watch;

use crate::cli::{EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, ProtocolArg, RunArgs};

/// `run --config FILE`.
pub(crate) async fn run(args: RunArgs, ring: LogRing) -> ExitCode {
    let mut builder = Otlp::builder()
        .with_env(Env::from_process())
        .with_flags(super::flags(
            args.export.endpoint.as_deref(),
            args.export.protocol.map(ProtocolArg::as_str),
        ));
    if let Some(path) = &args.export.config {
        builder = match builder.with_config_file(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("otlp-client run: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
    }
    let otlp = match builder.build() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("otlp-client run: {e}");
            return ExitCode::from(EXIT_PROBLEM);
        }
    };
    let config = otlp.config().clone();
    let (grpc_addr, http_addr) = match &config.receivers {
        Some(r) => (r.grpc, r.http),
        None if config.receivers_enabled == Some(false) => {
            eprintln!(
                "otlp-client run: receivers.enabled is false, so the agent would receive nothing; remove it (or set it to true) to receive on {DEFAULT_RECEIVER_GRPC} and {DEFAULT_RECEIVER_HTTP}, or set receivers.grpc / receivers.http"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        None => (
            parse_addr(DEFAULT_RECEIVER_GRPC),
            parse_addr(DEFAULT_RECEIVER_HTTP),
        ),
    };
    // One intake budget for both receivers (receivers.intake_budget).
    let limits = Intake::receiver_limits(&config);
    let receivers = usize::from(grpc_addr.is_some()) + usize::from(http_addr.is_some());
    let limits = limits
        .clone()
        .with_max_connections(super::fdlimit::fit_connections(
            limits.max_connections(),
            receivers,
            AdminServer::DEFAULT_MAX_CONNECTIONS,
        ));
    // Both receivers serve TLS when `receivers.tls` is set; the admin server
    // stays plaintext (it is meant for the node's probes and scrapers).
    let tls = Intake::receiver_tls(&config);
    let scheme = if tls.is_some() { "tls" } else { "plaintext" };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = Vec::new();

    let state = AdminState::new(otlp.metrics().clone(), otlp.health_checker())
        .with_logs(ring)
        .with_profiler((**otlp.profiler()).clone());
    match AdminServer::bind(config.admin.listen, state).await {
        Ok(admin) => {
            tracing::info!(addr = %admin.local_addr(), "admin server: /health /metrics /debug/logs /debug/profile");
            let stop = stopped();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = admin.serve(stop).await {
                    tracing::error!(error = %e, "admin server failed");
                }
            }));
        }
        Err(e) => {
            eprintln!("otlp-client run: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some(addr) = grpc_addr {
        let mut receiver = GrpcReceiver::new(otlp.intake()).with_limits(limits.clone());
        if let Some(tls) = &tls {
            receiver = receiver.with_tls(tls.clone());
        }
        match receiver.bind(addr).await {
            Ok(rx) => {
                tracing::info!(addr = %rx.local_addr(), transport = scheme, "OTLP/gRPC receiver listening");
                let stop = stopped();
                tasks.push(tokio::spawn(async move { rx.serve(stop).await }));
            }
            Err(e) => {
                eprintln!("otlp-client run: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if let Some(addr) = http_addr {
        let mut receiver = HttpReceiver::new(otlp.intake()).with_limits(limits.clone());
        if let Some(tls) = &tls {
            receiver = receiver.with_tls(tls.clone());
        }
        match receiver.bind(addr).await {
            Ok(rx) => {
                tracing::info!(addr = %rx.local_addr(), transport = scheme, "OTLP/HTTP receiver listening");
                let stop = stopped();
                tasks.push(tokio::spawn(async move { rx.serve(stop).await }));
            }
            Err(e) => {
                eprintln!("otlp-client run: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    tracing::info!(
        upstream = %config.signal(otlp::core::Signal::Traces).endpoint,
        "agent running; SIGTERM or Ctrl-C stops it"
    );
    super::shutdown_signal().await;
    tracing::info!(timeout = ?args.shutdown_timeout, "shutting down: stopping intake, flushing");
    // Stop intake first so nothing new is acknowledged, then drain.
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let report = otlp.shutdown(args.shutdown_timeout).await;
    // One field per figure, so JSON logs carry numbers a log pipeline can
    // query (`fields.sent`), not a Debug dump of the report.
    let totals = report.stats.total();
    tracing::info!(
        sent = report.sent,
        dropped = report.dropped,
        failed = report.failed,
        left_queued = report.left_queued,
        drained = report.drained,
        accepted = totals.accepted,
        traces_sent = report.stats.signal(otlp::core::Signal::Traces).sent,
        metrics_sent = report.stats.signal(otlp::core::Signal::Metrics).sent,
        logs_sent = report.stats.signal(otlp::core::Signal::Logs).sent,
        profiles_sent = report.stats.signal(otlp::core::Signal::Profiles).sent,
        "shutdown complete"
    );
    println!(
        "shutdown: sent {} dropped {} failed {} left queued {}{}",
        report.sent,
        report.dropped,
        report.failed,
        report.left_queued,
        if report.drained {
            ""
        } else {
            " (deadline reached before the queue drained)"
        }
    );
    ExitCode::from(EXIT_OK)
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}
