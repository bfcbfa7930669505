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

/// Every scenario, in table order. "Ours" entries stay `Pending` until their
/// producer exists; they are listed in BENCHMARKS.md, never in the table.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "peer-grpc-default",
        title: "peer: SDK batch processor + opentelemetry-otlp, gRPC, default queue (2048)",
        side: Side::Peer,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &[],
        },
        baseline: "peer-grpc-default",
    },
    Scenario {
        key: "peer-grpc-full",
        title: "peer: SDK batch processor + opentelemetry-otlp, gRPC, queue = whole run",
        side: Side::Peer,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "peer-http-full",
        title: "peer: SDK batch processor + opentelemetry-otlp, HTTP/protobuf, queue = whole run",
        side: Side::Peer,
        signal: "traces",
        protocol: "http",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-http-full",
    },
    Scenario {
        key: "peer-logs-grpc-full",
        title: "peer: SDK batch log processor + opentelemetry-otlp, logs, gRPC, queue = whole run",
        side: Side::Peer,
        signal: "logs",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-logs-grpc-full",
    },
    Scenario {
        key: "peer-grpc-gzip",
        title: "peer: SDK batch processor + opentelemetry-otlp, gRPC + gzip, queue = whole run",
        side: Side::Peer,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-grpc-gzip",
    },
    Scenario {
        key: "peer-http-gzip",
        title: "peer: SDK batch processor + opentelemetry-otlp, HTTP/protobuf + gzip, queue = whole run",
        side: Side::Peer,
        signal: "traces",
        protocol: "http",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-http-gzip",
    },
    Scenario {
        key: "peer-grpc-zstd",
        title: "peer: SDK batch processor + opentelemetry-otlp, gRPC + zstd, queue = whole run",
        side: Side::Peer,
        signal: "traces",
        protocol: "grpc",
        compression: "zstd",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "peer-otlp",
            extra: &["--queue", "{count}"],
        },
        baseline: "peer-grpc-zstd",
    },
    Scenario {
        key: "ours-sdk-grpc-default",
        title: "ours: same SDK tracer, our SDK bridge, gRPC, defaults (drop_oldest)",
        side: Side::OurSdkBridge,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-sdk",
            extra: &["--overflow", "default"],
        },
        baseline: "peer-grpc-default",
    },
    Scenario {
        key: "ours-sdk-grpc-block",
        title: "ours: same SDK tracer, our SDK bridge, gRPC, block policy",
        side: Side::OurSdkBridge,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-sdk",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "ours-sdk-http-block",
        title: "ours: same SDK tracer, our SDK bridge, HTTP/protobuf, block policy",
        side: Side::OurSdkBridge,
        signal: "traces",
        protocol: "http",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-sdk",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-http-full",
    },
    Scenario {
        key: "ours-sdk-logs-grpc-block",
        title: "ours: same SDK logger, our SDK bridge, logs, gRPC, block policy",
        side: Side::OurSdkBridge,
        signal: "logs",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-sdk",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-logs-grpc-full",
    },
    Scenario {
        key: "ours-native-grpc",
        title: "ours: native facade API, gRPC, block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "ours-native-http",
        title: "ours: native facade API, HTTP/protobuf, block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "http",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-http-full",
    },
    Scenario {
        key: "ours-native-direct-grpc",
        title: "ours: native facade API with borrowed `otlp::wire` records (no prost structs), gRPC, block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--direct"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "ours-native-direct-http",
        title: "ours: native facade API with borrowed `otlp::wire` records (no prost structs), HTTP/protobuf, block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "http",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--direct"],
        },
        baseline: "peer-http-full",
    },
    Scenario {
        key: "ours-native-logs-grpc",
        title: "ours: native facade API, logs, gRPC, block policy",
        side: Side::OurNative,
        signal: "logs",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-logs-grpc-full",
    },
    Scenario {
        key: "ours-native-preencoded-grpc",
        title: "ours: native facade API, requests of 512 spans encoded once and sent as batches, gRPC, block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--preencoded", "512"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "ours-sdk-grpc-gzip",
        title: "ours: same SDK tracer, our SDK bridge, gRPC + gzip, block policy",
        side: Side::OurSdkBridge,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-sdk",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-grpc-gzip",
    },
    Scenario {
        key: "ours-native-grpc-gzip",
        title: "ours: native facade API, gRPC + gzip (level 1), block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-grpc-gzip",
    },
    Scenario {
        key: "ours-native-http-gzip",
        title: "ours: native facade API, HTTP/protobuf + gzip (level 1), block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "http",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-http-gzip",
    },
    Scenario {
        key: "ours-native-grpc-zstd",
        title: "ours: native facade API, gRPC + zstd (level 1), block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "zstd",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block"],
        },
        baseline: "peer-grpc-zstd",
    },
    Scenario {
        key: "ours-native-direct-grpc-gzip",
        title: "ours: native facade API with borrowed `otlp::wire` records, gRPC + gzip (level 1), block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--direct"],
        },
        baseline: "peer-grpc-gzip",
    },
    Scenario {
        key: "ours-native-direct-http-gzip",
        title: "ours: native facade API with borrowed `otlp::wire` records, HTTP/protobuf + gzip (level 1), block policy",
        side: Side::OurNative,
        signal: "traces",
        protocol: "http",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--direct"],
        },
        baseline: "peer-http-gzip",
    },
    Scenario {
        key: "relay-grpc",
        title: "relay: `ours-native --preencoded 512` -> `otlp-client run` (block policy) -> count-sink, gRPC",
        side: Side::Relay,
        signal: "traces",
        protocol: "grpc",
        compression: "none",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--preencoded", "512"],
        },
        baseline: "peer-grpc-full",
    },
    Scenario {
        key: "relay-grpc-gzip",
        title: "relay: `ours-native --preencoded 512` -> `otlp-client run` (block policy, gzip upstream) -> count-sink, gRPC",
        side: Side::Relay,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &["--overflow", "block", "--preencoded", "512"],
        },
        baseline: "peer-grpc-gzip",
    },
    Scenario {
        key: "relay-grpc-gzip-passthrough",
        title: "relay: `ours-native --preencoded 512 --compression gzip` -> `otlp-client run` (block policy, gzip upstream: forwarded as received) -> count-sink, gRPC",
        side: Side::Relay,
        signal: "traces",
        protocol: "grpc",
        compression: "gzip",
        producer: Producer::Bin {
            package: "otlp-benches",
            bin: "ours-native",
            extra: &[
                "--overflow",
                "block",
                "--preencoded",
                "512",
                "--compression",
                "gzip",
            ],
        },
        baseline: "peer-grpc-gzip",
    },
];

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

