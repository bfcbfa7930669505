//! `doctor`: one verdict on an installation from the checks an operator
//! would run one by one: the config (`validate-config`), the effective
//! endpoint and where it came from (`explain-config`), the upstream
//! (`diagnose`), and the running agent's `/health` when one answers. Each
//! check that is not a pass says how to fix it.

use std::{net::SocketAddr, path::Path, process::ExitCode, time::Duration};

use otlp::{
    config::{Config, ConfigFile, Env, Severity, Sources},
    core::Signal,
    transport::{Diagnosis, Verdict},
};
use serde::Serialize;

use super::stdout::outln;
use crate::cli::{DoctorArgs, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Format};

/// The largest `/health` answer read.
const MAX_HEALTH_BYTES: u64 = 1024 * 1024;

/// The report.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// `healthy`, `warnings` or `problems found`.
    pub(crate) verdict: &'static str,
    pub(crate) checks: Vec<Check>,
}

/// One check.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) verdict: Verdict,
    pub(crate) detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fix: Option<String>,
    /// The upstream's step-by-step diagnosis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diagnosis: Option<Diagnosis>,
    /// With `loadbalancing:`, the backend set and each backend's diagnosis
    /// (as `diagnose --format json` shows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) loadbalancing: Option<serde_json::Value>,
    /// The agent's `/health` answer as it sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) health: Option<serde_json::Value>,
}

