//! The command-line interface: every command, flag and exit code of `otlp-client`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code: success.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code: the command ran and found a problem (invalid config, failed
/// diagnosis, items lost in `send`).
pub(crate) const EXIT_PROBLEM: u8 = 1;
/// Exit code: bad usage or an input that cannot be read (clap also uses 2).
pub(crate) const EXIT_USAGE: u8 = 2;

/// The exit codes as `--help` and the man page list them.
pub(crate) const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 the command found a problem (invalid config, failed diagnosis, undelivered items); 2 bad usage or unreadable input.";

/// otlp-client: the otlp-rust agent and operator tool.
///
/// Exit codes: 0 success; 1 the command found a problem (invalid config,
/// failed diagnosis, undelivered items); 2 bad usage or unreadable input.
#[derive(Debug, Parser)]
#[command(name = "otlp-client", version, about, long_about = None, arg_required_else_help = true, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// Same as `validate-config FILE`.
    #[arg(long, value_name = "FILE", global = false)]
    pub(crate) validate_config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,

    /// Also write logs to this file.
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) log_file: Option<PathBuf>,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `otlp=debug`.
    #[arg(long, default_value = "info", global = true, env = "OTLP_LOG")]
    pub(crate) log_level: String,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for jq and log shippers).
    Json,
}

/// Output formats of reporting commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// One JSON document, for machines.
    Json,
}

/// OTLP transport protocols, spelled as `OTEL_EXPORTER_OTLP_PROTOCOL` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProtocolArg {
    /// OTLP/gRPC (collectors listen on port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (port 4318).
    #[value(name = "http/json")]
    HttpJson,
}

/// What to do when the queue is full (`queue.overflow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OverflowArg {
    /// Hold the producer back until there is room: nothing is dropped.
    Block,
    /// Drop the item being added.
    #[value(name = "drop_newest")]
    DropNewest,
    /// Drop the oldest queued item to make room.
    #[value(name = "drop_oldest")]
    DropOldest,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the agent: OTLP receivers -> pipeline -> upstream exporter, with /health and /metrics.
    #[command(
        after_help = "Exit codes: 0 clean stop (SIGTERM/SIGINT); 1 cannot start (invalid config, exporter); 2 bad usage, unreadable config or a port that cannot be bound."
    )]
    Run(RunArgs),
    /// Generate load: send spans, metric points or log records through the exporter, queue and retries.
    #[command(
        after_help = "Exit codes: 0 every item delivered; 1 some item was dropped, failed or left queued, or the exporter cannot be built; 2 bad usage, unreadable config, or an unreadable or malformed --replay file (what was read before the bad line is still sent and reported)."
    )]
    Send(SendArgs),
    /// Run an embedded OTLP receiver that counts what arrives (stands in for a collector).
    #[command(
        after_help = "Exit codes: 0 stopped (signal or --expect reached); 2 bad usage or a port that cannot be bound."
    )]
    Sink(SinkArgs),
    /// Diagnose connectivity to a collector: DNS, TCP, TLS and an OTLP probe, with a verdict per step.
    #[command(
        after_help = "Exit codes: 0 every step passed; 1 a step failed; 2 invalid endpoint, protocol or config (nothing is probed)."
    )]
    Diagnose(DiagnoseArgs),
    /// Check an installation in one go: the config, the effective endpoint, the upstream and the running agent's /health, with a fix per problem.
    #[command(
        after_help = "Exit codes: 0 no check failed (warnings allowed); 1 a check failed; 2 unreadable or non-YAML config."
    )]
    Doctor(DoctorArgs),
    /// A live view of a running agent (from its admin port): rates, queue, concurrency, upstream state, last errors.
    #[command(
        after_help = "Keys: q, Esc or Ctrl-C quit.\n\nExit codes: 0 quit; 1 terminal error; 2 bad usage, unreadable config or no terminal."
    )]
    Top(TopArgs),
    /// Show everything end to end with no external collector: a local receiver, the exporter, a report.
    #[command(after_help = "Exit codes: 0 everything delivered; 1 otherwise.")]
    Demo(DemoArgs),
    /// Validate a config file; --fix applies the safe fixes.
    #[command(after_help = "Exit codes: 0 valid; 1 invalid; 2 unreadable or not YAML.")]
    ValidateConfig(ValidateArgs),
    /// Print the effective config after defaults, file, environment and flags, with each value's source.
    #[command(
        after_help = "Exit codes: 0 valid; 1 invalid (only the problems are printed); 2 unreadable."
    )]
    ExplainConfig(ExplainArgs),
    /// Print a shell completion script (e.g. `otlp-client completions bash > /etc/bash_completion.d/otlp-client`).
    #[command(after_help = "Exit codes: 0 printed; 2 unknown shell.")]
    Completions(CompletionsArgs),
    /// Print the man page in roff (e.g. `otlp-client man | man -l -`).
    #[command(after_help = "Exit codes: 0 printed.")]
    Man,
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Connection flags shared by commands that export.
#[derive(Clone, Debug, Args)]
pub(crate) struct ExportFlags {
    /// Collector endpoint URL (overrides config and OTEL_EXPORTER_OTLP_ENDPOINT); grpc also takes
    /// host:port, TLS unless OTEL_EXPORTER_OTLP_INSECURE=true (plaintext), as the OTLP spec says.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Protocol (overrides config and OTEL_EXPORTER_OTLP_PROTOCOL).
    #[arg(long, value_enum)]
    pub(crate) protocol: Option<ProtocolArg>,
    /// Config file (YAML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) export: ExportFlags,
    /// How long shutdown may take to flush what is queued.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) shutdown_timeout: Duration,
}

