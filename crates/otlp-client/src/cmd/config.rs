//! `validate-config` and `explain-config`: thin wrappers over otlp-config.

use std::{io::Write, process::ExitCode};

use otlp::config::{
    CommandOutcome, Env, Flags, OutputFormat, explain_config, fix_file, validate_file,
};

use crate::cli::{ExplainArgs, Format, ValidateArgs};

fn format(f: Format) -> OutputFormat {
    match f {
        Format::Text => OutputFormat::Text,
        Format::Json => OutputFormat::Json,
    }
}

fn finish(outcome: CommandOutcome) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) must not turn into a panic.
    let _ = out.write_all(outcome.text.as_bytes());
    let _ = out.flush();
    ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(2))
}

/// `validate-config [--fix [--write]] [--format json] FILE`.
pub(crate) fn validate(args: &ValidateArgs) -> ExitCode {
    let outcome = if args.fix {
        fix_file(&args.file, args.write, format(args.format))
    } else {
        validate_file(&args.file, format(args.format))
    };
    finish(outcome)
}

/// `explain-config [--config FILE] [--endpoint URL] [--protocol P]`.
pub(crate) fn explain(args: &ExplainArgs) -> ExitCode {
    finish(explain_config(
        args.config.as_deref(),
        Env::from_process(),
        super::flags(
            args.endpoint.as_deref(),
            args.protocol.map(crate::cli::ProtocolArg::as_str),
        ),
        format(args.format),
    ))
}

/// Flags as otlp-config takes them.
pub(crate) fn flags_from(endpoint: Option<&str>, protocol: Option<&str>) -> Flags {
    let mut flags = Flags::new();
    if let Some(e) = endpoint {
        flags = flags.with_flag("--endpoint", "endpoint", e);
    }
    if let Some(p) = protocol {
        flags = flags.with_flag("--protocol", "protocol", p);
    }
    flags
}
