//! otlp-config alone: resolves a configuration from a YAML file (the path
//! given as the first argument, or a built-in sample) and this process's
//! `OTEL_EXPORTER_OTLP_*` environment, then prints where every effective
//! value came from, or every problem with its position and a hint.
//!
//! Run it with `cargo run -p otlp-config --example explain [agent.yaml]`,
//! e.g. `OTEL_EXPORTER_OTLP_TIMEOUT=2500 cargo run -p otlp-config --example explain`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // An example reports on the terminal.

use otlp_config::{ConfigFile, Env, Sources, explain};

const SAMPLE: &str = "\
endpoint: http://collector:4318
protocol: http/protobuf
compression: gzip
headers:
  x-tenant: team-a
  authorization: Bearer secret
retry:
  max_retries: 4
";

fn main() -> std::process::ExitCode {
    let file = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => ConfigFile::parse(&path, &text),
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => ConfigFile::parse("sample.yaml", SAMPLE),
    };
    let file = match file {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let sources = Sources::new().with_file(file).with_env(Env::from_process());
    // Header values that carry secrets (authorization, api keys) are redacted.
    print!("{}", explain(&sources).render_text());
    std::process::ExitCode::SUCCESS
}
