//! Installs what the test suite needs beyond cargo: a Python virtualenv with
//! the pinned OpenTelemetry peers, Prometheus' `promtool`, and `cargo-hack`
//! (from the crate registry) for the feature matrix.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{Result, run};

/// The pinned Python packages of the interop tests.
const REQUIREMENTS: &str = "tests/python/requirements.txt";

/// The virtualenv's interpreter, which tests find through `OTLP_PYTHON`.
pub(crate) fn venv_python(root: &Path) -> PathBuf {
    root.join(".ci/venv/bin/python")
}

pub(crate) fn install(root: &Path) -> Result {
    python(root)?;
    promtool()?;
    cargo_hack()
}

/// The pinned cargo-hack, built from the crate registry (about a minute on
/// the project machine) when `cargo hack` is missing.
const CARGO_HACK_VERSION: &str = "0.6.46";

fn cargo_hack() -> Result {
    if works("cargo", &["hack", "--version"]) {
        return Ok(());
    }
    run(
        "cargo",
        &[
            "install",
            "--locked",
            "cargo-hack",
            "--version",
            CARGO_HACK_VERSION,
        ],
        &[],
    )
}

/// Creates `.ci/venv` and installs the pinned requirements, unless the venv
/// already holds exactly these requirements.
fn python(root: &Path) -> Result {
    let wanted = fs::read_to_string(root.join(REQUIREMENTS))
        .map_err(|e| format!("reading {REQUIREMENTS}: {e}"))?;
    let venv = root.join(".ci/venv");
    let stamp = venv.join("requirements.installed");
    if venv_python(root).exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        println!("python venv up to date ({})", venv.display());
        return Ok(());
    }
    let venv_s = venv.to_string_lossy().into_owned();
    run("python3", &["-m", "venv", &venv_s], &[])?;
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    run(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            REQUIREMENTS,
        ],
        &[],
    )?;
    fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

/// Checks for `promtool`, installing Debian's `prometheus` package when we
/// run as root (CI and the project machines) and it is missing.
fn promtool() -> Result {
    if works("promtool", &["--version"]) {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return Err(
            "promtool not found: install Prometheus' tools (Debian: apt-get install prometheus)"
                .to_owned(),
        );
    }
    run("apt-get", &["update", "-qq"], &[])?;
    run(
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
        ],
        &[("DEBIAN_FRONTEND", "noninteractive")],
    )?;
    if works("promtool", &["--version"]) {
        Ok(())
    } else {
        Err("promtool still not found after apt-get install prometheus".to_owned())
    }
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