/// The relay agent: `OTLP_BENCH_AGENT` (another build, for a before/after
/// comparison on the same machine) or the release build of this tree.
fn agent_bin(bin_dir: &Path) -> PathBuf {
    std::env::var_os("OTLP_BENCH_AGENT").map_or_else(|| bin_dir.join(AGENT_BIN), PathBuf::from)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Runs a command to completion and returns its stdout.
fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills a process group we started (the producer under GNU time, or the sink).
fn kill_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// A started count-sink: its process and the lines it prints.
struct SinkProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl SinkProcess {
    fn start(sink: &Path, expect: u64, max_secs: u64) -> Result<(SinkProcess, String, String)> {
        let mut child = Command::new(sink)
            .args([
                "--expect",
                &expect.to_string(),
                "--max-secs",
                &max_secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", sink.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("count-sink stdout was not captured")?;
        // Bounded: count-sink prints two lines in its life.
        let (tx, lines) = mpsc::sync_channel(16);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = SinkProcess { child, lines };
        let first = match p.lines.recv_timeout(SINK_START) {
            Ok(l) => l,
            Err(_) => {
                p.stop();
                return Err(format!(
                    "count-sink printed no addresses within {SINK_START:?}"
                ));
            }
        };
        let (Some(grpc), Some(http)) = (json_field(&first, "grpc"), json_field(&first, "http"))
        else {
            p.stop();
            return Err(format!("count-sink start line without addresses: {first}"));
        };
        Ok((p, grpc.to_owned(), http.to_owned()))
    }

    /// Stops the sink (SIGTERM) unless it already stopped, and returns its
    /// final line and the CPU seconds it reports there.
    fn finish(mut self, deadline: Duration) -> Result<(String, f64)> {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child, "-TERM");
        }
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains("\"final\"") => {
                    last = Some(l);
                    break;
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.stop();
        last.map(|l| {
            let cpu = json_field(&l, "cpu_s")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            (l, cpu)
        })
        .ok_or_else(|| "count-sink printed no final counts".to_owned())
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child, "-KILL");
        }
        let _ = self.child.wait();
    }
}

