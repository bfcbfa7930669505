#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shipped deployment assets in `deploy/`, checked by the real tools.
//!
//! | file | checked by |
//! | --- | --- |
//! | `deploy/prometheus/alert_rules.yml` | `promtool check rules`; every `otlp_*` name in it scraped from a running agent |
//! | `deploy/prometheus/alert_rules_test.yml` | `promtool test rules` (fires each alert, and none on a healthy agent) |
//! | `deploy/kubernetes/*.yaml` | `kubernetes-validate --strict` (offline schemas, Kubernetes 1.37) from the test venv |
//! | `deploy/kubernetes/configmap.yaml` | its `config.yaml` through `otlp-client validate-config` |
//! | `deploy/kubernetes/service*.yaml` | OTLP ports only on `otlp-client`, the admin port only on `otlp-client-admin`, a headless Service with the OTLP ports |
//! | `deploy/argo/*.yaml` | structure checked here (kinds, apiVersion, canary steps, analysis, 0.95 threshold) |
//! | `deploy/helm/otlp-client` | rendered by `tests/python/render_chart.py` (helm is not packaged for Debian or PyPI), then `kubernetes-validate --strict`; the same wiring as `deploy/kubernetes/`; its config through `validate-config` |
//! | `Dockerfile` | linted here: multi-stage, the pinned toolchain, non-root, entrypoint `otlp-client run`, ports, the image name of `deploy/` |
//! | `deploy/systemd/otlp-client.service` | `systemd-analyze verify` (no warning) and `systemd-analyze security --offline` (exposure at most 2.0) |
//! | everything in `deploy/` | every `otlp_*` metric name is exported by `otlp-client run` on `/metrics` |
//!
//! Tools: `promtool` from `PROMTOOL` or `/usr/bin/promtool` / `PATH` (Debian
//! package `prometheus`); Python from `OTLP_PYTHON` or `<root>/.ci/venv/bin/python`
//! with the pins of `tests/python/requirements.txt`. `bash .ci/run` installs both.
//! Every wait is bounded; every socket is on 127.0.0.1.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

mod common;

use common::*;

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/bin/promtool");
    if debian.exists() {
        return debian.to_path_buf();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("promtool"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!("promtool not found: install the Debian package `prometheus` (run `bash .ci/run`) or set PROMTOOL")
    })
}

/// Every YAML document of `path` as JSON, parsed by PyYAML from the test venv
/// (a real YAML parser; the checks themselves are in Rust).
fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    let out = run(
        Command::new(python()).args([
            "-c",
            "import json, sys, yaml\n\
             with open(sys.argv[1]) as f:\n    docs = [d for d in yaml.safe_load_all(f) if d is not None]\n\
             json.dump(docs, sys.stdout)",
            &path.display().to_string(),
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "PyYAML could not parse {} (run `bash .ci/run` to install tests/python/requirements.txt):\n{}",
        path.display(),
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

// === promtool ===

#[test]
fn promtool_check_rules_accepts_the_alert_rules() {
    let out = run(
        Command::new(promtool())
            .args(["check", "rules"])
            .arg(deploy("prometheus/alert_rules.yml")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SUCCESS"), "{}", text(&out));
}

#[test]
fn promtool_unit_tests_fire_every_alert_and_pass() {
    let out = run(
        Command::new(promtool())
            .args(["test", "rules", "alert_rules_test.yml"])
            .current_dir(deploy("prometheus")),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out));

    // promtool passes a file with no test for an alert; make sure each alert
    // has a test in which it is expected to fire.
    let rules = read(&deploy("prometheus/alert_rules.yml"));
    let tests = read(&deploy("prometheus/alert_rules_test.yml"));
    let test_lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 8, "too few alerts: {alerts:?}");
    for alert in &alerts {
        let fires = test_lines
            .windows(2)
            .any(|w| w[0] == format!("alertname: {alert}") && w[1] == "exp_alerts:");
        assert!(fires, "no promtool test expects {alert} to fire");
    }
    for required in [
        "HighErrorRate",
        "HighLatency",
        "ServiceDown",
        "HighMemoryUsage",
        "QueueSaturated",
        "ItemsDropped",
        "PersistentQueueDiskNearlyFull",
        "RetriesExhausted",
    ] {
        assert!(
            alerts.iter().any(|a| a == required),
            "missing alert {required}"
        );
    }
}

#[test]
fn every_alert_has_a_runbook_url_into_the_troubleshooting_guide() {
    let rules = yaml_docs(&deploy("prometheus/alert_rules.yml"));
    let mut n = 0;
    for group in rules[0]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
            assert!(
                url.contains("docs/TROUBLESHOOTING.md#"),
                "{alert}: runbook_url {url} does not point into docs/TROUBLESHOOTING.md"
            );
            n += 1;
        }
    }
    assert_eq!(
        n,
        alert_names(&read(&deploy("prometheus/alert_rules.yml"))).len()
    );
}

fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|a| a.trim().to_owned())
        .collect()
}

