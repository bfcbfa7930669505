//! Test support: the error type, the results file, the `otlp-client` binary,
//! the Python interpreter and process memory figures.

use std::{
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The environment variable that turns on the long scenarios.
pub const FULL_ENV: &str = "OTLP_RELIABILITY_FULL";
/// The environment variable naming the JSON-lines results file.
pub const RESULTS_ENV: &str = "OTLP_RELIABILITY_RESULTS";

/// What went wrong in test support.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// A socket or file operation failed.
    #[error("{what} failed: {source}; check that 127.0.0.1 is usable and the disk is writable")]
    Io {
        /// The operation.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `cargo build -p otlp-client` failed.
    #[error("building otlp-client failed ({0}); run `cargo build -p otlp-client` to see why")]
    Build(String),
    /// The Python interpreter of the interop tests is missing.
    #[error("python interpreter '{0}' not found; run `bash .ci/run` (or set OTLP_PYTHON)")]
    NoPython(PathBuf),
}

/// One scenario's figures, as written to the results file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Which suite (file) the scenario belongs to.
    pub suite: &'static str,
    /// The scenario's name.
    pub scenario: String,
    /// `grpc`, `http` or `-`.
    pub protocol: &'static str,
    /// The outcome the scenario expects, in words.
    pub expected: String,
    /// Items handed to the product.
    pub sent: u64,
    /// Items delivered to the receiver.
    pub delivered: u64,
    /// Items that the design promises to deliver and were not delivered.
    pub lost: u64,
    /// Items delivered more than once.
    pub duplicated: u64,
    /// Items dropped or failed by design (with the reason in `expected`).
    pub dropped_or_failed: u64,
    /// Peak resident set size of the process under test, when measured.
    pub peak_rss_bytes: Option<u64>,
    /// Time from the fault's end to full delivery, when measured.
    pub recover_ms: Option<u64>,
    /// Cases run (fuzzing) or requests made.
    pub cases: Option<u64>,
}

/// Whether the long scenarios run (`OTLP_RELIABILITY_FULL=1`).
pub fn full_mode() -> bool {
    std::env::var(FULL_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Appends one scenario's figures to the results file named by
/// `OTLP_RELIABILITY_RESULTS` (one JSON object per line); does nothing when
/// the variable is unset, so plain `cargo test` leaves no files behind.
pub fn record(f: &Figures) {
    let Ok(path) = std::env::var(RESULTS_ENV) else {
        return;
    };
    let line = serde_json::json!({
        "suite": f.suite,
        "scenario": f.scenario,
        "protocol": f.protocol,
        "expected": f.expected,
        "sent": f.sent,
        "delivered": f.delivered,
        "lost": f.lost,
        "duplicated": f.duplicated,
        "dropped_or_failed": f.dropped_or_failed,
        "peak_rss_bytes": f.peak_rss_bytes,
        "recover_ms": f.recover_ms,
        "cases": f.cases,
        "full": full_mode(),
    })
    .to_string();
    // One write of one line with O_APPEND: lines from parallel tests do not interleave.
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `otlp-client` binary: `<target>/debug/otlp-client`, built once with
/// `cargo build -p otlp-client` when missing (the target directory comes from
/// `CARGO_TARGET_DIR`, else `<root>/target`). `cargo test --workspace` builds
/// it before the tests run; alone, `cargo test -p otlp-e2e` uses whatever
/// binary is there, so build it first when its code changed.
///
/// # Errors
///
/// [`E2eError::Build`] when the build fails.
pub fn client_binary() -> Result<PathBuf, E2eError> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            let bin = target.join("debug").join("otlp-client");
            if bin.exists() {
                return Ok(bin);
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "otlp-client"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(workspace_root())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(status.to_string());
            }
            if bin.exists() {
                Ok(bin)
            } else {
                Err(format!("{} missing after the build", bin.display()))
            }
        })
        .clone()
        .map_err(E2eError::Build)
}

/// The Python interpreter of the interop tests: `OTLP_PYTHON`, else
/// `<root>/.ci/venv/bin/python`.
///
/// # Errors
///
/// [`E2eError::NoPython`] when it does not exist.
pub fn python() -> Result<PathBuf, E2eError> {
    let p = std::env::var_os("OTLP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".ci/venv/bin/python"));
    if p.exists() {
        Ok(p)
    } else {
        Err(E2eError::NoPython(p))
    }
}

/// The peak resident set size (`VmHWM`) of a process, from `/proc/<pid>/status`.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
