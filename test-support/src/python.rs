//! The pinned Python venv of the test suites, and the Python peers they
//! start with it: today the DNS server of the load-balancing tests.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The workspace root (this package sits one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python with the pinned packages of
/// `tests/python/requirements.txt` (dnslib, the OpenTelemetry SDK):
/// `OTLP_PYTHON`, else `.ci/venv/bin/python` under the workspace root.
///
/// # Panics
///
/// When that file does not exist, saying how to create the venv.
pub fn python() -> PathBuf {
    let p = std::env::var_os("OTLP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".ci/venv/bin/python"));
    assert!(
        p.exists(),
        "python {} not found: run `cargo xtask setup` (or `bash .ci/run`) to create the venv from tests/python/requirements.txt, or set OTLP_PYTHON",
        p.display()
    );
    p
}

/// `tests/python/dns_server.py` (dnslib) on a free UDP port of 127.0.0.1:
/// it answers A queries for every name with the addresses of a records
/// file (one a line), read again at each query so that a test changes the
/// answer by rewriting the file. Killed on drop.
#[derive(Debug)]
pub struct DnsServer {
    child: Child,
    addr: SocketAddr,
}

// === impl DnsServer ===

impl DnsServer {
    /// Starts the server on `records`; it exits by itself after `deadline`
    /// (a bound for a test that never drops it). Returns once it listens.
    ///
    /// # Panics
    ///
    /// When python cannot be started or prints no port.
    pub fn start(records: &Path, deadline: Duration) -> Self {
        let mut child = Command::new(python())
            .arg(root().join("tests/python/dns_server.py"))
            .arg(records)
            .arg("--deadline")
            .arg(deadline.as_secs_f64().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts tests/python/dns_server.py");
        let mut line = String::new();
        let read = child
            .stdout
            .as_mut()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let port = match (read, line.trim().parse::<u16>()) {
            (Some(Ok(_)), Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dns_server.py printed {line:?}, not its port");
            }
        };
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// The address it answers on (127.0.0.1 and its UDP port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
