//! `ours-sdk`: the same `opentelemetry_sdk` tracer as the peer, exported by
//! our SDK bridge (`otlp::sdk::OtlpSpanProcessor`), for the end-to-end
//! benchmarks; see [`otlp_benches::OursConfig::USAGE`].

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its terminal.

use std::process::ExitCode;

use otlp_benches::{
    OursConfig,
    ours::{self, Path},
    shape,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", OursConfig::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--describe") {
        print!("{}", shape::describe());
        return ExitCode::SUCCESS;
    }
    let result = OursConfig::from_args(Path::Sdk, args).and_then(|config| {
        let report = ours::run(&config)?;
        Ok(report.to_json(&config))
    });
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ours-sdk: {e}");
            ExitCode::FAILURE
        }
    }
}
