//! `cargo xtask bench`: the end-to-end comparison with opentelemetry-otlp.
//!
//! It builds the benchmark binaries of `otlp-benches` in release once, then
//! runs every scenario several times. One run starts `count-sink` (the
//! counting receiver) and the producer as separate processes, measures the
//! producer from outside (wall time, user+sys CPU, peak RSS through
//! `/usr/bin/time`, or `/proc` polling where that is missing), takes the
//! delivered count from the sink, and kills everything that outlives its
//! deadline. Medians of the runs go into `BENCHMARKS.md` at the workspace
//! root, with the machine, the command and the span shape, and with ratios
//! against the peer measured in the same invocation.
//!
//! `cargo xtask bench criterion [args]` runs the criterion benches instead.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Read},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime},
};

use crate::{Result, root};

mod measure;
mod process;
mod report;
mod scenarios;
#[cfg(test)]
mod tests;

use self::{measure::*, process::*, report::*, scenarios::*};

/// GNU time, from the Debian package `time`.
const GNU_TIME: &str = "/usr/bin/time";

/// Its output format: one line we can find among the child's complaints.
const TIME_FORMAT: &str = "xtask-time user=%U sys=%S maxrss_kb=%M exit=%x";

/// How long count-sink may take to print its addresses.
const SINK_START: Duration = Duration::from_secs(10);

/// The package and binary of the relay agent (`otlp-client run`).
const AGENT_PACKAGE: &str = "otlp-client";
const AGENT_BIN: &str = "otlp-client";

/// How long the agent may take to accept connections on its receiver.
const AGENT_START: Duration = Duration::from_secs(15);

/// How long the agent may take to drain and exit after SIGTERM (its own
/// shutdown deadline is 10 s, plus up to 5 s for the receivers to stop).
const AGENT_STOP: Duration = Duration::from_secs(30);

/// The options of one invocation.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    runs: usize,
    spans: u64,
    quick: bool,
    /// Deadline of one producer run.
    timeout: Duration,
    /// Only scenarios whose key contains one of these.
    only: Vec<String>,
    out: PathBuf,
}

/// Which side of the comparison a scenario measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// opentelemetry_sdk batch processor + opentelemetry-otlp.
    Peer,
    /// The same SDK tracer, exported by our SDK bridge.
    OurSdkBridge,
    /// Our facade API producing the same shape.
    OurNative,
    /// `otlp-client run` forwarding what `otlp-client send` sends it.
    Relay,
}

/// The producer process of a scenario.
///
/// A producer is any release binary of a workspace package that sends to the
/// sink and prints one JSON line with at least `"created":N` (the items it
/// handed to its pipeline) on stdout before it exits 0. Plugging our side in
/// is one more `Bin` entry.
#[derive(Clone, Copy, Debug)]
enum Producer {
    /// Run `bin` (built from `package`) with `--signal`, `--protocol`,
    /// `--endpoint` and `--count` from the scenario, then `extra`, where
    /// `{count}` becomes the item count.
    Bin {
        package: &'static str,
        bin: &'static str,
        extra: &'static [&'static str],
    },
    /// Not built yet: the scenario is listed, never measured or faked.
    // Every scenario has its producer today; the variant stays for the next
    // one added before its producer exists.
    #[allow(dead_code)]
    Pending { waiting_for: &'static str },
}

/// One line of the comparison.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    key: &'static str,
    title: &'static str,
    side: Side,
    signal: &'static str,
    protocol: &'static str,
    /// Request compression (none, gzip, zstd) toward the sink: the
    /// producer's, or on a relay row the agent's upstream (the producer
    /// sends the agent uncompressed requests, as most SDKs do by default).
    compression: &'static str,
    producer: Producer,
    /// The peer scenario this one's ratios are taken against.
    baseline: &'static str,
}

// === impl Scenario ===