/// `doctor [--config FILE] [--admin ADDR] [--format json]`.
pub(crate) async fn doctor(args: DoctorArgs) -> ExitCode {
    let mut checks = Vec::new();
    let mut unreadable = false;
    let mut sources = Sources::new().with_env(Env::from_process());
    if let Some(path) = &args.config {
        match ConfigFile::read(path) {
            Ok(f) => sources = sources.with_file(f),
            Err(e) => {
                unreadable = true;
                checks.push(check(
                    "config",
                    Verdict::Fail,
                    e.to_string(),
                    Some(format!("make {} a readable YAML file", path.display())),
                ));
            }
        }
    }
    let resolved = sources.resolve();
    if !unreadable {
        checks.push(config_check(args.config.as_deref(), &resolved));
    }
    let valid = !unreadable && resolved.is_valid();
    if valid {
        checks.push(effective_check(&resolved));
        checks.push(upstream_check(&resolved.config, args.timeout).await);
    } else {
        for name in ["effective", "upstream"] {
            checks.push(check(
                name,
                Verdict::Skipped,
                "not run: the config is not usable".to_owned(),
                None,
            ));
        }
    }
    let admin = args
        .admin
        .unwrap_or_else(|| loopback(resolved.config.admin.listen));
    let timeout = args.timeout;
    let agent = tokio::task::spawn_blocking(move || agent_check(admin, timeout))
        .await
        .unwrap_or_else(|e| {
            check(
                "agent",
                Verdict::Warn,
                format!("the /health check did not finish: {e}"),
                None,
            )
        });
    checks.push(agent);

    let report = Report {
        verdict: if checks.iter().any(|c| c.verdict == Verdict::Fail) {
            "problems found"
        } else if checks.iter().any(|c| c.verdict == Verdict::Warn) {
            "warnings"
        } else {
            "healthy"
        },
        checks,
    };
    match args.format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        ),
        Format::Text => outln!(
            "{}",
            super::style::paint_verdicts(&to_text(&report), super::style::colour_stdout())
        ),
    }
    if unreadable {
        ExitCode::from(EXIT_USAGE)
    } else if report.verdict == "problems found" {
        ExitCode::from(EXIT_PROBLEM)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

fn check(name: &'static str, verdict: Verdict, detail: String, fix: Option<String>) -> Check {
    Check {
        name,
        verdict,
        detail,
        fix,
        diagnosis: None,
        loadbalancing: None,
        health: None,
    }
}

/// What `validate-config` would say, with the environment applied too.
fn config_check(path: Option<&Path>, resolved: &otlp::config::Resolved) -> Check {
    let what = path.map_or_else(
        || "no config file: defaults and environment".to_owned(),
        |p| p.display().to_string(),
    );
    let errors: Vec<_> = resolved.errors().collect();
    let warnings: Vec<_> = resolved
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .collect();
    let list = |ps: &[&otlp::config::Problem]| {
        ps.iter()
            .map(|p| format!("{}: {} ({})", p.path, p.message, p.source))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let hints = |ps: &[&otlp::config::Problem]| {
        let hints: Vec<&str> = ps.iter().filter_map(|p| p.hint.as_deref()).collect();
        let fix = if hints.is_empty() {
            "see `otlp-client validate-config FILE`".to_owned()
        } else {
            hints.join("; ")
        };
        Some(match path {
            Some(p) => format!(
                "{fix} (`otlp-client validate-config --fix {}` applies the safe fixes)",
                p.display()
            ),
            None => fix,
        })
    };
    if !errors.is_empty() {
        check(
            "config",
            Verdict::Fail,
            format!("{what}: invalid: {}", list(&errors)),
            hints(&errors),
        )
    } else if !warnings.is_empty() {
        check(
            "config",
            Verdict::Warn,
            format!("{what}: valid, with warnings: {}", list(&warnings)),
            hints(&warnings),
        )
    } else {
        check("config", Verdict::Pass, format!("{what}: valid"), None)
    }
}

/// What `explain-config` would say about where data goes.
fn effective_check(resolved: &otlp::config::Resolved) -> Check {
    let sc = resolved.config.signal(Signal::Traces);
    let source = |key: &str| {
        resolved
            .source_of(key)
            .map_or_else(|| "default".to_owned(), ToString::to_string)
    };
    let upstream = match &resolved.config.loadbalancing {
        Some(lb) => {
            let key = match lb.resolver {
                otlp::config::LbResolver::Static { .. } => "loadbalancing.endpoints",
                otlp::config::LbResolver::Dns { .. } => "loadbalancing.dns.hostname",
            };
            format!(
                "traces load-balanced by {} over {} ({key} from {}; the endpoint setting is not used for traces)",
                lb.routing_key.as_str(),
                lb.resolver.describe(),
                source(key),
            )
        }
        None => format!(
            "upstream {} (endpoint from {})",
            redact_userinfo(&sc.endpoint),
            source("endpoint"),
        ),
    };
    check(
        "effective",
        Verdict::Pass,
        format!(
            "{upstream}; protocol {} (from {}); admin on {}",
            sc.protocol.as_str(),
            source("protocol"),
            resolved.config.admin.listen,
        ),
        None,
    )
}

async fn upstream_check(config: &Config, timeout: Duration) -> Check {
    // With `loadbalancing:` data goes to the backend set, not to the
    // signal endpoint: the set is what is checked.
    if let Some(set) = super::diagnose::backend_set(config, timeout).await {
        let (verdict, detail, fix) = set.summary();
        let mut json = set.to_json();
        return Check {
            loadbalancing: Some(json["loadbalancing"].take()),
            ..check("upstream", verdict, detail, fix)
        };
    }
    let diagnosis = super::diagnose::probe(config, timeout).await;
    let worst = diagnosis
        .steps
        .iter()
        .find(|s| s.verdict == Verdict::Fail)
        .or_else(|| diagnosis.steps.iter().find(|s| s.verdict == Verdict::Warn));
    let (verdict, detail, fix) = match worst {
        Some(step) => (
            step.verdict,
            format!("{}: {}", step.target, step.detail),
            step.fix.clone(),
        ),
        None => (
            Verdict::Pass,
            format!(
                "{} answers OTLP ({} steps passed)",
                redact_userinfo(&diagnosis.endpoint),
                diagnosis.steps.len()
            ),
            None,
        ),
    };
    Check {
        diagnosis: Some(diagnosis),
        ..check("upstream", verdict, detail, fix)
    }
}

/// `GET /health` on the agent's admin port, bounded by `timeout` per step.
fn agent_check(admin: SocketAddr, timeout: Duration) -> Check {
    let start_it = Some(
        "if an agent should run here, start it (`otlp-client run --config FILE`) or pass its admin address with --admin".to_owned(),
    );
    let (status, body) = match super::http::get(admin, "/health", timeout, MAX_HEALTH_BYTES) {
        Ok(answer) => answer,
        Err(e) => {
            return check(
                "agent",
                Verdict::Warn,
                format!("no agent answers on {admin}: {e}"),
                start_it,
            );
        }
    };
    let health: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let Some(health) = health else {
        return check(
            "agent",
            Verdict::Warn,
            format!(
                "{admin} answered /health with HTTP {status}, not an otlp-client health report"
            ),
            Some("check that --admin (or admin.listen) is the agent's admin port".to_owned()),
        );
    };
    let not_healthy: Vec<String> = health["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] != "healthy")
        .map(|c| {
            format!(
                "{} {}: {}",
                c["name"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    let (verdict, detail, fix) = if status == 200 && not_healthy.is_empty() {
        (
            Verdict::Pass,
            format!("agent on {admin}: every check healthy"),
            None,
        )
    } else if status == 200 {
        (
            Verdict::Warn,
            format!("agent on {admin}: {}", not_healthy.join("; ")),
            Some("see docs/TROUBLESHOOTING.md#health-checks".to_owned()),
        )
    } else {
        (
            Verdict::Fail,
            format!("agent on {admin} is unhealthy (HTTP {status}): {}", not_healthy.join("; ")),
            Some(
                "an unhealthy exporter check means the upstream fails: see the upstream check above and docs/TROUBLESHOOTING.md#health-checks"
                    .to_owned(),
            ),
        )
    };
    Check {
        health: Some(health),
        ..check("agent", verdict, detail, fix)
    }
}

/// A listen address as a local client reaches it: `0.0.0.0` / `::` mean
/// this host.
pub(crate) fn loopback(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// `https://user:secret@host` -> `https://user:***@host`.
fn redact_userinfo(endpoint: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:{}", otlp::config::REDACTED)
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => endpoint.to_owned(),
    }
}

fn to_text(report: &Report) -> String {
    let mut out = String::from("otlp-client doctor\n");
    for c in &report.checks {
        let tag = match c.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        };
        out.push_str(&format!("[{tag}] {:<9} {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("          fix: {fix}\n"));
        }
        if let Some(d) = &c.diagnosis
            && c.verdict != Verdict::Pass
        {
            for line in d.to_string().lines() {
                out.push_str(&format!("          {line}\n"));
            }
        }
    }
    out.push_str(&format!("verdict: {}", report.verdict));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_passwords_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_userinfo("https://u:s3cret@collector:4318/v1/traces"),
            format!(
                "https://u:{}@collector:4318/v1/traces",
                otlp::config::REDACTED
            )
        );
        assert_eq!(redact_userinfo("http://u@h:1"), "http://u@h:1");
        assert_eq!(redact_userinfo("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(redact_userinfo("h:4317"), "h:4317");
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            loopback("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            loopback("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            loopback("10.0.0.1:8080".parse().unwrap()),
            "10.0.0.1:8080".parse().unwrap()
        );
    }
}
