//! `demo`: everything end to end in one process, with no external collector:
//! an embedded sink on free loopback ports, the full export stack, all three
//! signals, a report, and the admin endpoints.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use otlp::{
    Otlp,
    config::{Env, Flags},
    observability::{AdminServer, AdminState, LogRing},
};
use tokio::sync::watch;

use super::{
    send::{Workload, print_report, run_workload},
    sink::RunningSink,
    stdout::outln,
};
use crate::cli::{DemoArgs, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, ProtocolArg};

/// `demo [--count N] [--protocol P]`.
pub(crate) async fn demo(args: DemoArgs, ring: LogRing) -> ExitCode {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sink = match RunningSink::start(loopback, loopback, None).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("otlp-client demo: cannot start the embedded sink: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let endpoint = match args.protocol {
        ProtocolArg::Grpc => format!("http://{}", sink.grpc),
        _ => format!("http://{}", sink.http),
    };
    outln!("embedded sink (stands in for a collector):");
    outln!("  OTLP/gRPC  {}", sink.grpc);
    outln!("  OTLP/HTTP  {}  (GET /stats for counts)", sink.http);

    // The demo's own environment must not redirect it to a real collector.
    let flags = Flags::new()
        .with_flag("--endpoint", "endpoint", endpoint.as_str())
        .with_flag("--protocol", "protocol", args.protocol.as_str())
        .with_flag("--admin", "admin.listen", "127.0.0.1:0")
        .set("queue.overflow", "block");
    let otlp = match Otlp::builder()
        .with_env(Env::from_map(std::iter::empty::<(String, String)>()))
        .with_flags(flags)
        .build()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("otlp-client demo: {e}");
            return ExitCode::from(EXIT_PROBLEM);
        }
    };
    let state = AdminState::new(otlp.metrics().clone(), otlp.health_checker())
        .with_logs(ring)
        .with_profiler((**otlp.profiler()).clone());
    let admin = match AdminServer::bind(loopback, state).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("otlp-client demo: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let admin_addr = admin.local_addr();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let admin_task = tokio::spawn(async move {
        let _ = admin
            .serve(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
    });
    outln!("admin server:");
    outln!("  http://{admin_addr}/          status page (refreshes itself)");
    outln!("  http://{admin_addr}/metrics");
    outln!("  http://{admin_addr}/health");
    outln!("  otlp-client top --admin {admin_addr}   live view in the terminal (with --linger)");
    outln!(
        "\nsending {} spans, {} metric points and {} log records over {} ...\n",
        args.count,
        args.count,
        args.count,
        args.protocol.as_str()
    );
    let workload = Workload {
        // The three stable signals; the agent forwards profiles, but there
        // is no profile generator behind a demo.
        signals: {
            use otlp::core::Signal;
            vec![Signal::Traces, Signal::Metrics, Signal::Logs]
        },
        count: Some(args.count),
        duration: None,
        rate: None,
        attributes: 8,
        attribute_size: 16,
        flush_timeout: Duration::from_secs(60),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let health_before = otlp.health_checker().check_all().await;
    let report = run_workload(&otlp, &workload).await;
    print_report(&report);
    let received = sink.counts.snapshot();
    outln!(
        "\nsink received: {} spans, {} data points, {} log records in {} requests ({} bytes)",
        received.spans,
        received.data_points,
        received.log_records,
        received.requests,
        received.bytes
    );
    outln!(
        "health during the run: {}",
        serde_json::to_string(&health_before.status).unwrap_or_default()
    );
    let metrics = otlp.metrics().encode_text().unwrap_or_default();
    outln!("\nselected self-metrics (full list at http://{admin_addr}/metrics):");
    for line in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && !l.ends_with(" 0")
            && (l.starts_with("otlp_items_")
                || l.starts_with("otlp_requests_total")
                || l.starts_with("otlp_retries_total"))
    }) {
        outln!("  {line}");
    }
    if !args.linger.is_zero() {
        outln!(
            "\nserving /metrics and /health for {:?} more ...",
            args.linger
        );
        tokio::time::sleep(args.linger).await;
    }
    let _ = stop_tx.send(true);
    let _ = admin_task.await;
    sink.stop().await;
    let delivered = received.spans + received.data_points + received.log_records;
    if report.sent == report.generated && delivered >= report.generated {
        outln!("\ndemo: every item was delivered");
        ExitCode::from(EXIT_OK)
    } else {
        outln!(
            "\ndemo: {} of {} items were not delivered (see the report above)",
            report.generated.saturating_sub(report.sent),
            report.generated
        );
        ExitCode::from(EXIT_PROBLEM)
    }
}
