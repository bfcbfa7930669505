#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interop: the `OTEL_EXPORTER_OTLP_HEADERS` parsing agrees with the
//! OpenTelemetry Python SDK (`opentelemetry.util.re.parse_env_headers`) on
//! every well-formed input; where Python only logs a warning and skips an
//! entry, we report a problem and skip it too.
//!
//! The interpreter comes from `OTLP_PYTHON`, else `<workspace>/.ci/venv/bin/python`.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use otlp_config::{Env, Sources};
use otlp_core::Signal;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OTLP_PYTHON") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".ci/venv/bin/python");
    assert!(
        p.exists(),
        "python venv not found at {}: run `bash .ci/run` (or set OTLP_PYTHON) to install it",
        p.display()
    );
    p
}

const SCRIPT: &str = r#"
import json, sys, logging
logging.disable(logging.CRITICAL)
from opentelemetry.util.re import parse_env_headers
for line in sys.stdin:
    s = json.loads(line)
    print(json.dumps(sorted(parse_env_headers(s, liberal=False).items())))
"#;

#[test]
fn header_parsing_matches_the_python_sdk() {
    let inputs = [
        "api-key=secret",
        "a=1,b=2",
        " a = 1 , b=x%20y ",
        "Authorization=Bearer%20t%3D%3D",
        "x-tenant=acme,,x-env=prod,",
        "k=v=w",
        "key=%E4%BD%A0%E5%A5%BD",
        "UPPER=Case",
        "a=1,noequals,b=2",
    ];
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python (run `bash .ci/run` to install the venv)");
    {
        let mut stdin = child.stdin.take().unwrap();
        for s in inputs {
            writeln!(stdin, "{}", serde_json::to_string(s).unwrap()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), inputs.len());
    for (input, line) in inputs.iter().zip(lines) {
        let python: Vec<(String, String)> = serde_json::from_str(&line).unwrap();
        let r = Sources::new()
            .with_env(Env::from_map([("OTEL_EXPORTER_OTLP_HEADERS", *input)]))
            .resolve();
        let mut ours = r.config.signal(Signal::Traces).headers.clone();
        ours.sort();
        assert_eq!(ours, python, "input {input:?}");
        // An entry Python skips with a warning is a reported problem here.
        assert_eq!(
            r.problems.is_empty(),
            !input.contains("noequals"),
            "{input:?}: {:?}",
            r.problems
        );
    }
}
