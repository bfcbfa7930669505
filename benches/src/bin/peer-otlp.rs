//! `peer-otlp`: the peer producer (opentelemetry_sdk batch processor +
//! opentelemetry-otlp) for the end-to-end benchmarks; see
//! [`otlp_benches::PeerConfig::USAGE`].

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its terminal.

use std::process::ExitCode;

use otlp_benches::{PeerConfig, peer, shape};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", PeerConfig::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--describe") {
        print!("{}", shape::describe());
        return ExitCode::SUCCESS;
    }
    let result = PeerConfig::from_args(args).and_then(|config| {
        let report = peer::run(&config)?;
        Ok(report.to_json(&config))
    });
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peer-otlp: {e}");
            ExitCode::FAILURE
        }
    }
}