impl Scenario {
    /// Whether the producer sends to an `otlp-client run` agent, which
    /// forwards to count-sink and is measured too (the relay).
    fn relay(&self) -> bool {
        self.side == Side::Relay
    }

    /// How many count-sinks the relay agent balances over (`loadbalancing:`
    /// by trace id, a static list): 3 for the `relay-lb3-*` rows, else 0
    /// (a plain upstream).
    fn balanced_backends(&self) -> usize {
        if self.key.starts_with("relay-lb3-") {
            3
        } else {
            0
        }
    }

    /// The protocol column: `grpc`, or `grpc + gzip` with compression.
    fn wire(&self) -> String {
        if self.compression == "none" {
            self.protocol.to_owned()
        } else {
            format!("{} + {}", self.protocol, self.compression)
        }
    }

    /// The producer's command line: the scenario's signal and protocol, the
    /// endpoint and count, then the producer's extra flags (`{count}` filled in).
    fn producer_args(&self, extra: &[&str], endpoint: &str, count: u64) -> Vec<String> {
        let count = count.to_string();
        let mut args = vec![
            "--signal".to_owned(),
            self.signal.to_owned(),
            "--protocol".to_owned(),
            self.protocol.to_owned(),
            "--endpoint".to_owned(),
            endpoint.to_owned(),
            "--count".to_owned(),
            count.clone(),
        ];
        if !self.relay() && self.compression != "none" {
            args.extend(["--compression".to_owned(), self.compression.to_owned()]);
        }
        args.extend(extra.iter().map(|a| a.replace("{count}", &count)));
        args
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
struct Run {
    wall_s: f64,
    cpu_s: f64,
    max_rss_kib: u64,
    created: u64,
    delivered: u64,
    sink_cpu_s: f64,
    /// Whether the numbers came from `/proc` polling instead of GNU time.
    polled: bool,
    /// The relay agent's user+sys CPU seconds (relay scenarios only).
    agent_cpu_s: Option<f64>,
    /// The relay agent's peak RSS in KiB (relay scenarios only).
    agent_rss_kib: Option<u64>,
    note: String,
}

/// The medians of a scenario's runs.
#[derive(Clone, Debug, PartialEq)]
struct Summary {
    runs: usize,
    wall_s: f64,
    cpu_s: f64,
    max_rss_kib: f64,
    created: f64,
    delivered: f64,
    /// The median of each run's delivered / wall time.
    throughput: f64,
    sink_cpu_s: f64,
    /// Medians of the relay agent's CPU seconds and peak RSS (KiB), when measured.
    agent: Option<(f64, f64)>,
}

const USAGE: &str = "usage: [OTLP_BENCH_AGENT=path/to/otlp-client] cargo xtask bench [--quick] [--runs N] [--spans N] [--timeout SECS] [--only KEY]... [--out FILE]
       cargo xtask bench criterion [cargo bench args]

Runs the end-to-end comparison (release build, separate processes, medians of
--runs runs, default 3, of --spans items each, default 1000000) and rewrites
BENCHMARKS.md. --quick: 1 run of 50000 items. --only keeps the scenarios whose
key contains KEY.";

// === impl Options ===

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            runs: 3,
            spans: 1_000_000,
            quick: false,
            timeout: Duration::ZERO,
            only: Vec::new(),
            out: root().join("BENCHMARKS.md"),
        };
        let mut runs = None;
        let mut spans = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--quick" => o.quick = true,
                "--runs" => runs = Some(number(flag, value()?)?),
                "--spans" => spans = Some(number(flag, value()?)?),
                "--timeout" => o.timeout = Duration::from_secs(number(flag, value()?)?),
                "--only" => o.only.push(value()?.clone()),
                "--out" => o.out = PathBuf::from(value()?),
                "--help" | "-h" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown flag '{other}'\n\n{USAGE}")),
            }
        }
        if o.quick {
            o.runs = 1;
            o.spans = 50_000;
        }
        o.runs = runs.map_or(o.runs, |r| r as usize);
        o.spans = spans.unwrap_or(o.spans);
        if o.runs == 0 || o.spans == 0 {
            return Err("--runs and --spans must be at least 1".to_owned());
        }
        if o.timeout.is_zero() {
            // The slowest producer measured so far makes ~100k items/s;
            // leave it several times that plus start-up.
            o.timeout = Duration::from_secs(30 + o.spans / 20_000);
        }
        Ok(o)
    }

    fn selected(&self, s: &Scenario) -> bool {
        self.only.is_empty() || self.only.iter().any(|k| s.key.contains(k.as_str()))
    }
}

