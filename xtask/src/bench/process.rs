//! Building, starting, measuring and stopping the benchmark processes (sink, agent, producer).

use super::*;

/// The relay agent: `OTLP_BENCH_AGENT` (another build, for a before/after
/// comparison on the same machine) or the release build of this tree.
pub(super) fn agent_bin(bin_dir: &Path) -> PathBuf {
    std::env::var_os("OTLP_BENCH_AGENT").map_or_else(|| bin_dir.join(AGENT_BIN), PathBuf::from)
}

pub(super) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Runs a command to completion and returns its stdout.
pub(super) fn capture(cmd: &mut Command) -> Result<String> {
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
pub(super) fn kill_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// A started count-sink: its process and the lines it prints.
pub(super) struct SinkProcess {
    pub(super) child: Child,
    pub(super) lines: mpsc::Receiver<String>,
}

impl SinkProcess {
    pub(super) fn start(
        sink: &Path,
        expect: u64,
        max_secs: u64,
    ) -> Result<(SinkProcess, String, String)> {
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
    pub(super) fn finish(mut self, deadline: Duration) -> Result<(String, f64)> {
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

    pub(super) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child, "-KILL");
        }
        let _ = self.child.wait();
    }
}

/// One run of one scenario.
pub(super) fn run_once(
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
    // A balanced relay spreads over more sinks: the first plus these.
    let mut extra_sinks = Vec::new();
    let mut backends = Vec::new();
    if s.balanced_backends() > 0 {
        backends.push(sink_endpoint.clone());
        for _ in 1..s.balanced_backends() {
            match SinkProcess::start(sink, opts.spans, max_secs) {
                Ok((p, grpc, http)) => {
                    backends.push(format!(
                        "http://{}",
                        if s.protocol == "grpc" { &grpc } else { &http }
                    ));
                    extra_sinks.push(p);
                }
                Err(e) => {
                    let _ = sink_proc.finish(Duration::from_secs(5));
                    for p in extra_sinks {
                        let _ = p.finish(Duration::from_secs(5));
                    }
                    return Err(e);
                }
            }
        }
    }
    // A relay puts the agent between producer and sink.
    let agent = if s.relay() {
        match Agent::start(
            &agent_bin(bin_dir),
            s.protocol,
            s.compression,
            &sink_endpoint,
            &backends,
            gnu_time,
        ) {
            Ok(a) => Some(a),
            Err(e) => {
                let _ = sink_proc.finish(Duration::from_secs(5));
                for p in extra_sinks {
                    let _ = p.finish(Duration::from_secs(5));
                }
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
    let (final_line, mut sink_cpu_s) = sink_proc.finish(Duration::from_secs(10))?;
    let items_key = format!("{}_items", s.signal);
    let mut extra_delivered = 0u64;
    for p in extra_sinks {
        let (line, cpu) = p.finish(Duration::from_secs(10))?;
        sink_cpu_s += cpu;
        extra_delivered += json_field(&line, &items_key)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("count-sink final line without counts: {line}"))?;
    }
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
        delivered: json_field(&final_line, &items_key)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("count-sink final line without counts: {final_line}"))?
            + extra_delivered,
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
pub(super) struct Agent {
    /// GNU time, or the agent itself when GNU time is missing.
    pub(super) child: Child,
    pub(super) gnu_time: bool,
    pub(super) addr: String,
    pub(super) config: PathBuf,
    pub(super) time_file: PathBuf,
    pub(super) stderr_file: PathBuf,
}

impl Agent {
    /// Writes the agent's config (receiver on a free loopback port, upstream
    /// = the sink with `compression`, `block` policy; with `backends`,
    /// `loadbalancing:` by trace id over them instead), starts it and waits
    /// until its receiver accepts connections.
    pub(super) fn start(
        bin: &Path,
        protocol: &str,
        compression: &str,
        upstream: &str,
        backends: &[String],
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
        let mut yaml = format!(
            "endpoint: {upstream}\nprotocol: {proto}\ncompression: {compression}\nreceivers:\n  {receiver_key}: {addr}\nadmin:\n  listen: 127.0.0.1:0\nqueue:\n  overflow: block\n"
        );
        if !backends.is_empty() {
            yaml.push_str(&format!(
                "loadbalancing:\n  routing_key: trace_id\n  resolver: static\n  endpoints: [{}]\n",
                backends.join(", ")
            ));
        }
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
    pub(super) fn pid(&self) -> Option<u32> {
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
    pub(super) fn finish(mut self) -> Result<(f64, u64, String)> {
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

    pub(super) fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child, "-KILL");
        }
        let _ = self.child.wait();
        self.cleanup();
    }

    pub(super) fn cleanup(&self) {
        for f in [&self.config, &self.time_file, &self.stderr_file] {
            let _ = fs::remove_file(f);
        }
    }
}

/// What `/proc` polling saw of a running process.
#[derive(Debug, Default)]
pub(super) struct Polled {
    pub(super) cpu_s: f64,
    pub(super) max_rss_kib: u64,
}

impl Polled {
    pub(super) fn sample(&mut self, pid: u32) {
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