/// One run of one scenario.
fn run_once(
    s: &Scenario,
    opts: &Options,
    sink: &Path,
    bin_dir: &Path,
    gnu_time: bool,
) -> Result<Run> {
    let Producer::Bin { bin, extra, .. } = s.producer else {
        return Err(format!("scenario {} has no producer yet", s.key));
    };
    let producer = bin_dir.join(bin);
    let max_secs = opts.timeout.as_secs() + 30;
    let (sink_proc, grpc, http) = SinkProcess::start(sink, opts.spans, max_secs)?;
    let sink_endpoint = format!(
        "http://{}",
        if s.protocol == "grpc" { &grpc } else { &http }
    );
    // A relay puts the agent between producer and sink.
    let agent = if s.relay() {
        match Agent::start(
            &agent_bin(bin_dir),
            s.protocol,
            s.compression,
            &sink_endpoint,
            gnu_time,
        ) {
            Ok(a) => Some(a),
            Err(e) => {
                let _ = sink_proc.finish(Duration::from_secs(5));
                return Err(e);
            }
        }
    } else {
        None
    };
    let endpoint = agent
        .as_ref()
        .map_or(sink_endpoint, |a| format!("http://{}", a.addr));
    let producer_args = s.producer_args(extra, &endpoint, opts.spans);
    let time_file = std::env::temp_dir().join(format!("xtask-bench-{}.time", std::process::id()));
    let _ = fs::remove_file(&time_file);
    let mut cmd = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f")
            .arg(TIME_FORMAT)
            .arg("-o")
            .arg(&time_file)
            .arg(&producer)
            .args(&producer_args);
        c
    } else {
        let mut c = Command::new(&producer);
        c.args(&producer_args);
        c
    };
    let started = Instant::now();
    let mut child = match cmd.stdout(Stdio::piped()).process_group(0).spawn() {
        Ok(c) => c,
        Err(e) => {
            if let Some(a) = agent {
                let _ = a.finish();
            }
            let _ = sink_proc.finish(Duration::from_secs(5));
            return Err(format!("could not start the producer {cmd:?}: {e}"));
        }
    };
    let mut polled = Polled::default();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if started.elapsed() > opts.timeout {
            kill_group(&child, "-KILL");
            let _ = child.wait();
            break None;
        }
        if !gnu_time {
            polled.sample(child.id());
        }
        thread::sleep(Duration::from_millis(if gnu_time { 5 } else { 20 }));
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    // For a relay the run ends when the agent has drained and exited: what
    // it still held when the producer finished is part of the work.
    let agent_measure = agent.map(Agent::finish);
    let wall_s = started.elapsed().as_secs_f64();
    let (final_line, sink_cpu_s) = sink_proc.finish(Duration::from_secs(10))?;
    let agent_measure = agent_measure.transpose()?;
    let Some(status) = status else {
        return Err(format!(
            "{} timed out after {:?} and was killed; raise --timeout or lower --spans",
            s.key, opts.timeout
        ));
    };
    if !status.success() {
        return Err(format!("{} producer failed ({status}): {out}", s.key));
    }
    let mut run = Run {
        wall_s,
        created: json_field(&out, "created")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{} producer printed no created count: {out}", s.key))?,
        delivered: json_field(&final_line, &format!("{}_items", s.signal))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("count-sink final line without counts: {final_line}"))?,
        sink_cpu_s,
        polled: !gnu_time,
        ..Run::default()
    };
    if gnu_time {
        let text = fs::read_to_string(&time_file)
            .map_err(|e| format!("reading {}: {e}", time_file.display()))?;
        let _ = fs::remove_file(&time_file);
        let (cpu, rss) = parse_time(&text)
            .ok_or_else(|| format!("{GNU_TIME} wrote no measurement line: {text}"))?;
        run.cpu_s = cpu;
        run.max_rss_kib = rss;
    } else {
        run.cpu_s = polled.cpu_s;
        run.max_rss_kib = polled.max_rss_kib;
    }
    if json_field(&out, "shutdown_ok") == Some("false") {
        run.note = "shutdown timed out".to_owned();
    }
    if let Some((cpu, rss, note)) = agent_measure {
        run.agent_cpu_s = Some(cpu);
        run.agent_rss_kib = Some(rss);
        if !note.is_empty() {
            run.note = if run.note.is_empty() {
                note
            } else {
                format!("{}; {note}", run.note)
            };
        }
    }
    Ok(run)
}

/// A started relay agent (`otlp-client run` under GNU time) and where it listens.
struct Agent {
    /// GNU time, or the agent itself when GNU time is missing.
    child: Child,
    gnu_time: bool,
    addr: String,
    config: PathBuf,
    time_file: PathBuf,
    stderr_file: PathBuf,
}

