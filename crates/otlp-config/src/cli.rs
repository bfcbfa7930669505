//! What the `validate-config` and `explain-config` commands do, as plain
//! functions returning an exit code and the text to print, so the CLI in
//! `otlp-client` is a few lines per command.

use std::{fmt::Write as _, path::Path};

use serde_json::json;

use crate::{
    env::Env,
    error::ConfigError,
    explain::{Explained, problem_json},
    fix::autofix,
    resolve::Sources,
    source::{ConfigFile, Flags, Problem, Severity},
};

/// Exit code: the config is valid (warnings allowed).
pub const EXIT_VALID: i32 = 0;
/// Exit code: the config has errors (all of them are printed).
pub const EXIT_INVALID: i32 = 1;
/// Exit code: the file cannot be read, is not YAML, or cannot be written.
pub const EXIT_UNREADABLE: i32 = 2;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object, for machines.
    Json,
}

/// What a command prints and the exit code it ends with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// 0 valid, 1 invalid, 2 unreadable / not YAML / not writable.
    pub exit_code: i32,
    /// The text to print on stdout (ends with a newline).
    pub text: String,
}

/// `validate-config [--format json] FILE`: validates the file on its own
/// (defaults + file; the environment is not consulted).
pub fn validate_file(path: impl AsRef<Path>, format: OutputFormat) -> CommandOutcome {
    let path = path.as_ref();
    let file = match ConfigFile::read(path) {
        Ok(f) => f,
        Err(e) => return unreadable(path, &e, format),
    };
    let problems = Sources::new().with_file(file).resolve().problems;
    report(path, &problems, format, None)
}

/// `validate-config --fix [--write] FILE`: applies the safe fixes.
///
/// Without `write`, the text holds the fixed YAML, then the list of fixes and
/// the remaining problems. With `write`, the original is kept as `FILE.bak`,
/// the fixed text replaces `FILE` (only when something was fixed), and the
/// text lists the fixes and remaining problems. The exit code reflects the
/// fixed config.
pub fn fix_file(path: impl AsRef<Path>, write: bool, format: OutputFormat) -> CommandOutcome {
    let path = path.as_ref();
    let file = match ConfigFile::read(path) {
        Ok(f) => f,
        Err(e) => return unreadable(path, &e, format),
    };
    let fixed = match autofix(&file) {
        Ok(f) => f,
        Err(e) => return unreadable(path, &e, format),
    };
    if write && !fixed.fixes.is_empty() {
        let mut backup = path.as_os_str().to_owned();
        backup.push(".bak");
        let backup = std::path::PathBuf::from(backup);
        let written = std::fs::write(&backup, file.text())
            .map_err(|source| ConfigError::Write {
                path: backup.clone(),
                source,
            })
            .and_then(|()| {
                std::fs::write(path, &fixed.text).map_err(|source| ConfigError::Write {
                    path: path.to_owned(),
                    source,
                })
            });
        if let Err(e) = written {
            return unreadable(path, &e, format);
        }
    }
    let mut summary = String::new();
    match format {
        OutputFormat::Text => {
            if !write {
                summary.push_str(&fixed.text);
                if !fixed.text.ends_with('\n') {
                    summary.push('\n');
                }
                summary.push_str("---\n");
            }
            if fixed.fixes.is_empty() {
                summary.push_str("no safe fixes to apply\n");
            } else {
                let _ = writeln!(
                    summary,
                    "{} fix(es){}:",
                    fixed.fixes.len(),
                    if write {
                        " written (original kept as .bak)"
                    } else {
                        ""
                    }
                );
                for f in &fixed.fixes {
                    let _ = writeln!(summary, "  {f}");
                }
            }
            report_text(path, &fixed.remaining, Some(summary))
        }
        OutputFormat::Json => {
            let fixes: Vec<_> = fixed
                .fixes
                .iter()
                .map(|f| json!({"path": f.path, "line": f.line, "before": f.before, "after": f.after, "reason": f.reason}))
                .collect();
            let extra = json!({"fixes": fixes, "fixed_yaml": fixed.text, "written": write && !fixed.fixes.is_empty()});
            report_json(path, &fixed.remaining, Some(extra))
        }
    }
}

/// `explain-config [--config FILE]`: the effective config from `file`, `env` and `flags`.
/// Exit code 1 when the result has errors (they are listed), 2 when the file is unreadable.
pub fn explain_config(
    file: Option<&Path>,
    env: Env,
    flags: Flags,
    format: OutputFormat,
) -> CommandOutcome {
    let mut sources = Sources::new().with_env(env).with_flags(flags);
    if let Some(path) = file {
        match ConfigFile::read(path) {
            Ok(f) => sources = sources.with_file(f),
            Err(e) => return unreadable(path, &e, format),
        }
    }
    let resolved = sources.resolve();
    let exit_code = if resolved.is_valid() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    };
    let explained: Explained = resolved.explain();
    let mut text = match format {
        OutputFormat::Text => explained.render_text(),
        OutputFormat::Json => explained.render_json(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    CommandOutcome { exit_code, text }
}

fn unreadable(path: &Path, e: &ConfigError, format: OutputFormat) -> CommandOutcome {
    let (line, column) = match e {
        ConfigError::Syntax { line, column, .. } => (Some(*line), Some(*column)),
        _ => (None, None),
    };
    let text = match format {
        OutputFormat::Text => match (line, column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: error: {e}\n", path.display()),
            _ => format!("error: {e}\n"),
        },
        OutputFormat::Json => {
            let mut s = json!({
                "file": path.display().to_string(), "valid": false, "exit_code": EXIT_UNREADABLE,
                "error": {"message": e.to_string(), "line": line, "column": column},
            })
            .to_string();
            s.push('\n');
            s
        }
    };
    CommandOutcome {
        exit_code: EXIT_UNREADABLE,
        text,
    }
}

fn exit_code(problems: &[Problem]) -> i32 {
    if problems.iter().any(|p| p.severity == Severity::Error) {
        EXIT_INVALID
    } else {
        EXIT_VALID
    }
}

fn report(
    path: &Path,
    problems: &[Problem],
    format: OutputFormat,
    prefix: Option<String>,
) -> CommandOutcome {
    match format {
        OutputFormat::Text => report_text(path, problems, prefix),
        OutputFormat::Json => report_json(path, problems, None),
    }
}

fn report_text(path: &Path, problems: &[Problem], prefix: Option<String>) -> CommandOutcome {
    let mut text = prefix.unwrap_or_default();
    for p in problems {
        let _ = writeln!(text, "{p}");
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    let code = exit_code(problems);
    let verdict = if code == EXIT_VALID {
        "valid"
    } else {
        "invalid"
    };
    let _ = writeln!(
        text,
        "{}: {verdict} ({errors} error(s), {warnings} warning(s))",
        path.display()
    );
    CommandOutcome {
        exit_code: code,
        text,
    }
}

fn report_json(
    path: &Path,
    problems: &[Problem],
    extra: Option<serde_json::Value>,
) -> CommandOutcome {
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let code = exit_code(problems);
    let mut value = json!({
        "file": path.display().to_string(),
        "valid": code == EXIT_VALID,
        "exit_code": code,
        "errors": errors,
        "warnings": problems.len() - errors,
        "problems": problems.iter().map(problem_json).collect::<Vec<_>>(),
    });
    if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(map)) =
        (extra, &mut value)
    {
        map.extend(extra);
    }
    let mut text = value.to_string();
    text.push('\n');
    CommandOutcome {
        exit_code: code,
        text,
    }
}