// === kubernetes ===

/// The `config.yaml: |` block scalar of the ConfigMap, dedented.
fn configmap_config(manifest: &str) -> String {
    let mut lines = manifest.lines();
    let header_indent = loop {
        let l = lines
            .next()
            .expect("configmap.yaml has a `config.yaml: |` key");
        if l.trim_start() == "config.yaml: |" {
            break l.len() - l.trim_start().len();
        }
    };
    let mut body: Vec<&str> = Vec::new();
    for l in lines {
        let indent = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && indent <= header_indent {
            break;
        }
        body.push(l);
    }
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap();
    body.iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn configmap_config_passes_validate_config() {
    let config = configmap_config(&read(&deploy("kubernetes/configmap.yaml")));
    // The pod must be reachable by the kubelet's probes and by Prometheus.
    assert!(config.contains("listen: 0.0.0.0:8080"), "{config}");
    assert!(config.contains("grpc: 0.0.0.0:4317"), "{config}");
    assert!(config.contains("http: 0.0.0.0:4318"), "{config}");
    assert!(
        config.contains("dir: /var/lib/otlp-client/queue"),
        "{config}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &config).unwrap();
    let out = run(
        bin().arg("validate-config").arg(&path),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{config}\n{}", text(&out));

    // The extraction is not vacuous: a broken copy is refused.
    std::fs::write(&path, config.replace("protocol: grpc", "protocol: grcp")).unwrap();
    let out = run(
        bin().arg("validate-config").arg(&path),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    run(
        Command::new(python())
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--kubernetes-version",
                "1.37.0",
            ])
            .args(files),
        Duration::from_secs(120),
    )
}

fn core_manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn core_manifests_pass_kubernetes_validate_offline() {
    let files = core_manifests();
    assert!(files.len() >= 4, "{files:?}");
    let out = kubernetes_validate(&files);
    let t = text(&out);
    assert!(
        out.status.success(),
        "kubernetes-validate failed (install it with `bash .ci/run`):\n{t}"
    );
    for kind in [
        "deployment/",
        "service/otlp-client ",
        "service/otlp-client-admin ",
        "service/otlp-client-headless ",
        "configmap/",
        "secret/",
    ] {
        assert!(
            t.contains(&format!("passed for resource {kind}")),
            "{kind} not validated:\n{t}"
        );
    }
    assert!(!t.contains("Couldn't find schema"), "{t}");

    // The validator really checks: a wrong type is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("deployment.yaml");
    std::fs::write(
        &bad,
        read(&deploy("kubernetes/deployment.yaml")).replace("replicas: 3", "replicas: three"),
    )
    .unwrap();
    let out = kubernetes_validate(&[bad]);
    assert!(!out.status.success(), "{}", text(&out));
}

fn find_kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {docs:?}"))
}

#[test]
fn deployment_probes_config_secret_and_queue_volume_are_wired() {
    let docs = yaml_docs(&deploy("kubernetes/deployment.yaml"));
    let d = find_kind(&docs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 3);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // The image's entrypoint is `otlp-client run`.
    assert_eq!(&args[..2], ["--config", "/etc/otlp/config.yaml"]);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
    let port_of = |name: &str| {
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_u64().unwrap())
    };
    assert_eq!(port_of("admin"), Some(8080));
    assert_eq!(port_of("otlp-grpc"), Some(4317));
    assert_eq!(port_of("otlp-http"), Some(4318));
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["requests"]["cpu"].is_string());
    let env = c["env"].as_array().unwrap();
    let headers = env
        .iter()
        .find(|e| e["name"] == "OTEL_EXPORTER_OTLP_HEADERS")
        .expect("headers come from the environment");
    assert_eq!(
        headers["valueFrom"]["secretKeyRef"]["name"],
        "otlp-client-secret"
    );
    let secret = find_kind(&yaml_docs(&deploy("kubernetes/secret.yaml")), "Secret").clone();
    let key = headers["valueFrom"]["secretKeyRef"]["key"]
        .as_str()
        .unwrap();
    assert!(
        secret["stringData"][key].is_string(),
        "secret has no key {key}"
    );

    let mounts = c["volumeMounts"].as_array().unwrap();
    let mount = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("nothing mounted at {path}"))
    };
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |name: &str| volumes.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(
        volume(&mount("/etc/otlp"))["configMap"]["name"],
        "otlp-client-config"
    );
    let cm = find_kind(
        &yaml_docs(&deploy("kubernetes/configmap.yaml")),
        "ConfigMap",
    )
    .clone();
    assert!(cm["data"]["config.yaml"].is_string());
    // The disk queue directory of the config is a volume, not the read-only root.
    let q = volume(&mount("/var/lib/otlp-client/queue"));
    assert!(
        q.get("emptyDir").is_some() || q.get("persistentVolumeClaim").is_some(),
        "{q}"
    );

    let svc = find_kind(&yaml_docs(&deploy("kubernetes/service.yaml")), "Service").clone();
    let ports: BTreeSet<u64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    // /debug/* never sits next to the OTLP ports.
    assert_eq!(ports, BTreeSet::from([4317, 4318]));
    let selector = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        .as_str()
        .map(|n| serde_json::json!({"app.kubernetes.io/name": n}))
        .unwrap();
    assert_eq!(svc["spec"]["selector"], selector);
    let admin = find_kind(
        &yaml_docs(&deploy("kubernetes/service-admin.yaml")),
        "Service",
    )
    .clone();
    assert_eq!(service_ports(&admin), BTreeSet::from([8080]));
    assert_eq!(admin["spec"]["selector"], selector);
    assert_eq!(admin["spec"]["type"], "ClusterIP");
    let headless = find_kind(
        &yaml_docs(&deploy("kubernetes/service-headless.yaml")),
        "Service",
    )
    .clone();
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], false);
    assert_eq!(service_ports(&headless), BTreeSet::from([4317, 4318]));
    assert_eq!(headless["spec"]["selector"], selector);
    assert_ne!(headless["metadata"]["name"], svc["metadata"]["name"]);
}