impl Agent {
    /// Writes the agent's config (receiver on a free loopback port, upstream
    /// = the sink with `compression`, `block` policy), starts it and waits
    /// until its receiver accepts connections.
    fn start(
        bin: &Path,
        protocol: &str,
        compression: &str,
        upstream: &str,
        gnu_time: bool,
    ) -> Result<Agent> {
        if !bin.exists() {
            return Err(format!(
                "{} is missing; build it with `cargo build --release -p {AGENT_PACKAGE}`",
                bin.display()
            ));
        }
        // A port the kernel just handed out and we released; the agent
        // binds it a moment later (loopback, nothing else races for it here).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port for the agent: {e}"))?;
        let (receiver_key, proto) = if protocol == "grpc" {
            ("grpc", "grpc")
        } else {
            ("http", "http/protobuf")
        };
        let tmp = std::env::temp_dir();
        let id = format!("{}-{}", std::process::id(), addr.port());
        let config = tmp.join(format!("xtask-bench-agent-{id}.yaml"));
        let time_file = tmp.join(format!("xtask-bench-agent-{id}.time"));
        let stderr_file = tmp.join(format!("xtask-bench-agent-{id}.log"));
        let yaml = format!(
            "endpoint: {upstream}\nprotocol: {proto}\ncompression: {compression}\nreceivers:\n  {receiver_key}: {addr}\nadmin:\n  listen: 127.0.0.1:0\nqueue:\n  overflow: block\n"
        );
        fs::write(&config, yaml).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let stderr = fs::File::create(&stderr_file)
            .map_err(|e| format!("creating {}: {e}", stderr_file.display()))?;
        let mut cmd = if gnu_time {
            let mut c = Command::new(GNU_TIME);
            c.arg("-f")
                .arg(TIME_FORMAT)
                .arg("-o")
                .arg(&time_file)
                .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        // Its shutdown line (stdout) and warnings (stderr) both go to the log.
        let stdout = stderr
            .try_clone()
            .map_err(|e| format!("sharing {}: {e}", stderr_file.display()))?;
        cmd.args(["--log-level", "warn", "run", "--config"])
            .arg(&config)
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start the agent {cmd:?}: {e}"))?;
        let mut agent = Agent {
            child,
            gnu_time,
            addr: addr.to_string(),
            config,
            time_file,
            stderr_file,
        };
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(agent);
            }
            let exited = matches!(agent.child.try_wait(), Ok(Some(_)));
            if exited || started.elapsed() > AGENT_START {
                let log = fs::read_to_string(&agent.stderr_file).unwrap_or_default();
                agent.kill();
                return Err(format!(
                    "the agent did not listen on {addr} within {AGENT_START:?}{}: {log}",
                    if exited { " (it exited)" } else { "" }
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The agent's own pid: the child of GNU time, or the child itself.
    fn pid(&self) -> Option<u32> {
        let id = self.child.id();
        if !self.gnu_time {
            return Some(id);
        }
        fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Stops the agent with SIGTERM (a graceful drain), waits for it, and
    /// returns its CPU seconds, peak RSS (KiB) and a note.
    fn finish(mut self) -> Result<(f64, u64, String)> {
        let mut polled = Polled::default();
        let Some(pid) = self.pid() else {
            self.kill();
            return Err("the relay agent is gone before the end of the run".to_owned());
        };
        if !self.gnu_time {
            // Without GNU time the last sample before the signal is all we get.
            polled.sample(pid);
        }
        // Only the agent: GNU time would die of a group-wide SIGTERM
        // without writing its measurement.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if started.elapsed() > AGENT_STOP {
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let log = fs::read_to_string(&self.stderr_file).unwrap_or_default();
        let Some(status) = status else {
            self.kill();
            return Err(format!(
                "the relay agent did not exit within {AGENT_STOP:?} of SIGTERM: {log}"
            ));
        };
        let note = if log.contains("deadline reached") || !status.success() {
            format!("agent exit {status}")
        } else {
            String::new()
        };
        let measured = if self.gnu_time {
            let text = fs::read_to_string(&self.time_file)
                .map_err(|e| format!("reading {}: {e}", self.time_file.display()))?;
            parse_time(&text).ok_or_else(|| format!("{GNU_TIME} wrote no agent line: {text}"))?
        } else {
            (polled.cpu_s, polled.max_rss_kib)
        };
        self.cleanup();
        Ok((measured.0, measured.1, note))
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child, "-KILL");
        }
        let _ = self.child.wait();
        self.cleanup();
    }

    fn cleanup(&self) {
        for f in [&self.config, &self.time_file, &self.stderr_file] {
            let _ = fs::remove_file(f);
        }
    }
}

/// What `/proc` polling saw of a running process.
#[derive(Debug, Default)]
struct Polled {
    cpu_s: f64,
    max_rss_kib: u64,
}

impl Polled {
    fn sample(&mut self, pid: u32) {
        if let Some(cpu) = proc_cpu_s(pid) {
            self.cpu_s = self.cpu_s.max(cpu);
        }
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kib) = status_kib(&status, "VmHWM:")
        {
            self.max_rss_kib = self.max_rss_kib.max(kib);
        }
    }
}

/// utime + stime of a live process, in seconds (assuming 100 ticks per second).
fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_s(&stat)
}

fn stat_cpu_s(stat: &str) -> Option<f64> {
    // The command name may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 overall, utime 14 and stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads GNU time's line: (user + sys seconds, peak RSS in KiB).
fn parse_time(text: &str) -> Option<(f64, u64)> {
    let line = text.lines().find(|l| l.starts_with("xtask-time "))?;
    let get = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    let user: f64 = get("user")?.parse().ok()?;
    let sys: f64 = get("sys")?.parse().ok()?;
    let rss: u64 = get("maxrss_kb")?.parse().ok()?;
    Some((user + sys, rss))
}

/// The value of `key` in a flat JSON object as serde_json prints it
/// (no spaces): a number, `true`/`false`/`null`, or a string without escapes.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|end| &s[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// === impl Summary ===

impl Summary {
    fn of(runs: &[Run]) -> Summary {
        let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        Summary {
            runs: runs.len(),
            wall_s: m(|r| r.wall_s),
            cpu_s: m(|r| r.cpu_s),
            max_rss_kib: m(|r| r.max_rss_kib as f64),
            created: m(|r| r.created as f64),
            delivered: m(|r| r.delivered as f64),
            throughput: m(|r| {
                if r.wall_s > 0.0 {
                    r.delivered as f64 / r.wall_s
                } else {
                    0.0
                }
            }),
            sink_cpu_s: m(|r| r.sink_cpu_s),
            agent: runs.iter().all(|r| r.agent_cpu_s.is_some()).then(|| {
                (
                    m(|r| r.agent_cpu_s.unwrap_or(0.0)),
                    m(|r| r.agent_rss_kib.unwrap_or(0) as f64),
                )
            }),
        }
    }

    fn dropped(&self) -> f64 {
        (self.created - self.delivered).max(0.0)
    }

    fn cpu_per_million(&self) -> f64 {
        if self.created > 0.0 {
            self.cpu_s * 1e6 / self.created
        } else {
            0.0
        }
    }
}

/// The machine, one Markdown bullet per line.
fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_owned();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = status_kib(&meminfo, "MemTotal:").map_or("unknown".to_owned(), |k| {
        format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0)
    });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_owned(), |s| s.trim().to_owned());
    let rustc = capture(Command::new("rustc").arg("--version"))
        .map_or("unknown".to_owned(), |s| s.trim().to_owned());
    // Other work on the machine skews every number; say how busy it was.
    let load = fs::read_to_string("/proc/loadavg").map_or("unknown".to_owned(), |s| {
        s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    });
    format!(
        "- CPUs: {cpus} (available parallelism), {model}\n- Memory: {mem}\n- Kernel: Linux {kernel}\n- Compiler: {rustc}, release profile (fat LTO, 1 codegen unit)\n- Network: loopback (127.0.0.1)\n- Load average before the runs (1, 5, 15 min): {load}\n"
    )
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Formats a ratio, or "baseline" for the row that is its own baseline.
fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}x", value / base)
    } else {
        "n/a".to_owned()
    }
}

