//! `count-sink`: a counting OTLP receiver (gRPC and HTTP/protobuf) for the
//! end-to-end benchmarks; see [`otlp_benches::SinkConfig::USAGE`].

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its terminal.

use std::process::ExitCode;

use otlp_benches::{BenchesError, Sink, SinkConfig, process_cpu_s};
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", SinkConfig::USAGE);
        return ExitCode::SUCCESS;
    }
    let result = SinkConfig::from_args(args).and_then(|config| {
        // One thread is plenty for counting and keeps the sink off the
        // producer's cores as much as possible.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BenchesError::Runtime)?
            .block_on(serve(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("count-sink: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: SinkConfig) -> Result<(), BenchesError> {
    let sink = Sink::bind(&config).await?;
    println!("{}", sink.addresses_json());
    let mut term = signal(SignalKind::terminate()).map_err(BenchesError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(BenchesError::Runtime)?;
    let reason = tokio::select! {
        () = sink.expected() => {
            tokio::time::sleep(config.linger).await;
            "expect"
        }
        _ = term.recv() => "sigterm",
        _ = int.recv() => "sigint",
        () = tokio::time::sleep(config.max_time) => "timeout",
    };
    let mut json = sink.snapshot().to_json();
    json.insert("event".into(), "final".into());
    json.insert("reason".into(), reason.into());
    json.insert("cpu_s".into(), process_cpu_s().into());
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
