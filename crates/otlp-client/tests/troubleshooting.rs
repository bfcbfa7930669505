#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `docs/TROUBLESHOOTING.md` works as printed.
//!
//! Convention (also stated at the top of the guide):
//!
//! - Every line of a fenced ```` ```sh ```` block whose command (after optional
//!   `NAME=value` environment assignments) is `otlp-client` is run here, in
//!   document order, in one temporary working directory.
//! - Each such line ends with `# exit N ...` (the exit code the guide promises;
//!   the test asserts it) or `# runs until stopped` (the agent and the sink: the
//!   test starts it, checks it is still running after its start-up, then kills
//!   it). A line with neither marker fails the test.
//! - Substitutions, applied to the commands and to the files below:
//!   `otel-collector:4317` becomes the gRPC address of a local `otlp-client sink`,
//!   `otel-collector:4318` its HTTP address; the listen addresses `0.0.0.0:4317`,
//!   `0.0.0.0:4318`, `127.0.0.1:4317`, `127.0.0.1:4318` and `127.0.0.1:8080`
//!   become `127.0.0.1:0`, so parallel tests never fight over ports.
//! - A ```` ```yaml ```` block whose first line is `# file: NAME` is written to
//!   `NAME` in the working directory before the commands run.
//! - The environment is cleared of `OTEL_*` / `OTLP_*` before each command,
//!   then the line's own assignments are applied. A `|` ends the command: only
//!   `otlp-client`'s exit code is checked. Unsubstituted `$VAR` or `<...>`
//!   placeholders fail the test.
//!
//! Lines of other tools (`curl`, `kubectl`, `cargo`, `jq`) are not run, but
//! every admin path a `curl` line uses is fetched from a running agent, and
//! every runbook anchor of `deploy/prometheus/alert_rules.yml` must be a
//! heading of the guide.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::*;

fn guide() -> String {
    std::fs::read_to_string(root().join("docs/TROUBLESHOOTING.md")).unwrap()
}

// === the guide's blocks ===

/// One fenced block: its info string and lines.
#[derive(Debug)]
struct Block {
    lang: String,
    lines: Vec<String>,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in md.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(b) => out.push(b),
                None => {
                    current = Some(Block {
                        lang: info.trim().to_owned(),
                        lines: Vec::new(),
                    });
                }
            }
        } else if let Some(b) = current.as_mut() {
            b.lines.push(line.to_owned());
        }
    }
    assert!(current.is_none(), "unclosed code block in the guide");
    out
}

/// What the guide promises about a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Exit(i32),
    RunsUntilStopped,
}

/// An `otlp-client` line of a `sh` block.
#[derive(Debug)]
struct DocCommand {
    line: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    expect: Expect,
}

