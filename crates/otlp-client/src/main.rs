//! `otlp-client`: the otlp-rust agent and operator tool.
//!
//! One binary, several commands (see `otlp-client --help`): `run` is the
//! agent, `send` / `sink` / `demo` generate and receive load, `diagnose`
//! checks connectivity, `validate-config` / `explain-config` check config.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its terminal.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, EXIT_USAGE, Format};

/// The agent forwards requests of hundreds of KiB. glibc's malloc hands such
/// buffers back to the kernel and faults fresh pages in for the next request;
/// jemalloc keeps freed pages for reuse (and returns them after a decay time).
/// Release builds only: debug builds keep the system allocator, so the
/// valgrind leak check (tests/tests/agent.rs) sees every allocation.
#[cfg(all(feature = "jemalloc", not(debug_assertions)))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The seed guide's spelling: `otlp-client --validate-config FILE`.
    if let Some(file) = cli.validate_config.clone() {
        return cmd::config::validate(&cli::ValidateArgs {
            file,
            fix: false,
            write: false,
            format: Format::Text,
        });
    }
    let Some(command) = cli.command else {
        eprintln!("otlp-client: no command given; see `otlp-client --help`");
        return ExitCode::from(EXIT_USAGE);
    };
    match command {
        Command::ValidateConfig(args) => cmd::config::validate(&args),
        Command::ExplainConfig(args) => cmd::config::explain(&args),
        Command::Completions(args) => cmd::generate_docs::completions(args.shell),
        Command::Man => cmd::generate_docs::man(),
        Command::Top(args) => cmd::top::top(&args),
        other => cmd::runtime(
            &cli.log_format,
            cli.log_file.as_deref(),
            &cli.log_level,
            other,
        ),
    }
}
