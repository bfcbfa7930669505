//! `send`: a load generator (like the Collector's telemetrygen) that pushes
//! spans, metric points or log records through the full otlp-rust stack and
//! reports what happened to every item.

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use otlp::{
    Otlp,
    config::{Env, REDACTED},
    core::Signal,
    observability::Stage,
    pipeline::SignalStats,
};
use serde::Serialize;

use super::{generate::Generator, stdout::outln};
use crate::cli::{EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Format, ProtocolArg, SendArgs, SignalArg};

/// The final report of a load run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) signals: Vec<&'static str>,
    pub(crate) generated: u64,
    pub(crate) accepted: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    pub(crate) failed: u64,
    pub(crate) left_queued: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) items_per_s: f64,
    pub(crate) send_latency_p50_ms: f64,
    pub(crate) send_latency_p99_ms: f64,
    pub(crate) requests: u64,
    /// What happened to each generated signal, with the last error.
    pub(crate) per_signal: BTreeMap<&'static str, SignalReport>,
    #[serde(skip)]
    pub(crate) profile: String,
}

/// One signal's part of the [`Report`].
#[derive(Debug, Serialize)]
pub(crate) struct SignalReport {
    pub(crate) accepted: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    /// Dropped items by reason (`shutdown`, `queue_full`, ...), non-zero only.
    pub(crate) dropped_by_reason: BTreeMap<&'static str, u64>,
    pub(crate) failed: u64,
    /// Failed items by reason (`retries_exhausted`, `permanent`, ...), non-zero only.
    pub(crate) failed_by_reason: BTreeMap<&'static str, u64>,
    /// The last export error of this signal (the last failed attempt, or the
    /// collector's message for rejected items); `null` when none failed.
    /// Header values and URL passwords are redacted.
    pub(crate) last_error: Option<String>,
}

/// What to generate.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) signals: Vec<Signal>,
    pub(crate) count: Option<u64>,
    pub(crate) duration: Option<Duration>,
    pub(crate) rate: Option<u64>,
    pub(crate) attributes: usize,
    pub(crate) attribute_size: usize,
    pub(crate) flush_timeout: Duration,
    pub(crate) progress: bool,
}

fn signals(arg: SignalArg) -> Vec<Signal> {
    match arg {
        SignalArg::Traces => vec![Signal::Traces],
        SignalArg::Metrics => vec![Signal::Metrics],
        SignalArg::Logs => vec![Signal::Logs],
        // `send` generates the three stable signals; the agent forwards
        // profiles it receives, but there is no profile generator.
        SignalArg::All => vec![Signal::Traces, Signal::Metrics, Signal::Logs],
    }
}

/// `send`.
pub(crate) async fn send(args: SendArgs) -> ExitCode {
    let mut builder = Otlp::builder().with_env(Env::from_process()).with_flags(
        super::flags(
            args.export.endpoint.as_deref(),
            args.export.protocol.map(ProtocolArg::as_str),
        )
        .with_flag("--overflow", "queue.overflow", args.overflow.as_str()),
    );
    if let Some(path) = &args.export.config {
        match builder.with_config_file(path) {
            Ok(b) => builder = b,
            Err(e) => {
                eprintln!("otlp-client send: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let otlp = match builder.build() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("otlp-client send: {e}");
            return ExitCode::from(EXIT_PROBLEM);
        }
    };
    if let Some(path) = &args.replay {
        return replay(&otlp, path, args.flush_timeout, args.format).await;
    }
    let workload = Workload {
        signals: signals(args.signal),
        count: match (args.count, args.duration) {
            (None, None) => Some(10_000),
            (c, _) => c,
        },
        duration: args.duration,
        rate: args.rate,
        attributes: args.attributes,
        attribute_size: args.attribute_size,
        flush_timeout: args.flush_timeout,
        progress: std::io::stderr().is_terminal(),
    };
    let report = run_workload(&otlp, &workload).await;
    output(&report, args.format);
    exit_code(&report)
}

fn output(report: &Report, format: Format) {
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        ),
        Format::Text => print_report(report),
    }
}

fn exit_code(report: &Report) -> ExitCode {
    if report.sent == report.generated {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_PROBLEM)
    }
}

/// `send --replay FILE`: every request of the file through the stack, then
/// the same report as for generated load. The data is sent as recorded: no
/// resource of the load generator's, whatever OTEL_SERVICE_NAME says.
async fn replay(otlp: &Otlp, path: &Path, flush_timeout: Duration, format: Format) -> ExitCode {
    let sender = otlp.sender();
    let started = Instant::now();
    // Drops are counted by the pipeline; the report shows them.
    let replayed = super::replay::replay(path, |batch| {
        let sender = sender.clone();
        async move {
            let _ = sender.send_batch(batch).await;
        }
    })
    .await;
    let signals: Vec<Signal> = replayed.per_signal.keys().copied().collect();
    let report = finish(otlp, &signals, replayed.items, started, flush_timeout).await;
    output(&report, format);
    match &replayed.error {
        Some(e) => {
            eprintln!(
                "otlp-client send: replay stopped after {} requests ({} items): {e}",
                replayed.requests, replayed.items
            );
            ExitCode::from(EXIT_USAGE)
        }
        None if replayed.requests == 0 => {
            eprintln!(
                "otlp-client send: {} holds no export request",
                path.display()
            );
            ExitCode::from(EXIT_USAGE)
        }
        None => exit_code(&report),
    }
}