/// Signals for `send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SignalArg {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
    /// All three (traces, metrics and logs; `send` does not generate profiles).
    All,
}

/// `send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) export: ExportFlags,
    /// Which signal to generate.
    #[arg(long, value_enum, default_value_t = SignalArg::Traces)]
    pub(crate) signal: SignalArg,
    /// Send the export requests of an OTLP/JSON lines file (as `sink --output`
    /// writes it) instead of generated items; each line's signal is read
    /// from its top-level key, and the data is sent as it is.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["count", "duration", "rate", "signal", "attributes", "attribute_size"]
    )]
    pub(crate) replay: Option<PathBuf>,
    /// Number of items to send (per signal).
    #[arg(long, conflicts_with = "duration")]
    pub(crate) count: Option<u64>,
    /// Send for this long instead of a count, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Items per second (default: as fast as possible).
    #[arg(long)]
    pub(crate) rate: Option<u64>,
    /// Attributes per item.
    #[arg(long, default_value_t = 8)]
    pub(crate) attributes: usize,
    /// Bytes of each attribute value.
    #[arg(long, default_value_t = 16)]
    pub(crate) attribute_size: usize,
    /// Final report format.
    // `--report` is the old spelling, kept as a hidden alias.
    #[arg(long, alias = "report", value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// How long to wait for delivery at the end.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) flush_timeout: Duration,
    /// Queue overflow policy: `block` holds the generator back so nothing is
    /// dropped; `drop_newest` / `drop_oldest` measure what a dropping exporter loses.
    #[arg(long, value_enum, default_value_t = OverflowArg::Block)]
    pub(crate) overflow: OverflowArg,
}

/// `sink`.
#[derive(Debug, Args)]
pub(crate) struct SinkArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub(crate) grpc: SocketAddr,
    /// OTLP/HTTP listen address (also serves GET /stats).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub(crate) http: SocketAddr,
    /// Write every received request as an OTLP/JSON line to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Exit after this many items have arrived (for scripts).
    #[arg(long)]
    pub(crate) expect: Option<u64>,
}

/// `diagnose`.
#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {
    /// Collector endpoint URL (default: from config / environment / localhost).
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Protocol (default: from config / environment / grpc).
    #[arg(long, value_enum)]
    pub(crate) protocol: Option<ProtocolArg>,
    /// Config file (YAML) for TLS files and defaults.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Per-step timeout.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// The old spelling of `--format json`.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub(crate) json: bool,
}

impl DiagnoseArgs {
    /// The output format, `--json` included.
    pub(crate) fn output_format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

/// `doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The agent's config file (YAML); without it, defaults and environment.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The running agent's admin address (default: the config's admin.listen,
    /// 0.0.0.0 reached as 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<SocketAddr>,
    /// Timeout of each network step.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// `top`.
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// The agent's admin address (default: admin.listen of --config, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<SocketAddr>,
    /// The agent's config file, for its admin address.
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "admin")]
    pub(crate) config: Option<PathBuf>,
    /// Time between refreshes.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub(crate) interval: Duration,
}

/// `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Items per signal.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) count: u64,
    /// Protocol of the demo's exporter.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Grpc)]
    pub(crate) protocol: ProtocolArg,
    /// Keep serving /metrics and /health for this long after the report.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub(crate) linger: Duration,
}

/// `validate-config`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The config file.
    pub(crate) file: PathBuf,
    /// Apply the safe fixes and print the fixed YAML with the list of fixes.
    #[arg(long)]
    pub(crate) fix: bool,
    /// With --fix: replace the file (the original is kept as FILE.bak).
    #[arg(long, requires = "fix")]
    pub(crate) write: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// `explain-config`.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The config file (optional: defaults and environment alone are explained too).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[arg(long)]
    /// Endpoint flag, as `run` would take it.
    pub(crate) endpoint: Option<String>,
    /// Protocol flag, as `run` would take it.
    #[arg(long, value_enum)]
    pub(crate) protocol: Option<ProtocolArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

// === impl ProtocolArg ===

impl ProtocolArg {
    /// The config and environment spelling.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }
}

// === impl OverflowArg ===

impl OverflowArg {
    /// The config spelling (`queue.overflow`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::DropNewest => "drop_newest",
            Self::DropOldest => "drop_oldest",
        }
    }
}

/// Parses `10s`, `250ms`, `1m`, with the same rules as config files.
fn parse_duration(s: &str) -> Result<Duration, String> {
    otlp::config::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn value_enums_use_the_config_spellings() {
        for p in ProtocolArg::value_variants() {
            let name = p.to_possible_value().unwrap();
            assert_eq!(name.get_name(), p.as_str());
            assert!(otlp::config::Protocol::VALUES.contains(&p.as_str()));
        }
        for o in OverflowArg::value_variants() {
            let name = o.to_possible_value().unwrap();
            assert_eq!(name.get_name(), o.as_str());
            assert!(otlp::config::Overflow::VALUES.contains(&o.as_str()));
        }
        assert_eq!(
            ProtocolArg::value_variants().len(),
            otlp::config::Protocol::VALUES.len()
        );
        assert_eq!(
            OverflowArg::value_variants().len(),
            otlp::config::Overflow::VALUES.len()
        );
    }
}
