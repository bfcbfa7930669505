//! The crate's error type.

use std::path::PathBuf;

use crate::source::{Problem, Severity};

/// Why a config could not be loaded, fixed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file '{}': {source}; check the path and its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not a YAML document.
    #[error("config file '{}' is not valid YAML at line {line}, column {column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The config has errors; every problem is listed.
    #[error("config is invalid with {} error(s), first: {}; run validate-config for the full list", count_errors(.problems), first_error(.problems))]
    Invalid {
        /// Every problem found (errors and warnings).
        problems: Vec<Problem>,
    },
    /// A fixed config file or its backup could not be written.
    #[error("cannot write '{}': {source}; check the directory's permissions", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn count_errors(problems: &[Problem]) -> usize {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count()
}

fn first_error(problems: &[Problem]) -> String {
    problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .map(|p| {
            let loc = p.location().map(|l| format!("{l}: ")).unwrap_or_default();
            format!("{loc}{}: {}", p.path, p.message)
        })
        .unwrap_or_default()
}

impl otlp_core::Classify for ConfigError {
    /// Config errors need a human: never retryable.
    fn classify(&self) -> otlp_core::Retryability {
        otlp_core::Retryability::Permanent
    }
}
