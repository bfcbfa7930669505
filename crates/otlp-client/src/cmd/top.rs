//! `top`: a live terminal view of a running agent, read from its admin
//! port's `/status.json` once per interval: per-signal rates (accepted,
//! sent, dropped, failed, retries, throttles) and totals, the oldest item's
//! age, the queue, in-flight requests against the concurrency limit, the
//! upstream's state and each signal's last error. `q`, Esc or Ctrl-C quits.
//!
//! Synchronous on purpose: the terminal loop waits on key events with a
//! timeout, and the GET is a bounded blocking request.

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use ratatui::{
    Frame,
    crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
    layout::{Constraint, Layout},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap},
};
use serde_json::Value;

use crate::cli::{EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, TopArgs};

/// The largest `/status.json` read.
const MAX_STATUS_BYTES: u64 = 4 * 1024 * 1024;

use otlp::core::Signal;

const SIGNALS: [&str; Signal::COUNT] = [
    Signal::Traces.as_str(),
    Signal::Metrics.as_str(),
    Signal::Logs.as_str(),
    Signal::Profiles.as_str(),
];
const RATES: [&str; 6] = [
    "accepted",
    "sent",
    "dropped",
    "failed",
    "retries",
    "throttles",
];

/// What the screen shows.
#[derive(Debug, Default)]
struct View {
    admin: String,
    current: Option<Value>,
    previous: Option<Value>,
    error: Option<String>,
}