/// Generates the workload into `otlp`, waits for delivery (up to the flush
/// timeout), shuts the pipeline down and reports.
pub(crate) async fn run_workload(otlp: &Otlp, w: &Workload) -> Report {
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the load
    // generator's own defaults, as in an SDK.
    let resource = otlp::resource(
        otlp.config(),
        &[
            ("service.name", "otlp-client-send"),
            ("host.name", "loadgen"),
        ],
    );
    let generator = Generator::new(&resource, w.attributes, w.attribute_size);
    let sender = otlp.sender();
    let total = w.count.map(|c| c * w.signals.len() as u64);
    let bar = w.progress.then(|| Progress::new(total, w.duration));
    let started = Instant::now();
    let mut generated = 0u64;
    let mut last_line = Instant::now();
    // With a rate, items go out in small chunks every 10 ms.
    let chunk = w.rate.map_or(1024, |r| (r / 100).max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n = 0u64;
    'outer: loop {
        if w.rate.is_some() {
            tick.tick().await;
        }
        for _ in 0..chunk {
            if w.count.is_some_and(|c| n >= c) {
                break 'outer;
            }
            if w.duration.is_some_and(|d| started.elapsed() >= d) {
                break 'outer;
            }
            for &signal in &w.signals {
                let encode = Instant::now();
                let item = generator.item(signal, n);
                otlp.profiler().record(Stage::Encode, encode.elapsed());
                // Drops are counted by the pipeline; the report shows them.
                let _ = sender.send(item).await;
                generated += 1;
            }
            n += 1;
        }
        if let Some(bar) = &bar {
            bar.update(generated, started.elapsed());
        } else if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            eprintln!(
                "send: {generated} items generated in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        // Let the exporters run even on a busy runtime.
        tokio::task::yield_now().await;
    }
    if let Some(bar) = bar {
        bar.update(generated, started.elapsed());
        bar.bar.finish_and_clear();
    }
    finish(otlp, &w.signals, generated, started, w.flush_timeout).await
}

/// Waits for delivery (up to `flush_timeout`), shuts the pipeline down and
/// reports on `generated` items of `signals`.
async fn finish(
    otlp: &Otlp,
    signals: &[Signal],
    generated: u64,
    started: Instant,
    flush_timeout: Duration,
) -> Report {
    let _ = tokio::time::timeout(flush_timeout, otlp.flush()).await;
    let elapsed = started.elapsed();
    let shutdown = otlp.shutdown(Duration::from_secs(1)).await;
    let total_stats = shutdown.stats.total();
    let per_signal = signals
        .iter()
        .map(|&s| {
            (
                s.as_str(),
                signal_report(shutdown.stats.signal(s), last_error(otlp, s)),
            )
        })
        .collect();
    let profile = otlp.profiler().report();
    let send = profile.stage(Stage::Send);
    Report {
        signals: signals.iter().map(|s| s.as_str()).collect(),
        generated,
        accepted: total_stats.accepted,
        sent: shutdown.sent,
        dropped: shutdown.dropped,
        failed: shutdown.failed,
        left_queued: shutdown.left_queued,
        elapsed_s: elapsed.as_secs_f64(),
        items_per_s: shutdown.sent as f64 / elapsed.as_secs_f64().max(1e-9),
        send_latency_p50_ms: send.p50_us / 1000.0,
        send_latency_p99_ms: send.p99_us / 1000.0,
        requests: send.count,
        per_signal,
        profile: profile.to_text(),
    }
}

/// The progress bar on a terminal: items out of the total with `--count`,
/// elapsed out of total time with `--duration` (the item count has no
/// total there, so a bar of items would stay empty).
struct Progress {
    bar: ProgressBar,
    /// `--duration`: the bar measures time in milliseconds.
    duration: Option<Duration>,
}

impl Progress {
    fn new(total_items: Option<u64>, duration: Option<Duration>) -> Self {
        let (bar, template) = match (total_items, duration) {
            (Some(n), _) => (
                ProgressBar::new(n),
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} items ({per_sec})",
            ),
            (None, Some(d)) => (ProgressBar::new(duration_ms(d)), "{spinner} {bar:40} {msg}"),
            (None, None) => (ProgressBar::new_spinner(), "{spinner} {msg}"),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Self {
            bar,
            duration: total_items.is_none().then_some(duration).flatten(),
        }
    }

    fn update(&self, generated: u64, elapsed: Duration) {
        match self.duration {
            Some(total) => {
                self.bar.set_position(duration_ms(elapsed.min(total)));
                self.bar
                    .set_message(duration_message(elapsed, total, generated));
            }
            None => self.bar.set_position(generated),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `00:00:03/00:00:10, 41200 items`.
fn duration_message(elapsed: Duration, total: Duration, generated: u64) -> String {
    let hms = |d: Duration| {
        let s = d.as_secs();
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    format!(
        "{}/{}, {generated} items",
        hms(elapsed.min(total)),
        hms(total)
    )
}

fn signal_report(stats: &SignalStats, last_error: Option<String>) -> SignalReport {
    SignalReport {
        accepted: stats.accepted,
        sent: stats.sent,
        dropped: stats.dropped_total(),
        dropped_by_reason: stats
            .dropped
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str(), *n))
            .collect(),
        failed: stats.failed_total(),
        failed_by_reason: stats
            .failed
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str(), *n))
            .collect(),
        last_error,
    }
}

/// The last error of `signal`: its last failed export attempt, else the
/// cause of its last loss (a partial success's message), with secrets redacted.
fn last_error(otlp: &Otlp, signal: Signal) -> Option<String> {
    let error = otlp.last_error(signal).or_else(|| {
        otlp.metrics()
            .losses()
            .recent()
            .into_iter()
            .rev()
            .find(|l| l.signal == signal.as_str() && !l.cause.is_empty())
            .map(|l| l.cause)
    })?;
    Some(redact(&error, otlp))
}

/// Replaces every configured header value and URL password in `text`.
/// Transport errors never carry header values; this keeps it so whatever
/// produced the text.
fn redact(text: &str, otlp: &Otlp) -> String {
    let mut text = text.to_owned();
    for signal in Signal::ALL {
        let sc = otlp.config().signal(signal);
        let password = sc
            .endpoint
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
            .and_then(|authority| authority.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password);
        let secrets = sc
            .headers
            .iter()
            .map(|(_, v)| v.trim())
            .chain(password)
            .filter(|v| !v.is_empty());
        for secret in secrets {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

pub(crate) fn print_report(r: &Report) {
    let by_reason = |n: u64, reasons: &dyn Fn(&SignalReport) -> &BTreeMap<&'static str, u64>| {
        let mut all: BTreeMap<&'static str, u64> = BTreeMap::new();
        for s in r.per_signal.values() {
            for (reason, k) in reasons(s) {
                *all.entry(reason).or_default() += k;
            }
        }
        if all.is_empty() {
            n.to_string()
        } else {
            let list: Vec<String> = all.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{n} ({})", list.join(", "))
        }
    };
    outln!("signals:    {}", r.signals.join(", "));
    outln!("generated:  {}", r.generated);
    outln!("accepted:   {}", r.accepted);
    outln!("sent:       {}", r.sent);
    outln!(
        "dropped:    {}",
        by_reason(r.dropped, &|s| &s.dropped_by_reason)
    );
    outln!(
        "failed:     {}",
        by_reason(r.failed, &|s| &s.failed_by_reason)
    );
    outln!("queued:     {} (left at shutdown)", r.left_queued);
    outln!(
        "throughput: {:.0} items/s delivered in {:.2}s",
        r.items_per_s,
        r.elapsed_s
    );
    outln!(
        "requests:   {} (send latency p50 {:.2} ms, p99 {:.2} ms)",
        r.requests,
        r.send_latency_p50_ms,
        r.send_latency_p99_ms
    );
    for (signal, s) in &r.per_signal {
        if let Some(e) = &s.last_error {
            let recovered = if s.sent == s.accepted {
                " (retried: every item was delivered)"
            } else {
                ""
            };
            outln!("last error ({signal}): {e}{recovered}");
        }
    }
    outln!("stage profile:\n{}", r.profile);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_progress_shows_elapsed_out_of_total_time() {
        assert_eq!(
            duration_message(
                Duration::from_millis(3_400),
                Duration::from_secs(10),
                41_200
            ),
            "00:00:03/00:00:10, 41200 items"
        );
        // Delivery after the deadline never shows more than the total.
        assert_eq!(
            duration_message(Duration::from_secs(75), Duration::from_secs(60), 7),
            "00:01:00/00:01:00, 7 items"
        );
        let p = Progress::new(None, Some(Duration::from_secs(10)));
        assert_eq!(p.bar.length(), Some(10_000));
        p.update(41_200, Duration::from_secs(4));
        assert_eq!(p.bar.position(), 4_000);
        assert_eq!(p.bar.message(), "00:00:04/00:00:10, 41200 items");
    }

    #[test]
    fn count_progress_counts_items_out_of_the_total() {
        let p = Progress::new(Some(300), None);
        assert_eq!(p.bar.length(), Some(300));
        p.update(120, Duration::from_secs(4));
        assert_eq!(p.bar.position(), 120);
    }
}
