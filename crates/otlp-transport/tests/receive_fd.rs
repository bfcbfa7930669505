//! Issue 16 case 6: when the process runs out of file descriptors, the
//! receivers' accept loop backs off and logs one WARN per 10 s naming
//! EMFILE and the fix, instead of one every 50 ms; once descriptors are
//! back, it serves again.
//!
//! Alone in its own test binary (its own process): it lowers this process's
//! RLIMIT_NOFILE and installs a global tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "http", target_os = "linux"))]

mod receive_support;

use receive_support as support;

use std::{
    fmt::{self, Write as _},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use otlp_transport::HttpReceiver;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer,
    layer::{Context, SubscriberExt},
};

use support::{Mode, Recorder, Running, trace_bytes};

/// Connections left waiting in the backlog while descriptors are out.
const PENDING: usize = 8;
/// How long the receiver is kept out of descriptors.
const STARVED: Duration = Duration::from_secs(2);

/// Collects the WARN events of otlp-transport, rendered as text.
#[derive(Clone, Default)]
struct Warns(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl<S: Subscriber> Layer<S> for Warns {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == Level::WARN && meta.target().starts_with("otlp_transport") {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
}

/// Puts the soft RLIMIT_NOFILE back when dropped, even on a failed assert.
struct Restore(Rlimit);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

fn open_fds() -> u64 {
    // The directory's own descriptor is listed too and closed afterwards.
    let listed = std::fs::read_dir("/proc/self/fd").unwrap().count();
    u64::try_from(listed).unwrap() - 1
}

/// One HTTP/1.1 export on `stream`; the answer's status.
async fn export(mut stream: TcpStream) -> u16 {
    let body = trace_bytes(1);
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_logs_a_bounded_number_of_warnings_and_recovers() {
    let warns = Warns::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warns.clone()))
        .unwrap();

    let inner = Recorder::new(Mode::Accept);
    let bound = HttpReceiver::new(inner.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let addr: SocketAddr = server.addr;
    assert_eq!(export(TcpStream::connect(addr).await.unwrap()).await, 200);

    // The client sockets exist before the limit drops: connecting needs no
    // new descriptor, accepting does.
    let sockets: Vec<Socket> = (0..PENDING)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap())
        .collect();
    let original = getrlimit(Resource::Nofile);
    let restore = Restore(original);
    let starved = Rlimit {
        current: Some(open_fds()),
        maximum: original.maximum,
    };
    setrlimit(Resource::Nofile, starved).unwrap();
    let starved_at = Instant::now();
    for s in &sockets {
        // The handshake completes in the kernel: each waits in the backlog.
        s.connect(&SockAddr::from(addr)).unwrap();
    }
    tokio::time::sleep(STARVED).await;
    let during: Vec<String> = warns.0.lock().unwrap().clone();
    drop(restore);
    let held = starved_at.elapsed();

    // Descriptors are back: the waiting connections are taken in (the
    // backoff is at most 1 s) and served, and so is a new one.
    let mut served = 0;
    for s in sockets {
        let std: std::net::TcpStream = s.into();
        std.set_nonblocking(true).unwrap();
        let stream = TcpStream::from_std(std).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), export(stream))
            .await
            .expect("a connection that waited in the backlog is served once descriptors are back");
        assert_eq!(status, 200);
        served += 1;
    }
    let fresh = tokio::time::timeout(
        Duration::from_secs(10),
        export(TcpStream::connect(addr).await.unwrap()),
    )
    .await
    .expect("a new connection is served");
    assert_eq!(fresh, 200);
    assert_eq!(inner.batches().len(), 2 + served);
    server.shutdown().await;

    assert!(
        !during.is_empty(),
        "no WARN while accepts failed for {held:?}"
    );
    assert!(
        during.len() <= 2,
        "{} WARN lines while accepts failed for {held:?} (at most 2 expected): {during:#?}",
        during.len()
    );
    let first = &during[0];
    assert!(
        first.contains("too many open files") && first.contains("ulimit -n"),
        "the WARN names EMFILE and the fix: {first}"
    );
}