fn number(flag: &str, raw: &str) -> Result<u64> {
    raw.replace('_', "")
        .parse()
        .map_err(|e| format!("{flag} '{raw}': {e}; give a whole number"))
}

// === impl Side ===

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Peer => "peer",
            Side::OurSdkBridge => "our SDK bridge",
            Side::OurNative => "our native path",
            Side::Relay => "relay",
        }
    }
}

/// Entry point of `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result {
    if args.first().map(String::as_str) == Some("criterion") {
        let mut a = vec!["bench", "-p", "otlp-benches"];
        a.extend(args[1..].iter().map(String::as_str));
        return crate::run("cargo", &a, &[]);
    }
    let opts = Options::parse(args)?;
    // One release build of every package a selected producer (or relay
    // agent) comes from. Each package is built on its own, so that it gets
    // exactly its own features (one invocation would unify them across the
    // packages and measure, say, the agent with the benches' extra features).
    let mut packages = vec!["otlp-benches"];
    for s in SCENARIOS.iter().filter(|s| opts.selected(s)) {
        if let Producer::Bin { package, .. } = s.producer
            && !packages.contains(&package)
        {
            packages.push(package);
        }
        if s.relay() && !packages.contains(&AGENT_PACKAGE) {
            packages.push(AGENT_PACKAGE);
        }
    }
    for p in &packages {
        crate::run("cargo", &["build", "--release", "-p", p, "--bins"], &[])?;
    }
    let bin_dir = target_dir().join("release");
    let sink = bin_dir.join("count-sink");
    let peer = bin_dir.join("peer-otlp");
    for b in [&sink, &peer] {
        if !b.exists() {
            return Err(format!(
                "{} is missing after the build; is CARGO_TARGET_DIR the same for cargo and xtask?",
                b.display()
            ));
        }
    }
    let shape = capture(Command::new(&peer).arg("--describe"))?;
    let gnu_time = Path::new(GNU_TIME).exists();
    if !gnu_time {
        println!(
            "note: {GNU_TIME} is missing (Debian package `time`); measuring by polling /proc instead"
        );
    }
    let machine = machine();
    let mut results: Vec<(&Scenario, Vec<Run>)> = Vec::new();
    for s in SCENARIOS.iter().filter(|s| opts.selected(s)) {
        let Producer::Bin { .. } = s.producer else {
            continue;
        };
        let mut runs = Vec::with_capacity(opts.runs);
        for i in 0..opts.runs {
            let r = run_once(s, &opts, &sink, &bin_dir, gnu_time)?;
            println!(
                "{} run {}/{}: {} of {} delivered in {:.2}s, {:.2} CPU-s, {} MiB peak{}",
                s.key,
                i + 1,
                opts.runs,
                r.delivered,
                r.created,
                r.wall_s,
                r.cpu_s,
                r.max_rss_kib / 1024,
                if r.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.note)
                }
            );
            runs.push(r);
        }
        results.push((s, runs));
    }
    let md = render(&opts, args, &machine, &shape, &results, gnu_time);
    fs::write(&opts.out, md).map_err(|e| format!("writing {}: {e}", opts.out.display()))?;
    println!("\nwrote {}", opts.out.display());
    Ok(())
}