fn service_ports(svc: &serde_json::Value) -> BTreeSet<u64> {
    svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect()
}

// === argo ===

#[test]
fn rollout_has_the_canary_steps_and_references_the_analysis() {
    let docs = yaml_docs(&deploy("argo/rollout.yaml"));
    let r = find_kind(&docs, "Rollout");
    assert_eq!(r["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(r["spec"]["replicas"], 3);
    let canary = &r["spec"]["strategy"]["canary"];
    let steps = canary["steps"].as_array().unwrap();
    let weights: Vec<u64> = steps
        .iter()
        .filter_map(|s| s["setWeight"].as_u64())
        .collect();
    assert_eq!(weights, [10, 20, 50, 100]);
    // A pause follows every weight but the last.
    for (i, s) in steps.iter().enumerate() {
        if s.get("setWeight").is_some() && s["setWeight"] != 100 {
            let next = &steps[i + 1];
            assert!(
                next["pause"]["duration"].is_string(),
                "step {i} ({s}) is not followed by a timed pause"
            );
        }
    }
    assert_eq!(steps.last().unwrap()["setWeight"], 100);
    let analysis = &canary["analysis"];
    let template = analysis["templates"][0]["templateName"].as_str().unwrap();
    let c = &r["spec"]["template"]["spec"]["containers"][0];
    // The image's entrypoint is `otlp-client run`: the args are its flags.
    assert_eq!(c["args"][0], "--config");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");

    let at_docs = yaml_docs(&deploy("argo/analysis-template.yaml"));
    let at = find_kind(&at_docs, "AnalysisTemplate");
    assert_eq!(at["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(
        at["metadata"]["name"], template,
        "rollout references another template"
    );
    // Every arg the template needs without a default is passed by the rollout.
    let passed: BTreeSet<&str> = analysis["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for arg in at["spec"]["args"].as_array().unwrap() {
        if arg.get("value").is_none() {
            assert!(
                passed.contains(arg["name"].as_str().unwrap()),
                "arg {arg} not passed"
            );
        }
    }
    let metric = &at["spec"]["metrics"][0];
    let success = metric["successCondition"].as_str().unwrap();
    let failure = metric["failureCondition"].as_str().unwrap();
    assert!(success.contains("result[0] >= 0.95"), "{success}");
    assert!(failure.contains("result[0] < 0.95"), "{failure}");
    let query = metric["provider"]["prometheus"]["query"].as_str().unwrap();
    assert!(query.contains("otlp_requests_total"), "{query}");
    assert!(query.contains("outcome=\"ok\""), "{query}");
}

// === metric names ===

/// What `/metrics` exposes: family names with their types, and sample names.
#[derive(Debug, Default)]
struct Exposition {
    families: Vec<(String, String)>,
    samples: BTreeSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut e = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(ty)) = (parts.next(), parts.next()) {
                    e.families.push((name.to_owned(), ty.to_owned()));
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                e.samples.insert(line[..end].to_owned());
            }
        }
        e
    }

    /// Whether a PromQL series name is exported. A labelled family shows no
    /// sample before its first child exists, so the family and its type decide:
    /// counters are queried as `<family>_total` (prometheus-client may or may not
    /// include `_total` in the TYPE line), histograms as `_bucket`/`_sum`/`_count`.
    fn exports(&self, name: &str) -> bool {
        if self.samples.contains(name) {
            return true;
        }
        self.families.iter().any(|(family, ty)| match ty.as_str() {
            "counter" => {
                name == family
                    || name.strip_suffix("_total") == Some(family)
                    || family.strip_suffix("_total") == Some(name)
            }
            "histogram" | "summary" => {
                name == family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(family))
            }
            _ => name == family,
        })
    }
}