/// BENCHMARKS.md, whole.
fn render(
    opts: &Options,
    args: &[String],
    machine: &str,
    shape: &str,
    results: &[(&Scenario, Vec<Run>)],
    gnu_time: bool,
) -> String {
    let mut md = String::new();
    let cmd = if args.is_empty() {
        "cargo xtask bench".to_owned()
    } else {
        format!("cargo xtask bench {}", args.join(" "))
    };
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "<!-- Written by `cargo xtask bench` (xtask/src/bench.rs); rerun it rather than editing. -->\n"
    );
    let _ = writeln!(
        md,
        "Measured {} with `{cmd}`.",
        crate::reliability::date_utc(SystemTime::now())
    );
    let _ = writeln!(
        md,
        "Each number is the median of {} run(s) of {} items per scenario.\n",
        opts.runs, opts.spans
    );
    let _ = writeln!(md, "## Machine\n\n{machine}");
    let _ = writeln!(md, "## Method\n");
    let _ = writeln!(
        md,
        "Each run starts two processes: `count-sink` (benches/src/bin/count-sink.rs), a receiver that counts OTLP items by walking the protobuf wire format without decoding, and the producer."
    );
    let _ = writeln!(
        md,
        "The producer creates the items from one thread as fast as it can, then flushes and shuts down; it is measured from outside: wall time from spawn to exit, user+sys CPU and peak RSS {}.",
        if gnu_time {
            "from GNU time (`/usr/bin/time`)"
        } else {
            "by polling `/proc/<pid>` every 20 ms (GNU time was missing; CPU may miss the last 20 ms)"
        }
    );
    let _ = writeln!(
        md,
        "Compressed rows: our producers and agent use the default level (1); opentelemetry-otlp has no level setting and compresses at its codecs' default (gzip 6, zstd 3). count-sink decompresses before counting.\n"
    );
    let _ = writeln!(
        md,
        "Delivered is what count-sink received; dropped = created - delivered; delivered/s is the median of each run's delivered / wall time; CPU per million is per million items created."
    );
    let _ = writeln!(
        md,
        "Ratios compare each row with the peer row named in its last column, measured in the same invocation."
    );
    let _ = writeln!(
        md,
        "A relay row adds a third process between producer and sink, the agent `otlp-client run` (gRPC receiver, `block` policy; uncompressed from the producer, and upstream compressed as the protocol column says), measured from outside the same way; its wall time runs until the agent has drained and exited after SIGTERM, and its own CPU and RSS are in the relay table.\n"
    );
    let _ = writeln!(md, "## Telemetry shape\n\n{shape}");
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "| scenario | side | signal | protocol | created | delivered | dropped | delivered/s | wall s | CPU s | CPU-s per 1M | peak RSS MiB | vs peer (throughput / CPU / RSS) |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let summaries: Vec<(&Scenario, Summary)> =
        results.iter().map(|(s, r)| (*s, Summary::of(r))).collect();
    for (s, m) in &summaries {
        let base = summaries
            .iter()
            .find(|(b, _)| b.key == s.baseline)
            .map(|(_, b)| b);
        let vs = match base {
            Some(_) if s.baseline == s.key => "baseline".to_owned(),
            Some(b) => format!(
                "{} / {} / {} of `{}`",
                ratio(m.throughput, b.throughput),
                ratio(m.cpu_per_million(), b.cpu_per_million()),
                ratio(m.max_rss_kib, b.max_rss_kib),
                s.baseline
            ),
            None => format!("`{}` not run", s.baseline),
        };
        let dropped_pct = if m.created > 0.0 {
            100.0 * m.dropped() / m.created
        } else {
            0.0
        };
        let _ = writeln!(
            md,
            "| {} `{}` | {} | {} | {} | {:.0} | {:.0} | {:.0} ({dropped_pct:.1}%) | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {vs} |",
            s.title,
            s.key,
            s.side.as_str(),
            s.signal,
            s.wire(),
            m.created,
            m.delivered,
            m.dropped(),
            m.throughput,
            m.wall_s,
            m.cpu_s,
            m.cpu_per_million(),
            mib(m.max_rss_kib),
        );
    }
    let relays: Vec<_> = summaries
        .iter()
        .filter_map(|(s, m)| m.agent.map(|a| (s, m, a)))
        .collect();
    if !relays.is_empty() {
        let _ = writeln!(md, "\n## Relay agent\n");
        let _ = writeln!(
            md,
            "The agent process of each relay row (`otlp-client run`), medians of its runs; CPU per million is per million items delivered.\n"
        );
        let _ = writeln!(
            md,
            "| scenario | delivered | agent CPU s | agent CPU-s per 1M | agent peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for (s, m, (cpu, rss)) in relays {
            let per_m = if m.delivered > 0.0 {
                cpu * 1e6 / m.delivered
            } else {
                0.0
            };
            let _ = writeln!(
                md,
                "| `{}` | {:.0} | {cpu:.2} | {per_m:.2} | {:.0} |",
                s.key,
                m.delivered,
                mib(rss)
            );
        }
    }
    let pending: Vec<_> = SCENARIOS
        .iter()
        .filter_map(|s| match s.producer {
            Producer::Pending { waiting_for } => Some((s, waiting_for)),
            Producer::Bin { .. } => None,
        })
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(md, "\n## Not measured yet\n");
        let _ = writeln!(
            md,
            "These scenarios are part of the comparison but their producer does not exist yet; they join the table when it does, never with made-up numbers.\n"
        );
    }
    for (s, waiting_for) in pending {
        let _ = writeln!(
            md,
            "- `{}` ({}): {}; compared with `{}`; waiting for {waiting_for}.",
            s.key,
            s.side.as_str(),
            s.title,
            s.baseline
        );
    }
    let _ = writeln!(md, "\n## Every run\n");
    let _ = writeln!(
        md,
        "| scenario | run | created | delivered | wall s | CPU s | peak RSS MiB | sink CPU s | note |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (s, runs) in results {
        for (i, r) in runs.iter().enumerate() {
            let agent = match (r.agent_cpu_s, r.agent_rss_kib) {
                (Some(cpu), Some(rss)) => {
                    format!("agent {cpu:.2} CPU-s, {:.0} MiB", mib(rss as f64))
                }
                _ => String::new(),
            };
            let note = [
                if r.polled { "polled /proc" } else { "" },
                agent.as_str(),
                r.note.as_str(),
            ]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.2} | {note} |",
                s.key,
                i + 1,
                r.created,
                r.delivered,
                r.wall_s,
                r.cpu_s,
                mib(r.max_rss_kib as f64),
                r.sink_cpu_s,
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_default_quick_and_explicit() {
        let o = Options::parse(&[]).unwrap();
        assert_eq!((o.runs, o.spans, o.timeout.as_secs()), (3, 1_000_000, 80));
        let o = Options::parse(&args(&["--quick"])).unwrap();
        assert_eq!((o.runs, o.spans), (1, 50_000));
        let o = Options::parse(&args(&["--quick", "--runs", "2", "--spans", "200_000"])).unwrap();
        assert_eq!((o.runs, o.spans), (2, 200_000));
        assert!(
            Options::parse(&args(&["--runs"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(Options::parse(&args(&["--runs", "0"])).is_err());
        assert!(
            Options::parse(&args(&["--fast"]))
                .unwrap_err()
                .contains("'--fast'")
        );
    }

    #[test]
    fn only_filters_scenarios_by_key() {
        let o = Options::parse(&args(&["--only", "http"])).unwrap();
        let keys: Vec<_> = SCENARIOS
            .iter()
            .filter(|s| o.selected(s))
            .map(|s| s.key)
            .collect();
        assert_eq!(
            keys,
            [
                "peer-http-full",
                "peer-http-gzip",
                "ours-sdk-http-block",
                "ours-native-http",
                "ours-native-direct-http",
                "ours-native-http-gzip",
                "ours-native-direct-http-gzip"
            ]
        );
    }

    #[test]
    fn every_baseline_is_a_peer_scenario() {
        for s in SCENARIOS {
            let b = SCENARIOS.iter().find(|b| b.key == s.baseline).unwrap();
            assert_eq!(b.side, Side::Peer, "{}", s.key);
            assert_eq!((b.signal, b.protocol), (s.signal, s.protocol), "{}", s.key);
        }
    }

    #[test]
    fn json_fields_are_read_from_flat_objects() {
        let line =
            r#"{"event":"final","items":123,"last_item_s":null,"traces_items":120,"ok":true}"#;
        assert_eq!(json_field(line, "items"), Some("123"));
        assert_eq!(json_field(line, "traces_items"), Some("120"));
        assert_eq!(json_field(line, "event"), Some("final"));
        assert_eq!(json_field(line, "ok"), Some("true"));
        assert_eq!(json_field(line, "last_item_s"), Some("null"));
        assert_eq!(json_field(line, "logs_items"), None);
    }

    #[test]
    fn gnu_time_line_is_found_after_child_complaints() {
        let text = "Command exited with non-zero status 1\nxtask-time user=1.50 sys=0.25 maxrss_kb=65536 exit=1\n";
        assert_eq!(parse_time(text), Some((1.75, 65_536)));
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn proc_stat_cpu_survives_spaces_in_the_name() {
        let stat = "42 (peer otlp) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(stat_cpu_s(stat), Some(3.0));
        assert_eq!(
            status_kib("VmPeak:\t 10 kB\nVmHWM:\t  2048 kB\n", "VmHWM:"),
            Some(2048)
        );
    }

    #[test]
    fn producer_args_carry_the_scenario_signal_protocol_endpoint_and_count() {
        let peer = SCENARIOS
            .iter()
            .find(|s| s.key == "peer-logs-grpc-full")
            .unwrap();
        let Producer::Bin { extra, .. } = peer.producer else {
            panic!("the peer has a producer");
        };
        assert_eq!(
            peer.producer_args(extra, "http://x:1", 5),
            [
                "--signal",
                "logs",
                "--protocol",
                "grpc",
                "--endpoint",
                "http://x:1",
                "--count",
                "5",
                "--queue",
                "5"
            ]
        );
        for s in SCENARIOS {
            if let Producer::Bin { extra, .. } = s.producer {
                // The common flags come from the scenario, never twice.
                for common in ["--signal", "--protocol", "--endpoint", "--count"] {
                    assert!(!extra.contains(&common), "{}: {common}", s.key);
                }
                // A compressed row compresses at the producer; on a relay row
                // at the agent, and at the producer only when its extra flags
                // say so (the pass-through row).
                let args = s.producer_args(extra, "http://x:1", 5);
                let flagged = args.iter().filter(|a| *a == "--compression").count();
                let expected = if s.relay() {
                    usize::from(s.key.ends_with("passthrough"))
                } else {
                    usize::from(s.compression != "none")
                };
                assert_eq!(flagged, expected, "{}", s.key);
                assert!(
                    ["none", "gzip", "zstd"].contains(&s.compression),
                    "{}",
                    s.key
                );
                assert_eq!(
                    s.compression != "none",
                    s.key.contains("gzip") || s.key.contains("zstd"),
                    "{}",
                    s.key
                );
            }
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn every_scenario_has_a_producer_and_only_the_relay_uses_the_agent() {
        for s in SCENARIOS {
            assert!(matches!(s.producer, Producer::Bin { .. }), "{}", s.key);
            assert_eq!(s.relay(), s.key.starts_with("relay-"), "{}", s.key);
        }
        let relay = SCENARIOS.iter().find(|s| s.key == "relay-grpc").unwrap();
        assert_eq!(relay.protocol, "grpc");
    }

    #[test]
    fn report_has_ratios_against_the_peer_and_a_relay_agent_table() {
        let opts = Options::parse(&args(&["--runs", "1", "--spans", "1000"])).unwrap();
        let run = |wall_s: f64, delivered: u64| Run {
            wall_s,
            cpu_s: wall_s,
            max_rss_kib: 2048,
            created: 1000,
            delivered,
            ..Run::default()
        };
        let peer = SCENARIOS
            .iter()
            .find(|s| s.key == "peer-grpc-full")
            .unwrap();
        // A made-up second row using the peer as its baseline, to check the ratio columns.
        let other = Scenario {
            key: "test-row",
            baseline: "peer-grpc-full",
            ..*peer
        };
        let relay = Scenario {
            key: "test-relay",
            side: Side::Relay,
            ..other
        };
        let relayed = Run {
            agent_cpu_s: Some(0.25),
            agent_rss_kib: Some(10 * 1024),
            ..run(1.0, 1000)
        };
        let results = vec![
            (peer, vec![run(2.0, 1000)]),
            (&other, vec![run(1.0, 500)]),
            (&relay, vec![relayed]),
        ];
        let md = render(
            &opts,
            &args(&["--runs", "1"]),
            "- CPUs: 2\n",
            "shape\n",
            &results,
            true,
        );
        assert!(md.contains("`cargo xtask bench --runs 1`"));
        assert!(md.contains("| 1000 | 1000 | 0 (0.0%) | 500 |"), "{md}");
        // Same throughput (500/s), half the CPU per million, same RSS.
        assert!(
            md.contains("1.00x / 0.50x / 1.00x of `peer-grpc-full`"),
            "{md}"
        );
        assert!(md.contains("baseline"));
        // The agent of 1000 relayed items: 0.25 CPU-s, so 250 per million.
        assert!(
            md.contains("| `test-relay` | 1000 | 0.25 | 250.00 | 10 |"),
            "{md}"
        );
        assert!(md.contains("agent 0.25 CPU-s, 10 MiB"), "{md}");
        assert!(
            !md.contains("## Not measured yet"),
            "no scenario is pending: {md}"
        );
    }
}
