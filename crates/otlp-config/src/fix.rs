//! Autofix: the safe repairs of a config file, applied to its text in place
//! so comments and layout survive, each one listed.
//!
//! Safe means the intent is clear and nothing is invented: an empty endpoint
//! gets the default, an OTLP/HTTP endpoint's missing scheme gets `http://`
//! (`https://` when TLS files are configured or the port is 443; a gRPC
//! endpoint without a scheme is valid, `tls.insecure` choosing plaintext or
//! TLS, and is left alone), a zero timeout becomes `10s`,
//! zero retries become 3 (the seed's fixes), a misspelled enum value becomes
//! the one accepted value it is close to, and a misspelled key is renamed to
//! the one key it is close to in the same section (if that key is not set
//! already). Headers, TLS files and secrets are never touched.

use std::fmt;

use otlp_core::Signal;

use crate::{
    error::ConfigError,
    model::Protocol,
    resolve::{Sources, signal_endpoint},
    schema::{self, Kind},
    source::{ConfigFile, Problem},
    units,
    yaml::{Entry, Node, NodeKind},
};

/// One repair made by [`autofix`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    /// The dotted key that was repaired.
    pub path: String,
    /// The 1-based line of the repair.
    pub line: usize,
    /// The text before (empty when a value was missing).
    pub before: String,
    /// The text after.
    pub after: String,
    /// Why this was changed.
    pub reason: String,
}

/// The result of [`autofix`].
#[derive(Clone, Debug)]
pub struct Fixed {
    /// The repaired file text (the original when there was nothing to fix).
    pub text: String,
    /// Each repair, in file order.
    pub fixes: Vec<Fix>,
    /// The problems that remain after the repairs (re-validated).
    pub remaining: Vec<Problem>,
}

struct Edit {
    start: usize,
    end: usize,
    replacement: String,
    fix: Fix,
}

// === impl Fix ===

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let before = if self.before.is_empty() {
            "(empty)"
        } else {
            &self.before
        };
        write!(
            f,
            "line {}: {}: {} -> {} ({})",
            self.line, self.path, before, self.after, self.reason
        )
    }
}

/// Applies the safe repairs to `file` and re-validates the result.
///
/// # Errors
///
/// [`ConfigError::Syntax`] if the repaired text no longer parses (it should
/// not: edits replace whole scalars or keys).
pub fn autofix(file: &ConfigFile) -> Result<Fixed, ConfigError> {
    let text = file.text();
    let mut edits = Vec::new();
    if let NodeKind::Map(entries) = &file.root().kind {
        collect("", entries, file.root(), text, &mut edits);
    }
    edits.sort_by_key(|e| e.start);
    // Drop overlapping edits (cannot happen with whole-scalar edits, but be safe).
    let mut kept: Vec<Edit> = Vec::new();
    for e in edits {
        if kept.last().is_none_or(|k| k.end <= e.start) {
            kept.push(e);
        }
    }
    let mut out = text.to_owned();
    for e in kept.iter().rev() {
        out.replace_range(e.start..e.end, &e.replacement);
    }
    let fixed = ConfigFile::parse(file.path(), out.clone())?;
    let remaining = Sources::new().with_file(fixed).resolve().problems;
    Ok(Fixed {
        text: out,
        fixes: kept.into_iter().map(|e| e.fix).collect(),
        remaining,
    })
}