/// Every `otlp_*` identifier in the files under `dir`.
fn metric_names_used(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = read(&p);
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            for (i, _) in text.match_indices("otlp_") {
                // An identifier starts here only if the byte before is not part of one.
                let before = text[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    continue;
                }
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert((name, rel.clone()));
            }
        }
    }
    out
}

#[test]
fn metric_name_matching_follows_the_exposition_types() {
    let e = Exposition::parse(
        "# HELP otlp_requests Export requests.\n\
         # TYPE otlp_requests counter\n\
         # TYPE otlp_items_dropped_total counter\n\
         # TYPE otlp_request_duration_seconds histogram\n\
         otlp_request_duration_seconds_bucket{le=\"+Inf\"} 0\n\
         # TYPE otlp_queue_items gauge\n\
         otlp_queue_items{signal=\"traces\"} 3\n",
    );
    assert!(e.exports("otlp_requests_total"));
    assert!(e.exports("otlp_items_dropped_total"));
    assert!(e.exports("otlp_request_duration_seconds_count"));
    assert!(e.exports("otlp_request_duration_seconds_bucket"));
    assert!(e.exports("otlp_queue_items"));
    assert!(!e.exports("otlp_queue_items_total"));
    assert!(!e.exports("otlp_queue_items_bucket"));
    assert!(!e.exports("otlp_requests_bucket"));
    assert!(!e.exports("otlp_errors_total"));
}

/// `otlp-client run` with every listener on a free 127.0.0.1 port, killed on drop.
struct Agent {
    _proc: Proc,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Self {
        let closed = closed_port();
        let dir = tempfile::tempdir().unwrap();
        let queue = dir.path().join("queue");
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "endpoint: http://{closed}\nprotocol: grpc\ntimeout: 1s\n\
                 receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n\
                 admin:\n  listen: 127.0.0.1:0\n\
                 queue:\n  persistent:\n    dir: {}\n    max_bytes: 64MiB\n",
                queue.display()
            ),
        )
        .unwrap();
        // Lossy: the reader thread keeps draining stderr, so the agent never
        // blocks on a full pipe.
        let (proc, rx) = spawn_json_agent(&config, &["--shutdown-timeout", "1s"], true);
        let (admin, ..) = read_addresses(&rx);
        Self {
            _proc: proc,
            admin,
            _dir: dir,
        }
    }

    /// `GET path` on the admin server: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin, path)
    }
}