/// Splits a shell line into words, honouring single and double quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// Every `otlp-client` command line of the guide's `sh` blocks, in order.
fn doc_commands(md: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    for b in blocks(md).iter().filter(|b| b.lang == "sh") {
        for line in &b.lines {
            let (command, comment) = match line.split_once(" # ") {
                Some((c, m)) => (c.trim(), m.trim()),
                None => (line.trim(), ""),
            };
            // A pipe ends the command whose exit code is checked.
            let command = command.split(" | ").next().unwrap_or("").trim();
            let words = shell_words(command);
            let n_env = words.iter().take_while(|w| is_assignment(w)).count();
            if words.get(n_env).map(String::as_str) != Some("otlp-client") {
                continue;
            }
            let expect = if comment == "runs until stopped" {
                Expect::RunsUntilStopped
            } else if let Some(rest) = comment.strip_prefix("exit ") {
                let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
                Expect::Exit(
                    code.parse()
                        .unwrap_or_else(|_| panic!("bad exit marker in guide line: {line}")),
                )
            } else {
                panic!("guide line has no `# exit N` or `# runs until stopped` marker: {line}");
            };
            let env = words[..n_env]
                .iter()
                .map(|w| {
                    let (k, v) = w.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            out.push(DocCommand {
                line: line.clone(),
                env,
                args: words[n_env + 1..].to_vec(),
                expect,
            });
        }
    }
    out
}

/// Files the guide shows as ```` ```yaml ```` blocks starting with `# file: NAME`.
fn doc_files(md: &str) -> Vec<(String, String)> {
    blocks(md)
        .into_iter()
        .filter(|b| b.lang == "yaml")
        .filter_map(|b| {
            let name = b
                .lines
                .first()?
                .trim()
                .strip_prefix("# file:")?
                .trim()
                .to_owned();
            Some((name, b.lines.join("\n") + "\n"))
        })
        .collect()
}

/// The stand-in collector and the port substitutions of the module docs.
struct Substitutions {
    grpc: String,
    http: String,
}

impl Substitutions {
    fn apply(&self, s: &str) -> String {
        s.replace("otel-collector:4317", &self.grpc)
            .replace("otel-collector:4318", &self.http)
            .replace("0.0.0.0:4317", "127.0.0.1:0")
            .replace("0.0.0.0:4318", "127.0.0.1:0")
            .replace("127.0.0.1:4317", "127.0.0.1:0")
            .replace("127.0.0.1:4318", "127.0.0.1:0")
            .replace("127.0.0.1:8080", "127.0.0.1:0")
    }
}

// === processes ===

/// Starts a long-running command, checks it survives its start-up, kills it.
fn check_runs_until_stopped(cmd: &mut Command, line: &str) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    if let Some(status) = exited {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("`{line}` should run until stopped but exited with {status}:\n{err}");
    }
}

// === tests ===

#[test]
fn guide_parsing_finds_commands_markers_and_files() {
    let md = "text\n```sh\nFOO=1 otlp-client explain-config   # exit 0: fine\n\
              curl -s http://x   # not run\n\
              otlp-client run --config 'a b.yaml' | tee x   # runs until stopped\n```\n\
              ```yaml\n# file: c.yaml\nendpoint: x\n```\n";
    let cmds = doc_commands(md);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(cmds[0].env, [("FOO".to_owned(), "1".to_owned())]);
    assert_eq!(cmds[0].args, ["explain-config"]);
    assert_eq!(cmds[0].expect, Expect::Exit(0));
    assert_eq!(cmds[1].args, ["run", "--config", "a b.yaml"]);
    assert_eq!(cmds[1].expect, Expect::RunsUntilStopped);
    assert_eq!(
        doc_files(md),
        [(
            "c.yaml".to_owned(),
            "# file: c.yaml\nendpoint: x\n".to_owned()
        )]
    );
    let unmarked = std::panic::catch_unwind(|| doc_commands("```sh\notlp-client demo\n```\n"));
    assert!(unmarked.is_err(), "a line without a marker must be refused");
}

#[test]
fn every_otlp_client_command_in_the_guide_exits_as_documented() {
    let md = guide();
    let commands = doc_commands(&md);
    assert!(commands.len() >= 20, "too few commands found: {commands:?}");
    let sink = Sink::start();
    let subs = Substitutions {
        grpc: sink.grpc.clone(),
        http: sink.http.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in doc_files(&md) {
        std::fs::write(dir.path().join(&name), subs.apply(&content)).unwrap();
    }
    let mut failures = Vec::new();
    for c in &commands {
        let args: Vec<String> = c.args.iter().map(|a| subs.apply(a)).collect();
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .map(|(k, v)| (k.clone(), subs.apply(v)))
            .collect();
        for word in args.iter().chain(env.iter().map(|(_, v)| v)) {
            let placeholder = word.contains('$') || (word.contains('<') && word.contains('>'));
            assert!(
                !placeholder,
                "unsubstituted placeholder in guide line: {}",
                c.line
            );
        }
        let mut cmd = bin();
        cmd.current_dir(dir.path()).args(&args).envs(env);
        match c.expect {
            Expect::RunsUntilStopped => check_runs_until_stopped(&mut cmd, &c.line),
            Expect::Exit(code) => {
                let out = run(&mut cmd, Duration::from_secs(90));
                if out.status.code() != Some(code) {
                    failures.push(format!(
                        "`{}`\n  expected exit {code}, got {:?}\n{}",
                        c.line,
                        out.status.code(),
                        text(&out)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
fn anchors(md: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.insert(slug);
    }
    out
}

#[test]
fn every_runbook_anchor_of_the_alert_rules_is_a_heading_of_the_guide() {
    let headings = anchors(&guide());
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alert_rules.yml")).unwrap();
    let mut n = 0;
    for line in rules.lines() {
        let Some(url) = line.trim().strip_prefix("runbook_url:") else {
            continue;
        };
        let (file, anchor) = url.trim().split_once('#').unwrap();
        assert!(file.ends_with("docs/TROUBLESHOOTING.md"), "{url}");
        assert!(
            headings.contains(anchor),
            "no heading for #{anchor} in the guide"
        );
        n += 1;
    }
    assert!(n >= 8, "only {n} runbook urls found");
}

#[test]
fn internal_links_of_the_guide_resolve() {
    let md = guide();
    let headings = anchors(&md);
    let mut n = 0;
    for (i, _) in md.match_indices("](#") {
        let anchor: String = md[i + 3..].chars().take_while(|c| *c != ')').collect();
        assert!(headings.contains(&anchor), "broken link #{anchor}");
        n += 1;
    }
    assert!(n > 10);
}

/// The first `127.0.0.1:PORT` in a log line.
fn loopback_addr(line: &str) -> Option<String> {
    let i = line.find("127.0.0.1:")?;
    let port: String = line[i + 10..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!port.is_empty() && port != "0").then(|| format!("127.0.0.1:{port}"))
}

fn http_status(addr: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp);
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"))
}

#[test]
fn every_admin_path_the_guide_curls_is_served_by_the_agent() {
    let md = guide();
    let mut paths = BTreeSet::new();
    for b in blocks(&md).iter().filter(|b| b.lang == "sh") {
        for line in &b.lines {
            if !line.trim_start().starts_with("curl ") {
                continue;
            }
            if let Some(i) = line.find("http://127.0.0.1:8080") {
                let path: String = line[i + "http://127.0.0.1:8080".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '\'')
                    .collect();
                paths.insert(path);
            }
        }
    }
    for p in ["/health", "/metrics", "/health/live", "/health/ready"] {
        assert!(paths.contains(p), "the guide never shows {p}: {paths:?}");
    }

    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{}\nreceivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n",
            sink.grpc
        ),
    )
    .unwrap();
    let mut agent = bin()
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stderr.take().unwrap()).lines();
    let mut admin = None;
    // Bounded: the agent logs its admin address among its first lines.
    for _ in 0..50 {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("admin server") {
            admin = loopback_addr(&line);
            break;
        }
    }
    let admin = admin.unwrap_or_else(|| {
        let _ = agent.kill();
        panic!("agent logged no admin address")
    });
    // Keep reading stderr so the agent never blocks on a full pipe.
    let drain = std::thread::spawn(move || for _ in lines {});
    let mut bad = Vec::new();
    for p in &paths {
        let status = http_status(&admin, p);
        if status != 200 && status != 503 {
            bad.push(format!("{p}: {status}"));
        }
    }
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = drain.join();
    assert!(
        bad.is_empty(),
        "admin paths in the guide not served: {bad:?}"
    );
}
