//! Fails on a crate compiled in two versions (the seed's "dependency version
//! conflict"), unless the duplicate is on the allow-list below with a reason,
//! and on a dependency whose license is not on the permissive allow-list
//! (cargo-deny's two offline checks, without installing cargo-deny).
//!
//! Only normal and build dependencies count: they are what a user of our
//! crates compiles. Dev-only duplicates (criterion, proptest) cost only us.

use std::{collections::BTreeMap, path::Path, process::Command};

use crate::Result;

/// Duplicates we accept, each with the reason. Remove an entry as soon as the
/// ecosystem converges.
const ALLOWED: &[(&str, &str)] = &[
    // (name, why two versions are unavoidable today)
    (
        "base64",
        "opentelemetry-proto 0.33 pins base64 0.22 while hyper-util 0.1.21 moved to 0.23",
    ),
    (
        "getrandom",
        "ring 0.17 (under rustls) still uses getrandom 0.2; the rest of the tree is on 0.3",
    ),
    (
        "itertools",
        "ratatui-core 0.1 (otlp-client top) needs itertools 0.14; prost-derive 0.14.6 moved to 0.15 \
         (a proc-macro: build time only, not in binaries)",
    ),
    (
        "rand",
        "opentelemetry_sdk 0.33 (the SDK bridge) is on rand 0.9, hickory-resolver 0.26 (the load \
         balancing DNS resolver) on 0.10; hickory 0.25 would align but is the older API",
    ),
    ("rand_core", "follows the rand split above"),
    (
        "syn",
        "proc-macro crates are mid-migration: async-trait and futures-macro use syn 3, \
         serde_derive, prost-derive and thiserror-impl syn 2 (build time only, not in binaries)",
    ),
    (
        "synstructure",
        "follows the syn split above (yoke-derive under idna uses 0.14); build time only",
    ),
];

/// Licenses a dependency may carry (SPDX ids): permissive ones a user of our
/// Apache-2.0 crates can ship without obligations beyond notices.
const LICENSES: &[&str] = &[
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "ISC",
    "MIT",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "Zlib",
];

/// Whether an SPDX license expression is satisfied by [`LICENSES`]: `OR`
/// (and the old `/`) needs one side, `AND` both, `WITH` an exception on an
/// allowed license; parentheses group.
fn license_ok(expr: &str) -> bool {
    let spaced = expr
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let ok = or_expr(&tokens, &mut at);
    ok && at == tokens.len()
}

fn or_expr(t: &[&str], at: &mut usize) -> bool {
    let mut ok = and_expr(t, at);
    while t.get(*at) == Some(&"OR") {
        *at += 1;
        ok |= and_expr(t, at);
    }
    ok
}

fn and_expr(t: &[&str], at: &mut usize) -> bool {
    let mut ok = term(t, at);
    while t.get(*at) == Some(&"AND") {
        *at += 1;
        ok &= term(t, at);
    }
    ok
}

fn term(t: &[&str], at: &mut usize) -> bool {
    let Some(&tok) = t.get(*at) else {
        return false;
    };
    *at += 1;
    if tok == "(" {
        let ok = or_expr(t, at);
        if t.get(*at) != Some(&")") {
            return false;
        }
        *at += 1;
        return ok;
    }
    if t.get(*at) == Some(&"WITH") {
        *at += 2; // The exception only widens what the license allows.
    }
    LICENSES.contains(&tok)
}

/// Every normal or build dependency's license is on [`LICENSES`].
fn licenses(root: &Path) -> Result {
    let text = cargo_tree(root, &["--format", "{p}|{l}"])?;
    let mut bad = std::collections::BTreeSet::new();
    let mut seen = 0;
    for line in text.lines() {
        let Some((package, license)) = line.split_once('|') else {
            continue;
        };
        seen += 1;
        let license = license.trim().trim_end_matches("(*)").trim();
        if !license_ok(license) {
            let shown = if license.is_empty() {
                "no license field"
            } else {
                license
            };
            bad.insert(format!("{} ({shown})", package.trim()));
        }
    }
    if seen == 0 {
        return Err("cargo tree listed no package: the license check saw nothing".to_owned());
    }
    if bad.is_empty() {
        println!(
            "license check: every dependency is under {}",
            LICENSES.join(", ")
        );
        Ok(())
    } else {
        Err(format!(
            "dependencies under a license not on the allow-list: {}; replace them, or add the \
             license to LICENSES in xtask/src/deps.rs if it is permissive",
            bad.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// `cargo tree` over the workspace's normal and build dependencies (all
/// features, no prefix) with `extra` arguments; its output.
fn cargo_tree(root: &Path, extra: &[&str]) -> std::result::Result<String, String> {
    let mut args = vec![
        "tree",
        "--workspace",
        "--all-features",
        "--edges",
        "normal,build",
        "--prefix",
        "none",
    ];
    args.extend_from_slice(extra);
    let out = Command::new("cargo")
        .args(&args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn check(root: &Path) -> Result {
    licenses(root)?;
    let text = cargo_tree(root, &["--duplicates", "--format", "{p}"])?;
    let dups = duplicates(&text);
    let mut bad = Vec::new();
    for (name, versions) in &dups {
        let allowed = ALLOWED.iter().any(|(n, _)| n == name);
        println!(
            "duplicate: {name} {} {}",
            versions.join(", "),
            if allowed { "(allowed)" } else { "" }
        );
        if !allowed {
            bad.push(format!("{name} ({})", versions.join(", ")));
        }
    }
    if bad.is_empty() {
        println!("dependency check: no unexpected duplicate versions");
        Ok(())
    } else {
        Err(format!(
            "crates compiled in several versions: {}; align the versions in [workspace.dependencies] \
             or add the crate to ALLOWED in xtask/src/deps.rs with the reason",
            bad.join(", ")
        ))
    }
}

/// Parses `cargo tree --duplicates --prefix none --format {p}` output into
/// crate name -> distinct versions, keeping only names with several versions.
fn duplicates(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !version.starts_with('v') {
            continue;
        }
        let versions = map.entry(name.to_owned()).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_owned());
        }
    }
    map.retain(|_, v| v.len() > 1);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_expressions_follow_spdx_or_and_with() {
        assert!(license_ok("MIT OR Apache-2.0"));
        assert!(license_ok("MIT/Apache-2.0"));
        assert!(license_ok(
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"
        ));
        assert!(license_ok("(MIT OR Apache-2.0) AND Unicode-3.0"));
        assert!(license_ok("Apache-2.0 AND ISC"));
        assert!(!license_ok("GPL-3.0-only"));
        assert!(!license_ok("MIT AND GPL-3.0-only"));
        assert!(license_ok("GPL-3.0-only OR MIT"));
        assert!(!license_ok(""));
        assert!(!license_ok("(MIT OR Apache-2.0"));
    }

    #[test]
    fn parses_duplicates_and_ignores_single_versions() {
        let text =
            "rand v0.9.2\nrand v0.8.5\nrand v0.9.2\nbytes v1.10.0\n\nsyn v2.0.1 (proc-macro)\n";
        let d = duplicates(text);
        assert_eq!(d.len(), 1);
        assert_eq!(d["rand"], vec!["v0.9.2", "v0.8.5"]);
    }
}