#[test]
fn every_metric_name_used_in_deploy_is_exported_by_a_running_agent() {
    let agent = Agent::start();
    let (status, body) = agent.get("/metrics");
    assert_eq!(status, 200, "{body}");
    let exposition = Exposition::parse(&body);
    assert!(
        exposition.exports("otlp_requests_total"),
        "scrape looks wrong:\n{body}"
    );
    let used = metric_names_used(&root().join("deploy"));
    assert!(
        used.iter().any(|(n, _)| n == "otlp_items_failed_total"),
        "deploy/ uses no metric? {used:?}"
    );
    let missing: Vec<String> = used
        .iter()
        .filter(|(name, _)| !exposition.exports(name))
        .map(|(name, file)| format!("{name} (in deploy/{file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "metric names used in deploy/ but not exported by otlp-client run:\n{}\n\n/metrics:\n{body}",
        missing.join("\n")
    );
}

#[test]
fn probe_paths_of_the_deployment_are_served_by_the_agent() {
    let agent = Agent::start();
    let (live, body) = agent.get("/health/live");
    assert_eq!(live, 200, "{body}");
    // Ready may say 503 while the upstream is down, but the path must exist.
    let (ready, body) = agent.get("/health/ready");
    assert!(
        ready == 200 || ready == 503,
        "/health/ready: {ready} {body}"
    );
    let (health, body) = agent.get("/health");
    assert!(health == 200 || health == 503, "/health: {health} {body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_ok(),
        "{body}"
    );
}

#[test]
fn promtool_accepts_the_plain_scrape_config() {
    let out = run(
        Command::new(promtool())
            .args(["check", "config", "scrape_config.yml"])
            .current_dir(deploy("prometheus")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out));
    let config = read(&deploy("prometheus/scrape_config.yml"));
    assert!(config.contains("job_name: otlp-client"), "{config}");
}

#[test]
fn the_podmonitor_gives_the_job_label_the_rules_and_analysis_select_on() {
    let docs = yaml_docs(&deploy("prometheus/podmonitor.yaml"));
    let pm = find_kind(&docs, "PodMonitor");
    let job_label = pm["spec"]["jobLabel"].as_str().unwrap();
    let selector = &pm["spec"]["selector"]["matchLabels"];
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "admin");
    // The job label's value comes from that pod label: it must be
    // `otlp-client` on the pods of the Deployment and of the Rollout, which
    // the selector must match too.
    for file in ["kubernetes/deployment.yaml", "argo/rollout.yaml"] {
        let docs = yaml_docs(&deploy(file));
        let kind = if file.contains("argo") {
            "Rollout"
        } else {
            "Deployment"
        };
        let labels = &find_kind(&docs, kind)["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels[job_label], "otlp-client", "{file}");
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&labels[k], v, "{file}: selector {k}");
        }
    }
    let rules = read(&deploy("prometheus/alert_rules.yml"));
    assert!(rules.contains("job=\"otlp-client\""));
}

/// Turns a scrape into promtool input series: every sample, with the
/// `job` and `instance` a scrape adds, constant for `points` minutes.
fn as_input_series(exposition: &str, points: usize) -> String {
    let mut out = String::new();
    for line in exposition.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let labelled = match series.split_once('{') {
            Some((name, rest)) => {
                format!("{name}{{job=\"otlp-client\",instance=\"agent-0:8080\",{rest}")
            }
            None => format!("{series}{{job=\"otlp-client\",instance=\"agent-0:8080\"}}"),
        };
        let labelled = labelled.replace(",}", "}");
        // promtool spells infinity `+Inf` (otlp_outage_absorbable_seconds with no intake).
        let v = if v.is_infinite() {
            "+Inf+0".to_owned()
        } else {
            v.to_string()
        };
        out.push_str(&format!(
            "      - series: '{labelled}'\n        values: '{v}x{points}'\n"
        ));
    }
    out.push_str(&format!(
        "      - series: 'up{{job=\"otlp-client\",instance=\"agent-0:8080\"}}'\n        values: '1x{points}'\n"
    ));
    out
}

