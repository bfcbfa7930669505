//! Summaries of the runs and BENCHMARKS.md.

use super::*;

// === impl Summary ===

impl Summary {
    pub(super) fn of(runs: &[Run]) -> Summary {
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

    pub(super) fn dropped(&self) -> f64 {
        (self.created - self.delivered).max(0.0)
    }

    pub(super) fn cpu_per_million(&self) -> f64 {
        if self.created > 0.0 {
            self.cpu_s * 1e6 / self.created
        } else {
            0.0
        }
    }
}

/// The machine, one Markdown bullet per line.
pub(super) fn machine() -> String {
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

pub(super) fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Formats a ratio, or "baseline" for the row that is its own baseline.
pub(super) fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}x", value / base)
    } else {
        "n/a".to_owned()
    }
}

/// BENCHMARKS.md, whole.
pub(super) fn render(
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
        "<!-- Written by `cargo xtask bench` (xtask/src/bench/); rerun it rather than editing. -->\n"
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
