//! Process-wide logging setup for the binary: text or JSON lines on stderr or
//! in a file, filtered like `RUST_LOG`, with the log ring attached.

use std::{fmt, fs::OpenOptions, path::PathBuf, str::FromStr, sync::Arc};

use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::{LogRing, ObservabilityError};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level), for `jq`.
    Json,
}

/// The error of parsing a [`LogFormat`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format '{0}': use text or json")]
pub struct UnknownLogFormat(pub String);

/// What [`init_logging`] sets up.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Text or JSON.
    pub format: LogFormat,
    /// `RUST_LOG`-style directives; `None` reads `RUST_LOG`, falling back to `info`.
    pub filter: Option<String>,
    /// Append to this file instead of writing to stderr.
    pub file: Option<PathBuf>,
    /// Also keep events in this ring (for `/debug/logs`).
    pub ring: Option<LogRing>,
}

// === impl LogFormat ===

impl LogFormat {
    /// The format's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "plain" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Installs the process-wide `tracing` subscriber described by `options`.
///
/// `RUST_LOG` is read only when `options.filter` is `None`; an unset or empty
/// variable means `info`.
///
/// # Errors
///
/// - [`ObservabilityError::LogFilter`] when the filter does not parse;
/// - [`ObservabilityError::LogFile`] when the file cannot be opened;
/// - [`ObservabilityError::LoggingAlreadyInitialised`] when a global
///   subscriber is already installed.
pub fn init_logging(options: LogOptions) -> Result<(), ObservabilityError> {
    let directives = match options.filter {
        Some(filter) => filter,
        None => std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| String::from("info")),
    };
    let filter =
        EnvFilter::builder()
            .parse(&directives)
            .map_err(|e| ObservabilityError::LogFilter {
                filter: directives.clone(),
                message: e.to_string(),
            })?;

    let output: Box<dyn Layer<Registry> + Send + Sync> = match options.file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| ObservabilityError::LogFile { path, source })?;
            fmt_layer(options.format, Arc::new(file))
        }
        None => fmt_layer(options.format, std::io::stderr),
    };

    tracing_subscriber::registry()
        .with(output)
        .with(options.ring)
        .with(filter)
        .try_init()
        .map_err(|_| ObservabilityError::LoggingAlreadyInitialised)
}

fn fmt_layer<W>(format: LogFormat, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        // No colour codes: the `ansi` feature of tracing-subscriber is off, so
        // log files and `kubectl logs` stay plain.
        LogFormat::Text => layer.with_ansi(false).boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_case_insensitively_and_rejects_others() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!(
            "yaml".parse::<LogFormat>(),
            Err(UnknownLogFormat("yaml".to_owned()))
        );
    }

    #[test]
    fn an_invalid_filter_is_reported_with_its_text() {
        let err = init_logging(LogOptions {
            filter: Some("info,[".to_owned()),
            ..LogOptions::default()
        })
        .unwrap_err();
        assert!(matches!(err, ObservabilityError::LogFilter { .. }), "{err}");
        assert!(err.to_string().contains("info,["));
    }
}