#[test]
fn no_alert_fires_on_the_scrape_of_a_healthy_running_agent() {
    // Series shaped exactly like a real scrape of the running agent (names,
    // labels, pre-created zeros): a healthy, idle agent must fire nothing,
    // which catches selectors that only match the synthetic test series.
    let agent = Agent::start();
    let (status, body) = agent.get("/metrics");
    assert_eq!(status, 200, "{body}");
    let rules = read(&deploy("prometheus/alert_rules.yml"));
    let alerts = alert_names(&rules);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        deploy("prometheus/alert_rules.yml"),
        dir.path().join("alert_rules.yml"),
    )
    .unwrap();
    let mut test = String::from(
        "rule_files:\n  - alert_rules.yml\nevaluation_interval: 1m\ntests:\n  - name: real scrape of a healthy agent\n    interval: 1m\n    input_series:\n",
    );
    test.push_str(&as_input_series(&body, 20));
    test.push_str("    alert_rule_test:\n");
    for a in &alerts {
        test.push_str(&format!(
            "      - {{eval_time: 15m, alertname: {a}, exp_alerts: []}}\n"
        ));
    }
    std::fs::write(dir.path().join("real_scrape_test.yml"), &test).unwrap();
    let out = run(
        Command::new(promtool())
            .args(["test", "rules", "real_scrape_test.yml"])
            .current_dir(dir.path()),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}\n{test}", text(&out));
}

// === helm ===

fn chart() -> PathBuf {
    deploy("helm/otlp-client")
}

/// Renders `chart` with `sets` (`key.path=value`) into a fresh directory;
/// returns it with the rendered files.
fn render_chart(chart: &Path, sets: &[&str]) -> (tempfile::TempDir, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/python/render_chart.py"))
        .arg(chart)
        .arg(out.path());
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = run(&mut cmd, Duration::from_secs(60));
    assert!(o.status.success(), "render_chart failed:\n{}", text(&o));
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (out, files)
}

fn rendered_docs(files: &[PathBuf]) -> Vec<serde_json::Value> {
    files.iter().flat_map(|f| yaml_docs(f)).collect()
}

fn find_named<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:?}"))
}

#[test]
fn helm_chart_renders_to_manifests_that_pass_kubernetes_validate() {
    for (sets, expected) in [
        (
            &[][..],
            &[
                "configmap/",
                "deployment/",
                "service/otlp-client ",
                "service/otlp-client-admin ",
            ][..],
        ),
        (
            &[
                "service.headless=true",
                "headersSecret.name=otlp-client-secret",
                "adminService.enabled=false",
            ][..],
            &[
                "configmap/",
                "deployment/",
                "service/otlp-client ",
                "service/otlp-client-headless ",
            ][..],
        ),
    ] {
        let (_dir, files) = render_chart(&chart(), sets);
        let out = kubernetes_validate(&files);
        let t = text(&out);
        assert!(
            out.status.success(),
            "{sets:?}: kubernetes-validate failed:\n{t}"
        );
        for kind in expected {
            assert!(
                t.contains(&format!("passed for resource {kind}")),
                "{sets:?}: {kind} not validated:\n{t}"
            );
        }
        assert!(!t.contains("Couldn't find schema"), "{t}");
        let docs = rendered_docs(&files);
        assert_eq!(
            docs.iter()
                .any(|d| d["metadata"]["name"] == "otlp-client-admin"),
            !sets.contains(&"adminService.enabled=false"),
            "{sets:?}"
        );
    }
    // A broken value is refused: the validation is not vacuous.
    let (_dir, files) = render_chart(&chart(), &["replicas=three"]);
    assert!(!kubernetes_validate(&files).status.success());
}