fn collect(section: &str, entries: &[Entry], root: &Node, text: &str, edits: &mut Vec<Edit>) {
    let names: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    for entry in entries {
        let mut path = schema::join(section, &entry.key);
        if schema::lookup(&path).is_none() && !schema::is_section(&path) {
            // A typo of a key of the same section, not already present.
            let Some(suggested) = schema::suggest_key(section, &entry.key) else {
                continue;
            };
            let new_name = suggested
                .rsplit('.')
                .next()
                .unwrap_or(&suggested)
                .to_owned();
            let same_section = suggested == schema::join(section, &new_name);
            if !same_section || names.contains(&new_name.as_str()) {
                continue;
            }
            edits.push(Edit {
                start: entry.key_span.0,
                end: entry.key_span.1,
                replacement: new_name.clone(),
                fix: Fix {
                    path: suggested.clone(),
                    line: entry.key_pos.line,
                    before: entry.key.clone(),
                    after: new_name,
                    reason: "misspelled key renamed".into(),
                },
            });
            path = suggested;
        }
        if schema::is_section(&path) {
            if let NodeKind::Map(inner) = &entry.value.kind {
                collect(&path, inner, root, text, edits);
            }
            continue;
        }
        let Some(def) = schema::lookup(&path) else {
            continue;
        };
        let value = match &entry.value.kind {
            NodeKind::Scalar(s) => Some(s.as_str()),
            NodeKind::Null => None,
            _ => continue,
        };
        let field = path.rsplit('.').next().unwrap_or(&path);
        let replacement: Option<(String, &str)> = match (def.kind, value) {
            (Kind::Url, None) => Some((
                default_endpoint(root, &path),
                "empty endpoint set to the default",
            )),
            (Kind::Url, Some(v)) if v.trim().is_empty() => Some((
                default_endpoint(root, &path),
                "empty endpoint set to the default",
            )),
            (Kind::Url, Some(v))
                if !v.contains("://")
                    && !v.contains(char::is_whitespace)
                    && endpoint_protocol(root, &path).is_http() =>
            {
                if uses_tls(root, &path) || v.trim_end_matches('/').ends_with(":443") {
                    Some((
                        format!("https://{}", v.trim()),
                        "missing scheme; https:// because TLS is configured",
                    ))
                } else {
                    Some((
                        format!("http://{}", v.trim()),
                        "missing scheme; http:// added",
                    ))
                }
            }
            (Kind::Duration, Some(v))
                if field.ends_with("timeout") && path != "batch.batch_timeout" && is_zero(v) =>
            {
                Some(("10s".into(), "a zero timeout never lets an export finish"))
            }
            (Kind::Count, Some(v)) if path == "retry.max_retries" && v.trim() == "0" => Some((
                "3".into(),
                "zero retries drop data on the first transient failure",
            )),
            (Kind::Enum(values), Some(v)) if !values.contains(&v.trim()) => {
                schema::suggest_enum(v, values).map(|s| {
                    (
                        s.to_owned(),
                        "unknown value replaced by the accepted one it resembles",
                    )
                })
            }
            _ => None,
        };
        let Some((new_value, reason)) = replacement else {
            continue;
        };
        let (start, end) = value_range(entry, text);
        let rendered = if start == end {
            format!(" {}", yaml_scalar(&new_value))
        } else {
            yaml_scalar(&new_value)
        };
        edits.push(Edit {
            start,
            end,
            replacement: rendered,
            fix: Fix {
                path: path.clone(),
                line: entry.value.pos.line.max(entry.key_pos.line),
                before: value.unwrap_or("").to_owned(),
                after: new_value,
                reason: reason.into(),
            },
        });
    }
}

/// The byte range to replace for `entry`'s value; empty right after the colon
/// when the value is missing.
fn value_range(entry: &Entry, text: &str) -> (usize, usize) {
    let (s, e) = entry.value.span;
    if e > s && text.get(s..e).is_some() {
        return (s, e);
    }
    let after_key = entry.key_span.1;
    let colon = text
        .get(after_key..)
        .and_then(|rest| rest.find(':'))
        .map_or(after_key, |i| after_key + i + 1);
    (colon, colon)
}

fn is_zero(v: &str) -> bool {
    let t = v.trim();
    t.chars().all(|c| c == '0' || c == '.') && !t.is_empty()
        || units::parse_duration(t).is_ok_and(|d| d.is_zero())
}

/// Writes `v` as a YAML scalar, quoting when plain style could change its meaning.
fn yaml_scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c))
        && !v.starts_with(['-', ':'])
        && !v.contains(": ");
    if plain {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn find<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    let mut node = root;
    for part in path.split('.') {
        let NodeKind::Map(entries) = &node.kind else {
            return None;
        };
        node = &entries.iter().find(|e| e.key == part)?.value;
    }
    Some(node)
}

fn scalar<'a>(root: &'a Node, path: &str) -> Option<&'a str> {
    match &find(root, path)?.kind {
        NodeKind::Scalar(s) => Some(s),
        _ => None,
    }
}

/// The file's protocol for the endpoint key `path` (grpc when unset).
fn endpoint_protocol(root: &Node, path: &str) -> Protocol {
    let signal = path
        .split_once('.')
        .and_then(|(s, _)| s.parse::<Signal>().ok());
    signal
        .and_then(|s| scalar(root, &format!("{s}.protocol")))
        .or_else(|| scalar(root, "protocol"))
        .and_then(|p| p.parse::<Protocol>().ok())
        .unwrap_or(Protocol::Grpc)
}

