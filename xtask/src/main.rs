//! `cargo xtask`: the project's automation, written in Rust so it runs
//! wherever cargo does (the `xtask` pattern: an alias in `.cargo/config.toml`
//! runs this package).
//!
//! Commands:
//! - `ci`: everything CI checks, in order (set-up, fmt, clippy, feature
//!   matrix, tests, doc tests, docs, duplicate dependencies).
//! - `tidy`: the repository hygiene checks (also a `#[test]`).
//! - `deps`: fails on a duplicated crate version outside the allow-list.
//! - `build-times`: the clean build time of each component crate alone.
//! - `bench`: the end-to-end comparison with opentelemetry-otlp (BENCHMARKS.md).
//! - `reliability`: the full reliability suite (RELIABILITY.md).
//! - `setup`: installs the test peers (Python venv, promtool).

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its terminal.

mod bench;
mod deps;
mod reliability;
mod setup;
mod tidy;

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

/// The component crates a downstream user can pick one at a time.
const COMPONENTS: [&str; 6] = [
    "otlp-core",
    "otlp-config",
    "otlp-transport",
    "otlp-pipeline",
    "otlp-resilience",
    "otlp-observability",
];

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let res = match cmd {
        "ci" => ci(rest),
        "tidy" => tidy::run(&root()),
        "deps" => deps::check(&root()),
        "build-times" => build_times(),
        "bench" => bench::run(rest),
        "reliability" => reliability::run(rest),
        "setup" => setup::install(&root()),
        "help" | "--help" | "-h" => {
            println!("{}", HELP);
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n\n{HELP}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "usage: cargo xtask <command>

commands:
  ci            set-up, fmt, clippy, feature matrix, tests, doc tests, docs, duplicate-dependency check
  tidy          repository hygiene checks (also run as a test)
  deps          fail on a duplicated dependency version outside the allow-list
  build-times   clean build time of each component crate alone
  bench         end-to-end comparison with opentelemetry-otlp, rewrites BENCHMARKS.md
                (--quick, --runs N, --spans N; `bench criterion [args]` runs cargo bench)
  reliability   the full fault, outage, crash and leak suite; rewrites RELIABILITY.md (--quick)
  setup         install the interop peers (Python venv) and check promtool";

/// The workspace root, derived from this package's manifest directory.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command in the workspace root, echoing it, failing on a non-zero exit.
pub(crate) fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result {
    println!("\n$ {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not start '{program}': {e}"))?;
    println!(
        "  ({:.1}s) {program} {}",
        started.elapsed().as_secs_f64(),
        args.first().copied().unwrap_or("")
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("'{program} {}' failed ({status})", args.join(" ")))
    }
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ci(args: &[String]) -> Result {
    let started = Instant::now();
    let quick = args.iter().any(|a| a == "--quick");
    setup::install(&root())?;
    let python = setup::venv_python(&root());
    let python = python.to_string_lossy().into_owned();
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    if !quick {
        feature_matrix()?;
    }
    let envs = [("OTLP_PYTHON", python.as_str())];
    if has_nextest() {
        run(
            "cargo",
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-fail-fast",
            ],
            &envs,
        )?;
    } else {
        run(
            "cargo",
            &["test", "--workspace", "--all-features", "--no-fail-fast"],
            &envs,
        )?;
    }
    // nextest does not run doc tests.
    run(
        "cargo",
        &["test", "--doc", "--workspace", "--all-features"],
        &envs,
    )?;
    run(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    examples()?;
    deps::check(&root())?;
    println!(
        "\nxtask ci: all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every component crate has a runnable example of it used alone
/// (`cargo run -p <crate> --example <name>`); each one runs to its end
/// against 127.0.0.1, and a failing example fails the run. They are built
/// with the test build's features, so nothing is compiled twice.
const EXAMPLES: [&str; 6] = [
    "inspect",      // otlp-core
    "explain",      // otlp-config
    "disk_queue",   // otlp-pipeline
    "round_trip",   // otlp-transport
    "tonic_client", // otlp-resilience
    "self_metrics", // otlp-observability
];

fn examples() -> Result {
    run(
        "cargo",
        &["build", "-q", "--workspace", "--all-features", "--examples"],
        &[],
    )?;
    let dir = root().join("target/debug/examples");
    for example in EXAMPLES {
        let bin = dir.join(example);
        run(&bin.to_string_lossy(), &[], &[])?;
    }
    Ok(())
}

/// Each crate with optional features must build with none of them, with each
/// one alone, and with all of them (`cargo hack check --each-feature`):
/// features are additive, and a downstream user picks any of them.
fn feature_matrix() -> Result {
    let mut args = vec!["hack", "check", "--each-feature", "--lib"];
    let mut featured = Vec::new();
    for krate in COMPONENTS.iter().chain(["otlp"].iter()) {
        let manifest = root().join(crate_dir(krate)).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
        if text.contains("[features]") {
            featured.push(*krate);
        }
    }
    for krate in &featured {
        args.extend(["-p", krate]);
    }
    run("cargo", &args, &[])?;
    // The binary has features too (jemalloc).
    run(
        "cargo",
        &[
            "hack",
            "check",
            "--each-feature",
            "--bins",
            "-p",
            "otlp-client",
        ],
        &[],
    )
}

pub(crate) fn crate_dir(krate: &str) -> String {
    format!("crates/{krate}")
}

/// Builds each component crate alone in a fresh target directory and reports
/// the wall time: what a downstream user pays to depend on just that crate.
fn build_times() -> Result {
    let base = env::temp_dir().join("otlp-build-times");
    let mut rows = Vec::new();
    for krate in COMPONENTS {
        let dir = base.join(krate);
        let _ = std::fs::remove_dir_all(&dir);
        let dir_s = dir.to_string_lossy().into_owned();
        let started = Instant::now();
        run(
            "cargo",
            &["build", "-p", krate, "--lib", "--target-dir", &dir_s],
            &[],
        )?;
        let secs = started.elapsed().as_secs_f64();
        let units = std::fs::read_dir(dir.join("debug/deps"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "rlib"))
                    .count()
            })
            .unwrap_or(0);
        let _ = std::fs::remove_dir_all(&dir);
        rows.push((krate, secs, units));
    }
    println!("\nclean debug build of each component crate alone (default features):");
    println!("| crate | wall time | crates compiled (rlibs) |");
    println!("|---|---|---|");
    for (krate, secs, units) in rows {
        println!("| {krate} | {secs:.1}s | {units} |");
    }
    Ok(())
}
