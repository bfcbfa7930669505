//! The commands that need a tokio runtime and logging.

pub(crate) mod config;
mod demo;
mod diagnose;
mod doctor;
mod fdlimit;
mod generate;
pub(crate) mod generate_docs;
mod http;
mod replay;
mod run;
mod send;
pub(crate) mod sink;
pub(crate) mod stdout;
pub(crate) mod style;
pub(crate) mod top;

use std::{path::Path, process::ExitCode};

use otlp::observability::{LogFormat as ObsLogFormat, LogOptions, LogRing, init_logging};

pub(crate) use self::config::flags_from as flags;
use crate::cli::{Command, EXIT_USAGE, LogFormat};

/// Sets up logging and a multi-thread runtime, then runs an async command.
pub(crate) fn runtime(
    format: &LogFormat,
    file: Option<&Path>,
    level: &str,
    command: Command,
) -> ExitCode {
    // A closed stdout never makes a command panic (see `stdout`).
    stdout::exit_quietly_on_broken_stdout();
    let ring = LogRing::default();
    let options = LogOptions {
        format: match format {
            LogFormat::Text => ObsLogFormat::Text,
            LogFormat::Json => ObsLogFormat::Json,
        },
        filter: Some(level.to_owned()),
        file: file.map(Path::to_path_buf),
        ring: Some(ring.clone()),
    };
    if let Err(e) = init_logging(options) {
        eprintln!("otlp-client: cannot set up logging: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("otlp-client")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otlp-client: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    rt.block_on(async move {
        match command {
            Command::Run(args) => run::run(args, ring).await,
            Command::Send(args) => send::send(args).await,
            Command::Sink(args) => sink::sink(args).await,
            Command::Diagnose(args) => diagnose::diagnose(args).await,
            Command::Doctor(args) => doctor::doctor(args).await,
            Command::Demo(args) => demo::demo(args, ring).await,
            Command::ValidateConfig(_)
            | Command::ExplainConfig(_)
            | Command::Completions(_)
            | Command::Man
            | Command::Top(_) => ExitCode::from(EXIT_USAGE),
        }
    })
}

/// Resolves when SIGINT or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