/// `top [--admin ADDR | --config FILE] [--interval D]`.
pub(crate) fn top(args: &TopArgs) -> ExitCode {
    let admin = match admin_addr(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("otlp-client top: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("otlp-client top: cannot use the terminal: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut view = View {
        admin: admin.to_string(),
        ..View::default()
    };
    let timeout = args.interval.min(Duration::from_secs(5));
    let result = (|| -> std::io::Result<()> {
        loop {
            fetch(&mut view, admin, timeout);
            terminal.draw(|f| draw(f, &view))?;
            let next = Instant::now() + args.interval;
            // Wait for a key until the next refresh.
            loop {
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() || !event::poll(left)? {
                    break;
                }
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                            return Ok(());
                        }
                    }
                    Event::Resize(..) => {
                        terminal.draw(|f| draw(f, &view))?;
                    }
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("otlp-client top: terminal error: {e}");
            ExitCode::from(EXIT_PROBLEM)
        }
    }
}

fn admin_addr(args: &TopArgs) -> Result<SocketAddr, String> {
    if let Some(a) = args.admin {
        return Ok(a);
    }
    let mut sources = otlp::config::Sources::new().with_env(otlp::config::Env::from_process());
    if let Some(path) = &args.config {
        sources =
            sources.with_file(otlp::config::ConfigFile::read(path).map_err(|e| e.to_string())?);
    }
    Ok(super::doctor::loopback(
        sources.resolve().config.admin.listen,
    ))
}

fn fetch(view: &mut View, admin: SocketAddr, timeout: Duration) {
    match super::http::get(admin, "/status.json", timeout, MAX_STATUS_BYTES) {
        Ok((200, body)) => match serde_json::from_str::<Value>(&body) {
            Ok(v) => {
                view.previous = view.current.replace(v);
                view.error = None;
            }
            Err(e) => view.error = Some(format!("{admin}/status.json is not a status: {e}")),
        },
        Ok((status, _)) => view.error = Some(format!("{admin}/status.json answered HTTP {status}")),
        Err(e) => view.error = Some(format!("cannot reach the agent's admin port {admin}: {e}")),
    }
}

/// Per-second rate of `field` of `signal` between the two snapshots.
fn rate(view: &View, signal: &str, field: &str) -> Option<f64> {
    let (now, before) = (view.current.as_ref()?, view.previous.as_ref()?);
    let dt = (now["unix_ms"].as_f64()? - before["unix_ms"].as_f64()?) / 1000.0;
    if dt <= 0.0 {
        return None;
    }
    let delta =
        now["signals"][signal][field].as_f64()? - before["signals"][signal][field].as_f64()?;
    Some((delta / dt).max(0.0))
}

fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw(f: &mut Frame<'_>, view: &View) {
    let [header, signals, pipeline, errors] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(f.area());

    let (upstream, detail) = view.current.as_ref().map_or(("?", String::new()), |s| {
        (
            s["upstream"].as_str().unwrap_or("?"),
            s["upstream_detail"].as_str().unwrap_or("").to_owned(),
        )
    });
    let colour = match upstream {
        "up" => Color::Green,
        "down" => Color::Red,
        _ => Color::Yellow,
    };
    let mut head = vec![
        Span::styled(
            "otlp-client top ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{}  upstream: ", view.admin)),
        Span::styled(upstream.to_owned(), Style::default().fg(colour)),
        Span::raw(format!(" ({detail})  q quits")),
    ];
    if let Some(e) = &view.error {
        head.push(Span::styled(
            format!("  {e}"),
            Style::default().fg(Color::Red),
        ));
    }
    f.render_widget(
        Paragraph::new(Line::from(head))
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::BOTTOM)),
        header,
    );

    let mut heading: Vec<Cell<'_>> = vec![Cell::from("signal")];
    heading.extend(RATES.iter().map(|r| Cell::from(format!("{r}/s"))));
    heading.extend(["sent", "dropped", "failed", "oldest age"].map(Cell::from));
    let rows = SIGNALS.iter().map(|signal| {
        let s = view.current.as_ref().map(|c| &c["signals"][*signal]);
        let total = |f: &str| s.and_then(|s| s[f].as_f64()).map_or("-".to_owned(), human);
        let mut cells = vec![Cell::from(*signal)];
        cells.extend(
            RATES
                .iter()
                .map(|r| Cell::from(rate(view, signal, r).map_or("-".to_owned(), human))),
        );
        cells.extend(["sent", "dropped", "failed"].map(|f| Cell::from(total(f))));
        cells.push(Cell::from(format!("{}s", total("oldest_item_age_seconds"))));
        Row::new(cells)
    });
    let widths = [Constraint::Length(8)]
        .into_iter()
        .chain(std::iter::repeat_n(Constraint::Length(12), 10));
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(heading).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(Block::default().title("signals").borders(Borders::ALL)),
        signals,
    );

    let pipeline_text = view.current.as_ref().map_or_else(String::new, |s| {
        let q = &s["queue"];
        let n = |v: &Value| v.as_f64().map_or("-".to_owned(), human);
        format!(
            "queue {} items, {} bytes ({:.1}% full)   in flight {} of concurrency limit {}   memory {} of {} bytes",
            n(&q["items"]),
            n(&q["bytes"]),
            q["fill_ratio"].as_f64().unwrap_or(0.0) * 100.0,
            n(&s["in_flight"]),
            n(&s["concurrency_limit"]),
            n(&s["memory_bytes"]),
            n(&s["memory_limit_bytes"]),
        )
    });
    f.render_widget(
        Paragraph::new(pipeline_text)
            .wrap(Wrap { trim: true })
            .block(Block::default().title("pipeline").borders(Borders::ALL)),
        pipeline,
    );

    let lines: Vec<Line<'_>> = SIGNALS
        .iter()
        .filter_map(|signal| {
            let e = view.current.as_ref()?["signals"][*signal]["last_error"].as_str()?;
            Some(Line::from(format!("{signal}: {e}")))
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::from("none")]
    } else {
        lines
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().title("last errors").borders(Borders::ALL)),
        errors,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_deltas_over_the_snapshots_interval() {
        let snap = |ms: u64, sent: u64| serde_json::json!({"unix_ms": ms, "signals": {"traces": {"sent": sent}}});
        let mut view = View {
            current: Some(snap(1_000, 100)),
            ..View::default()
        };
        assert_eq!(rate(&view, "traces", "sent"), None);
        view.previous = view.current.replace(snap(3_000, 500));
        assert_eq!(rate(&view, "traces", "sent"), Some(200.0));
        // A restarted agent's counters start again: never a negative rate.
        view.previous = view.current.replace(snap(4_000, 10));
        assert_eq!(rate(&view, "traces", "sent"), Some(0.0));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(human(12.0), "12");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(2_500_000.0), "2.5M");
        assert_eq!(human(0.25), "0.2");
    }
}
