#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `otlp-client completions SHELL` and `otlp-client man`, checked by the real
//! tools: the bash script is loaded in bash and asked for completions, the
//! fish script in fish (`complete -C`), the zsh script is parsed by zsh, and
//! the man page is rendered by `man -l`.
//!
//! Tools: bash, zsh, fish and man (Debian packages `bash`, `zsh`, `fish`,
//! `man-db`); `bash .ci/run` installs zsh and fish.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod common;

use common::*;

fn script(shell: &str, dir: &Path) -> PathBuf {
    let out = run(bin().args(["completions", shell]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = dir.join(format!("otlp-client.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("{name} not found: install the Debian package `{name}` (`bash .ci/run` does)")
    })
}

/// What bash's programmable completion offers for `words` (the last one is
/// the word being completed), through the function the script registered.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\n\
         f=$(complete -p otlp-client | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         \"$f\" otlp-client '{}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let out = run(
        Command::new(tool("bash")).args(["--norc", "--noprofile", "-c", &program]),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_completes_subcommands_their_flags_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = script("bash", dir.path());
    assert_eq!(
        bash_complete(&script, &["otlp-client", "val"]),
        ["validate-config"]
    );
    let top = bash_complete(&script, &["otlp-client", ""]);
    for sub in ["run", "send", "sink", "diagnose", "completions", "man"] {
        assert!(top.iter().any(|w| w == sub), "{sub} not offered: {top:?}");
    }
    // A subcommand's own flags (broken in clap_complete for hyphenated
    // binaries, clap-rs/clap#6421; the command rewrites the script).
    assert_eq!(
        bash_complete(&script, &["otlp-client", "send", "--sig"]),
        ["--signal"]
    );
    assert_eq!(
        bash_complete(&script, &["otlp-client", "send", "--signal", ""]),
        ["traces", "metrics", "logs", "all"]
    );
    assert_eq!(
        bash_complete(&script, &["otlp-client", "completions", "f"]),
        ["fish"]
    );
}

#[test]
fn fish_completion_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = script("fish", dir.path());
    let complete = |line: &str| -> String {
        let out = run(
            Command::new(tool("fish")).args([
                "--no-config",
                "-c",
                &format!("source '{}'; complete -C '{line}'", script.display()),
            ]),
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subs = complete("otlp-client ");
    for sub in ["run", "send", "diagnose", "man"] {
        assert!(
            subs.lines().any(|l| l.split('\t').next() == Some(sub)),
            "{sub} not offered:\n{subs}"
        );
    }
    let flags = complete("otlp-client send --sig");
    assert!(flags.lines().any(|l| l.starts_with("--signal")), "{flags}");
}

#[test]
fn zsh_completion_parses_and_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let script = script("zsh", dir.path());
    let body = std::fs::read_to_string(&script).unwrap();
    assert!(body.starts_with("#compdef otlp-client"), "{body}");
    for sub in ["'run:", "'send:", "'diagnose:", "'completions:", "'man:"] {
        assert!(body.contains(sub), "{sub} missing");
    }
    let out = run(
        Command::new(tool("zsh")).arg("-n").arg(&script),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "zsh -n: {}", text(&out));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(bin().args(["completions", "tcsh"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn man_page_renders_with_man_and_documents_every_subcommand_and_exit_code() {
    let out = run(bin().arg("man"), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("otlp-client.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = run(
        Command::new(tool("man"))
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"),
        Duration::from_secs(30),
    );
    assert!(rendered.status.success(), "{}", text(&rendered));
    let t = String::from_utf8_lossy(&rendered.stdout);
    assert!(t.contains("NAME"), "{t}");
    assert!(t.contains("otlp-client - "), "{t}");
    for sub in [
        "RUN",
        "SEND",
        "SINK",
        "DIAGNOSE",
        "DOCTOR",
        "TOP",
        "DEMO",
        "VALIDATE-CONFIG",
        "EXPLAIN-CONFIG",
        "COMPLETIONS",
        "MAN",
    ] {
        assert!(
            t.contains(&format!("OTLP-CLIENT {sub}")),
            "no section for {sub}:\n{t}"
        );
    }
    assert!(t.contains("--shutdown-timeout"), "{t}");
    assert!(t.contains("EXIT STATUS"), "{t}");
    assert!(t.contains("2 bad usage"), "{t}");
    // groff warns on stderr about broken requests.
    assert!(
        !String::from_utf8_lossy(&rendered.stderr).contains("warning"),
        "{}",
        text(&rendered)
    );
}