#[test]
fn helm_chart_wires_the_agent_as_deploy_kubernetes_does() {
    let (_dir, files) = render_chart(
        &chart(),
        &[
            "service.headless=true",
            "headersSecret.name=otlp-client-secret",
        ],
    );
    let docs = rendered_docs(&files);
    let d = find_named(&docs, "Deployment", "otlp-client");
    let plain = find_kind(
        &yaml_docs(&deploy("kubernetes/deployment.yaml")),
        "Deployment",
    )
    .clone();
    let (c, pc) = (
        &d["spec"]["template"]["spec"]["containers"][0],
        &plain["spec"]["template"]["spec"]["containers"][0],
    );
    for key in [
        "image",
        "args",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "securityContext",
        "resources",
        "volumeMounts",
    ] {
        assert_eq!(
            c[key], pc[key],
            "{key} differs from deploy/kubernetes/deployment.yaml"
        );
    }
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"],
        plain["spec"]["template"]["spec"]["securityContext"]
    );
    assert_eq!(d["spec"]["replicas"], 3);
    let headers = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "OTEL_EXPORTER_OTLP_HEADERS")
        .expect("headersSecret.name wires the headers");
    assert_eq!(
        headers["valueFrom"]["secretKeyRef"]["name"],
        "otlp-client-secret"
    );
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    let svc = find_named(&docs, "Service", "otlp-client");
    assert_eq!(service_ports(svc), BTreeSet::from([4317, 4318]));
    let admin = find_named(&docs, "Service", "otlp-client-admin");
    assert_eq!(service_ports(admin), BTreeSet::from([8080]));
    let headless = find_named(&docs, "Service", "otlp-client-headless");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(service_ports(headless), BTreeSet::from([4317, 4318]));
    for s in [svc, admin, headless] {
        for (k, v) in s["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{} selects no pod", s["metadata"]["name"]);
        }
    }
    // The config the ConfigMap carries is a valid agent config.
    let cm = find_named(&docs, "ConfigMap", "otlp-client-config");
    assert_eq!(
        d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        "otlp-client-config"
    );
    let config = cm["data"]["config.yaml"].as_str().unwrap();
    assert!(config.contains("listen: 0.0.0.0:8080"), "{config}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = run(
        bin().arg("validate-config").arg(&path),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{config}\n{}", text(&out));
    // Without a Secret name, no headers variable (nothing dangling).
    let (_dir, files) = render_chart(&chart(), &[]);
    let docs = rendered_docs(&files);
    let c = &find_named(&docs, "Deployment", "otlp-client")["spec"]["template"]["spec"]["containers"]
        [0];
    assert!(
        !c["env"].to_string().contains("OTEL_EXPORTER_OTLP_HEADERS"),
        "{c}"
    );
}

#[test]
fn the_chart_templater_refuses_what_it_cannot_render_like_helm() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("c");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "a: {b: 1}\nl: [1, 2]\n").unwrap();
    for bad in [
        "{{ range .Values.l }}x{{ end }}",
        "{{ include \"x\" . }}",
        "{{ .Values.a }}",
        "{{ if .Values.a.b }}open",
        "{{ .Values.a.b | upper }}",
    ] {
        std::fs::write(chart.join("templates/t.yaml"), bad).unwrap();
        let out = run(
            Command::new(python())
                .arg(root().join("tests/python/render_chart.py"))
                .arg(&chart)
                .arg(dir.path().join("out")),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out));
    }
    std::fs::write(
        chart.join("templates/t.yaml"),
        "k: {{ .Values.a.b | quote }}\n{{- if not .Values.missing }}\nm: {{ .Release.Name }}\n{{- end }}\nn:\n  {{- toYaml .Values.l | nindent 2 }}\n",
    )
    .unwrap();
    let (_d, files) = render_chart(&chart, &["a.b=7"]);
    assert_eq!(
        read(&files[0]),
        "k: \"7\"\nm: otlp-client\nn:\n  - 1\n  - 2\n"
    );
}

// === Dockerfile ===

/// The Dockerfile's instructions: (keyword, arguments), continuation lines
/// joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&root().join("Dockerfile"));
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || (l.is_empty() && pending.is_empty()) {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(l);
                let (k, v) = pending.split_once(' ').unwrap_or((&pending, ""));
                out.push((k.to_ascii_uppercase(), v.trim().to_owned()));
                pending.clear();
            }
        }
    }
    out
}

