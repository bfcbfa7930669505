//! Repository hygiene checks. `cargo xtask tidy` runs them, and so does the
//! `tidy` test at the bottom, so every `cargo test --workspace` enforces them.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::Result;

pub(crate) fn run(root: &Path) -> Result {
    let mut problems = Vec::new();
    check_sources(root, &mut problems);
    check_manifests(root, &mut problems);
    check_architecture(root, &mut problems);
    check_alert_metrics(root, &mut problems);
    check_fmt(root, &mut problems);
    if problems.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        Err(format!(
            "{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

/// Lists files under `dir` (recursively) whose name ends in one of `exts`,
/// skipping build output and virtualenvs.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if matches!(
                name.as_str(),
                "target" | ".git" | "venv" | "__pycache__" | "node_modules"
            ) {
                continue;
            }
            out.extend(files(&path, exts));
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn check_sources(root: &Path, problems: &mut Vec<String>) {
    let banned = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("dbg", "!("),
    ];
    for dir in ["crates", "xtask", "benches", "tests"] {
        for path in files(&root.join(dir), &[".rs"]) {
            let Ok(text) = fs::read_to_string(&path) else {
                problems.push(format!("{}: not readable as UTF-8", rel(root, &path)));
                continue;
            };
            let r = rel(root, &path);
            // Inner attributes (`#![allow(..)]`) may come before the `//!` line.
            let first = text.lines().find(|l| !l.starts_with("#![")).unwrap_or("");
            if dir == "crates" && !first.starts_with("//!") {
                problems.push(format!(
                    "{r}: must start with a `//!` line saying what the file is for"
                ));
            }
            if dir == "crates" && path.ends_with("src/lib.rs") && !text.contains("# Example") {
                problems.push(format!("{r}: lib.rs needs an `# Example` section"));
            }
            for (n, line) in text.lines().enumerate() {
                for b in banned {
                    if line.contains(b) {
                        problems.push(format!("{r}:{}: `{b}` must not be committed", n + 1));
                    }
                }
                for marker in [concat!("TO", "DO"), concat!("FIX", "ME")] {
                    if let Some(i) = line.find(marker) {
                        let after = &line[i + marker.len()..];
                        if !after.starts_with("(#") {
                            problems.push(format!(
                                "{r}:{}: {marker} without an issue number, write {marker}(#N)",
                                n + 1
                            ));
                        }
                    }
                }
            }
        }
    }
    for path in files(
        root,
        &[".rs", ".toml", ".md", ".yml", ".yaml", ".py", ".sh"],
    ) {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!(
                    "{}:{}: trailing whitespace",
                    rel(root, &path),
                    n + 1
                ));
            }
        }
    }
}

/// Every member takes lints and third-party dependencies from the workspace.
fn check_manifests(root: &Path, problems: &mut Vec<String>) {
    let Ok(top) = fs::read_to_string(root.join("Cargo.toml")) else {
        problems.push("Cargo.toml: not readable".to_owned());
        return;
    };
    for member in members(&top) {
        let path = root.join(&member).join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&path) else {
            problems.push(format!("{member}/Cargo.toml: not readable"));
            continue;
        };
        if !text.contains("[lints]\nworkspace = true") {
            problems.push(format!(
                "{member}/Cargo.toml: add `[lints]\\nworkspace = true`"
            ));
        }
        let mut section = String::new();
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                section = t.to_owned();
                continue;
            }
            let is_deps = section.ends_with("dependencies]");
            if is_deps && !t.is_empty() && !t.starts_with('#') && !t.contains("workspace = true") {
                problems.push(format!(
                    "{member}/Cargo.toml: `{t}` in {section}: declare the version once in the root \
                     [workspace.dependencies] and write `workspace = true`"
                ));
            }
        }
    }
}

fn members(top: &str) -> Vec<String> {
    let Some(start) = top.find("members = [") else {
        return Vec::new();
    };
    let rest = &top[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Each crate has its section in ARCHITECTURE.md.
fn check_architecture(root: &Path, problems: &mut Vec<String>) {
    let arch = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let Ok(entries) = fs::read_dir(root.join("crates")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !arch.contains(&format!("### crates/{name}")) {
            problems.push(format!(
                "ARCHITECTURE.md: missing the section `### crates/{name}`"
            ));
        }
    }
}

/// Every `otlp_*` metric name used by the shipped alert rules and dashboards
/// must be one the code exports (after Prometheus' suffixes): a constant of
/// `otlp_observability::names`, the one home of metric names (a name quoted
/// in a test or a comment does not count).
fn check_alert_metrics(root: &Path, problems: &mut Vec<String>) {
    let names_rs = root.join("crates/otlp-observability/src/names.rs");
    let exported_names = exported_names(&fs::read_to_string(&names_rs).unwrap_or_default());
    if exported_names.is_empty() {
        problems.push(format!(
            "{}: no `pub const NAME: &str = \"otlp_...\";` metric names found",
            rel(root, &names_rs)
        ));
    }
    for path in files(&root.join("deploy"), &[".yml", ".yaml"]) {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for name in metric_names(&text) {
            let base = strip_suffixes(&name);
            let exported = [name.as_str(), base, &format!("{base}_total")]
                .iter()
                .any(|n| exported_names.iter().any(|e| e == n));
            if !exported {
                problems.push(format!(
                    "{}: metric `{name}` is not exported by otlp-observability",
                    rel(root, &path)
                ));
            }
        }
    }
}

/// The values of the `pub const NAME: &str = "...";` lines of names.rs.
pub(crate) fn exported_names(names_rs: &str) -> Vec<String> {
    names_rs
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub const ") && l.contains(": &str"))
        .filter_map(|l| {
            let value = l.split_once('=')?.1.trim().strip_suffix(';')?;
            Some(value.strip_prefix('"')?.strip_suffix('"')?.to_owned())
        })
        .collect()
}

pub(crate) fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("otlp_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let c = bytes[start - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let name = &text[start..end];
            if !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
        i = end.max(start + 1);
    }
    out
}

fn strip_suffixes(name: &str) -> &str {
    for suffix in ["_bucket", "_count", "_sum", "_total", "_created", "_info"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return base;
        }
    }
    name
}

fn check_fmt(root: &Path, problems: &mut Vec<String>) {
    match Command::new("cargo")
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(root)
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(_) => problems.push("cargo fmt --check: run `cargo fmt --all`".to_owned()),
        Err(e) => problems.push(format!("cargo fmt could not run: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy() {
        if let Err(e) = run(&crate::root()) {
            panic!("tidy found problems (run `cargo xtask tidy`):\n{e}");
        }
    }

    #[test]
    fn exported_names_are_the_constants_only() {
        let names_rs = "//! \"otlp_in_a_comment\"\n\
            /// Requests.\n\
            pub const REQUESTS_TOTAL: &str = \"otlp_requests_total\";\n\
            const PRIVATE: &str = \"otlp_private\";\n\
            #[cfg(test)]\n\
            mod tests { fn t() { let _ = \"otlp_only_in_a_test\"; } }\n";
        assert_eq!(exported_names(names_rs), vec!["otlp_requests_total"]);
    }

    #[test]
    fn metric_names_are_found_with_suffixes_stripped() {
        let rule =
            "expr: rate(otlp_errors_total[5m]) / sum(rate(otlp_requests_total[5m])) > x_otlp_no";
        assert_eq!(
            metric_names(rule),
            vec!["otlp_errors_total", "otlp_requests_total"]
        );
        assert_eq!(
            strip_suffixes("otlp_request_duration_seconds_bucket"),
            "otlp_request_duration_seconds"
        );
    }
}