/// The default endpoint for the endpoint key `path`, given the file's protocol.
fn default_endpoint(root: &Node, path: &str) -> String {
    let signal = path
        .split_once('.')
        .and_then(|(s, _)| s.parse::<Signal>().ok());
    let protocol = endpoint_protocol(root, path);
    match signal {
        Some(s) => signal_endpoint(protocol.default_endpoint(), protocol, s),
        None => protocol.default_endpoint().to_owned(),
    }
}

/// Whether TLS files are configured for the endpoint key `path`.
fn uses_tls(root: &Node, path: &str) -> bool {
    let mut sections = vec!["tls".to_owned()];
    if let Some((s, _)) = path.split_once('.') {
        sections.push(format!("{s}.tls"));
    }
    sections.iter().any(|sec| {
        ["ca_file", "cert_file", "key_file"]
            .iter()
            .any(|f| scalar(root, &format!("{sec}.{f}")).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(text: &str) -> Fixed {
        autofix(&ConfigFile::parse("c.yaml", text).unwrap()).unwrap()
    }

    #[test]
    fn seed_fixes_apply_and_comments_survive() {
        let out = fix(
            "# my config\nprotocol: http/protobuf\nendpoint: collector:4318 # upstream\ntimeout: 0s\nretry:\n  max_retries: 0\n",
        );
        assert_eq!(
            out.text,
            "# my config\nprotocol: http/protobuf\nendpoint: http://collector:4318 # upstream\ntimeout: 10s\nretry:\n  max_retries: 3\n"
        );
        assert_eq!(out.fixes.len(), 3);
        assert!(out.remaining.is_empty(), "{:?}", out.remaining);
    }

    #[test]
    fn a_grpc_endpoint_without_a_scheme_is_valid_and_left_alone() {
        // The OTLP spec's meaning: TLS, or plaintext with tls.insecure: true.
        // Adding http:// would silently turn TLS off.
        for text in [
            "endpoint: collector:4317\n",
            "endpoint: collector:4317\ntls:\n  insecure: true\n",
        ] {
            let out = fix(text);
            assert_eq!(out.text, text);
            assert!(out.fixes.is_empty(), "{:?}", out.fixes);
            assert!(out.remaining.is_empty(), "{:?}", out.remaining);
        }
    }

    #[test]
    fn empty_endpoint_gets_the_protocol_default_and_missing_scheme_gets_https_with_tls() {
        let out = fix("protocol: http/protobuf\nendpoint:\n");
        assert_eq!(
            out.text,
            "protocol: http/protobuf\nendpoint: http://localhost:4318\n"
        );
        let out = fix("endpoint: \"\"\n");
        assert_eq!(out.text, "endpoint: http://localhost:4317\n");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let out = fix(&format!(
            "protocol: http/protobuf\nendpoint: collector:4318\ntls:\n  ca_file: {}\n",
            ca.display()
        ));
        assert!(
            out.text
                .starts_with("protocol: http/protobuf\nendpoint: https://collector:4318\n"),
            "{}",
            out.text
        );
        assert!(out.remaining.is_empty(), "{:?}", out.remaining);
    }

    #[test]
    fn misspelled_keys_and_values_are_corrected_but_secrets_untouched() {
        let out = fix("protocl: gprc\nheaders:\n  api-key: \"\"\nretry:\n  max_retry: 4\n");
        assert_eq!(
            out.text,
            "protocol: grpc\nheaders:\n  api-key: \"\"\nretry:\n  max_retries: 4\n"
        );
        assert_eq!(out.fixes.len(), 3, "{:?}", out.fixes);
    }

    #[test]
    fn receiver_tls_files_are_never_touched_even_when_missing() {
        // A missing file is an error the user must fix; autofix never guesses a path.
        let text = "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: \"\"\n    client_ca_file: /nonexistent/ca.pem\n";
        let out = fix(text);
        assert_eq!(out.text, text);
        assert!(out.fixes.is_empty(), "{:?}", out.fixes);
        assert!(
            out.remaining
                .iter()
                .any(|p| p.path == "receivers.tls.cert_file"),
            "{:?}",
            out.remaining
        );
    }

    #[test]
    fn what_the_user_clearly_meant_is_left_alone() {
        // A unit-less timeout is ambiguous (seconds or ms?) and a zero batch timeout is no seed fix.
        let text = "endpoint: http://collector:4317\nbatch:\n  batch_timeout: 0s\ntimeout: 10\n";
        let out = fix(text);
        assert_eq!(out.text, text);
        assert!(out.fixes.is_empty());
        assert!(!out.remaining.is_empty());
    }
}
