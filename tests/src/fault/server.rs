//! The fault server's accept loop, connections and the scripted answer to each request.

use super::*;

pub(super) fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock can only come from a bug in this file;
    // the counters are still usable, so recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn bind(addr: SocketAddr) -> Result<TcpListener, E2eError> {
    let io = |what| move |source| E2eError::Io { what, source };
    let socket = TcpSocket::new_v4().map_err(io("socket"))?;
    // Coming back up on the same port must not wait for TIME_WAIT.
    socket.set_reuseaddr(true).map_err(io("set_reuseaddr"))?;
    socket.bind(addr).map_err(io("bind"))?;
    socket.listen(1024).map_err(io("listen"))
}

pub(super) fn go_down(shared: &Arc<Shared>, d: Duration) {
    shared.life.send_modify(|l| {
        l.generation += 1;
        l.up = false;
    });
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        shared.life.send_modify(|l| {
            if !l.closed {
                l.up = true;
            }
        });
    });
}

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, addr: SocketAddr) {
    let mut life = shared.life.subscribe();
    let mut listener = Some(listener);
    loop {
        let now = *life.borrow_and_update();
        if now.closed {
            return;
        }
        match (&listener, now.up) {
            (Some(l), true) => {
                tokio::select! {
                    res = l.accept() => {
                        if let Ok((stream, _)) = res {
                            shared.connections.fetch_add(1, Ordering::Relaxed);
                            // Every server-side close is abrupt (RST): that is
                            // what "reset", "go down" and a crash look like.
                            let _ = stream.set_zero_linger();
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(serve_conn(shared.clone(), stream, now.generation));
                        }
                    }
                    changed = life.changed() => if changed.is_err() { return },
                }
            }
            (Some(_), false) => listener = None,
            (None, true) => match bind(addr) {
                Ok(l) => listener = Some(l),
                // The port may still be in use for a moment: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            (None, false) => {
                if life.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

pub(super) async fn serve_conn(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    generation: u64,
) {
    let mut life = shared.life.subscribe();
    let (kill_tx, mut kill_rx) = watch::channel(false);
    let kill_tx = Arc::new(kill_tx);
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let kill = kill_tx.clone();
        async move { Ok::<_, Infallible>(handle(shared, kill, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill_rx.wait_for(|k| *k) => {}
        _ = life.wait_for(|l| l.generation != generation) => {}
    }
}

pub(super) async fn handle(
    shared: Arc<Shared>,
    kill: Arc<watch::Sender<bool>>,
    req: Request<Incoming>,
) -> Response<Frames> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let gzip = req
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let signal = signal_of(req.uri().path());
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => return status_only(StatusCode::BAD_REQUEST),
    };
    let message = if grpc {
        grpc_message(&body)
    } else if gzip {
        gunzip(&body)
    } else {
        body.clone()
    };
    let fault = shared.next_fault(body.len());
    shared.record(&fault, body.len());
    match fault {
        Fault::Accept => {
            if let Some(s) = signal {
                shared.accept(s, &message, 0);
            }
            ok(grpc, None)
        }
        Fault::PartialReject(k) => {
            if let Some(s) = signal {
                shared.accept(s, &message, k);
            }
            ok(grpc, Some(k))
        }
        Fault::Unavailable if grpc => grpc_error(14, "unavailable by script", None),
        Fault::Unavailable => status_only(StatusCode::SERVICE_UNAVAILABLE),
        Fault::Throttle(d) if grpc => grpc_error(8, "throttled by script", Some(d)),
        Fault::Throttle(d) => {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            with_header(
                status_only(StatusCode::TOO_MANY_REQUESTS),
                http::header::RETRY_AFTER,
                &secs.to_string(),
            )
        }
        Fault::UnavailableUntil(d) if grpc => grpc_error(14, "down for maintenance", Some(d)),
        Fault::UnavailableUntil(d) => with_header(
            status_only(StatusCode::SERVICE_UNAVAILABLE),
            http::header::RETRY_AFTER,
            &http_date(SystemTime::now() + d),
        ),
        Fault::BadRequest if grpc => grpc_error(3, "invalid argument by script", None),
        Fault::BadRequest => status_only(StatusCode::BAD_REQUEST),
        Fault::TooLargeAbove(n) if grpc => grpc_error(
            8,
            &format!("message larger than max ({} vs. {n})", body.len()),
            None,
        ),
        Fault::TooLargeAbove(_) => status_only(StatusCode::PAYLOAD_TOO_LARGE),
        Fault::Reset => {
            let _ = kill.send(true);
            std::future::pending().await
        }
        Fault::Hang => std::future::pending().await,
        Fault::CloseMidBody => {
            let mut r = ok(grpc, None);
            // Announce a long body, send a piece of it, then fail the stream.
            if !grpc {
                r.headers_mut().insert(
                    http::header::CONTENT_LENGTH,
                    HeaderValue::from_static("4096"),
                );
            }
            let body = r.body_mut();
            body.frames = VecDeque::from([Frame::data(Bytes::from_static(&[0, 0, 0, 0, 10]))]);
            body.fail_at_end = true;
            r
        }
    }
}