#[test]
fn dockerfile_builds_with_the_pinned_toolchain_and_runs_the_agent_as_non_root() {
    let ins = dockerfile();
    let all = |k: &str| {
        ins.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let toolchain = read(&root().join("rust-toolchain.toml"));
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        all("ARG").contains(&format!("RUST_VERSION={channel}").as_str()),
        "RUST_VERSION is not {channel}: {ins:?}"
    );
    // Multi-stage: a rust build stage, a slim runtime that copies the binary only.
    let froms = all("FROM");
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[0].starts_with("rust:${RUST_VERSION}") && froms[0].ends_with("AS build"),
        "{froms:?}"
    );
    assert!(
        froms[1].contains("slim") && !froms[1].starts_with("rust"),
        "{froms:?}"
    );
    let runtime_start = ins.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let runtime = &ins[runtime_start..];
    assert!(
        runtime.iter().any(|(k, v)| k == "COPY"
            && v.starts_with("--from=build ")
            && v.ends_with("/usr/local/bin/otlp-client")),
        "{runtime:?}"
    );
    assert!(
        all("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked -p otlp-client")),
        "{ins:?}"
    );
    // Non-root, as the pods' securityContext (runAsUser 10001) expects.
    let users = runtime
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>();
    assert_eq!(users, ["10001:10001"], "{runtime:?}");
    let user_at = runtime.iter().position(|(k, _)| k == "USER").unwrap();
    assert!(
        runtime[user_at..].iter().all(|(k, _)| k != "RUN"),
        "nothing may run as root after USER"
    );
    assert_eq!(
        all("ENTRYPOINT"),
        [r#"["/usr/local/bin/otlp-client", "run"]"#]
    );
    let mut exposed: Vec<&str> = all("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .collect();
    exposed.sort_unstable();
    assert_eq!(exposed, ["4317", "4318", "8080"]);
    // The image name and tag that deploy/ runs.
    let label = all("LABEL").join(" ");
    let plain = find_kind(
        &yaml_docs(&deploy("kubernetes/deployment.yaml")),
        "Deployment",
    )
    .clone();
    let image = plain["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    let (name, tag) = image.rsplit_once(':').unwrap();
    assert!(
        label.contains(&format!("org.opencontainers.image.title=\"{name}\"")),
        "{label}"
    );
    assert!(
        label.contains(&format!("org.opencontainers.image.version=\"{tag}\"")),
        "{label}"
    );
    assert!(read(&root().join("Dockerfile")).contains(&format!("docker build -t {image} .")));
    assert_eq!(
        tag,
        env!("CARGO_PKG_VERSION"),
        "the image tag follows the crate version"
    );
    // The build context leaves out build output.
    let ignore = read(&root().join(".dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target"), "{ignore}");
    // The manifests' args are flags of `run`, which the entrypoint names.
    let args = plain["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert_ne!(args[0], "run", "the entrypoint already says run");
}

// === systemd ===

fn systemd_analyze() -> PathBuf {
    let p = Path::new("/usr/bin/systemd-analyze");
    assert!(
        p.exists(),
        "systemd-analyze not found: install the Debian package `systemd`"
    );
    p.to_path_buf()
}

/// The unit with its binary path pointed at the binary under test, so that
/// `verify` checks a real executable.
fn unit_under_test(dir: &Path, unit: &str) -> PathBuf {
    let exe = env!("CARGO_BIN_EXE_otlp-client");
    let path = dir.join("otlp-client.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/otlp-client", exe)).unwrap();
    path
}

#[test]
fn systemd_unit_verifies_cleanly_and_is_hardened() {
    let unit = read(&deploy("systemd/otlp-client.service"));
    let dir = tempfile::tempdir().unwrap();
    let path = unit_under_test(dir.path(), &unit);
    let out = run(
        Command::new(systemd_analyze())
            .args(["verify", "--man=no"])
            .arg(&path),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).trim().is_empty(),
        "systemd-analyze verify warns:\n{}",
        text(&out)
    );
    // Exposure at most 2.0 of 10 (systemd prints it; the threshold is x10).
    let security = |path: &Path| {
        run(
            Command::new(systemd_analyze())
                .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
                .arg(path),
            Duration::from_secs(60),
        )
    };
    let out = security(&path);
    assert!(out.status.success(), "exposure above 2.0:\n{}", text(&out));
    for required in [
        "ExecStart=/usr/local/bin/otlp-client run --config /etc/otlp/config.yaml",
        "StateDirectory=otlp-client",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(required), "{required} missing");
    }
    // The stop timeout leaves the agent's flush time to finish.
    assert!(unit.contains("--shutdown-timeout 20s") && unit.contains("TimeoutStopSec=30s"));
    // The checks bite: a misspelt key warns, an unhardened unit is exposed.
    let bad = tempfile::tempdir().unwrap();
    let path = unit_under_test(
        bad.path(),
        &unit.replace("ProtectSystem=strict", "ProtectSytem=strict"),
    );
    let out = run(
        Command::new(systemd_analyze())
            .args(["verify", "--man=no"])
            .arg(&path),
        Duration::from_secs(60),
    );
    assert!(text(&out).contains("Unknown key"), "{}", text(&out));
    let soft: String = unit
        .lines()
        .filter(|l| {
            !l.starts_with("Protect")
                && !l.starts_with("Private")
                && !l.starts_with("Restrict")
                && !l.starts_with("SystemCall")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = unit_under_test(bad.path(), &soft);
    assert!(
        !security(&path).status.success(),
        "an unhardened unit passes the threshold"
    );
}
