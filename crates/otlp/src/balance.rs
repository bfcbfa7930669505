//! The transport of one signal's stack: one exporter, or, with
//! `loadbalancing:`, a [`LoadBalancer`] over one exporter per backend.

use std::{net::IpAddr, sync::Arc};

use otlp_config::{Config, LbResolver, RoutingKey, backend_url};
use otlp_core::{Batch, ExportResponse, RouteKey, Signal};
use otlp_observability::{BackendSample, BalancerSample, SelfMetrics};
use otlp_transport::{
    Exporter, ExporterBuilder, ExporterConfig, TransportError,
    balance::{Balance, DnsResolver, LoadBalancer, spawn_refresh},
};
use tower::util::BoxCloneSyncService;

use crate::{OtlpError, convert};

/// The innermost service of a signal's stack.
pub(crate) type Transport = BoxCloneSyncService<Batch, ExportResponse, TransportError>;

/// The signal's transport, and the plain exporter when there is one (its
/// compress step runs before the first attempt; a balanced batch is split
/// first, so each part is compressed by its backend's exporter instead).
/// With a balancer, its per-backend counters go to `metrics` (read at
/// each scrape, series only for the backends in the set).
pub(crate) fn transport(
    config: &Config,
    signal: Signal,
    metrics: &Arc<SelfMetrics>,
) -> Result<(Transport, Option<Exporter>), OtlpError> {
    let base = convert::exporter_config(config, signal);
    let Some(lb) = &config.loadbalancing else {
        let exporter = ExporterBuilder::from_config(base)
            .build()
            .map_err(|source| OtlpError::Transport { signal, source })?;
        return Ok((BoxCloneSyncService::new(exporter.clone()), Some(exporter)));
    };
    let balance = match lb.routing_key {
        RoutingKey::TraceId => Balance::Route(RouteKey::TraceId),
        RoutingKey::Service => Balance::Route(RouteKey::Service),
        RoutingKey::Resource => Balance::Route(RouteKey::Resource),
        RoutingKey::RoundRobin => Balance::RoundRobin,
    };
    let balancer = LoadBalancer::new(balance, lb.resolver.describe());
    let protocol = config.signal(signal).protocol;
    let read = balancer.stats_reader();
    metrics.add_balancer_source(signal, move || {
        let (backends, duplicates) = read();
        BalancerSample {
            backends: backends
                .into_iter()
                .map(|b| BackendSample {
                    endpoint: b.endpoint,
                    sent: b.sent,
                    failed: b.failed,
                    in_flight: b.in_flight,
                    up: b.up,
                })
                .collect(),
            duplicates,
        }
    });
    match &lb.resolver {
        LbResolver::Static { endpoints } => {
            let names = endpoints.iter().map(|e| backend_url(e, signal, protocol));
            let change = balancer.set_backends(names, |name| backend(&base, name));
            // A static list is the user's own: any bad entry is an error.
            if let Some((_, source)) = change.skipped.into_iter().next() {
                return Err(OtlpError::Transport { signal, source });
            }
        }
        LbResolver::Dns {
            hostname,
            port,
            interval,
            timeout,
            server,
        } => {
            let dns = dns_resolver(hostname, *server, *timeout)
                .map_err(|source| OtlpError::Transport { signal, source })?;
            let url = dns_backend_url(config, signal, *port);
            let base = base.clone();
            // Resolves now and every interval; until the first answer,
            // batches get the retryable NoBackend and wait in the retry layer.
            drop(spawn_refresh(
                balancer.clone(),
                dns,
                *interval,
                url,
                move |name| backend(&base, name),
            ));
        }
    }
    Ok((BoxCloneSyncService::new(balancer), None))
}

/// One backend's exporter: the signal's settings with this endpoint only.
fn backend(base: &ExporterConfig, endpoint: &str) -> Result<Exporter, TransportError> {
    ExporterBuilder::from_config(ExporterConfig {
        endpoint: endpoint.to_owned(),
        additional_endpoints: Vec::new(),
        ..base.clone()
    })
    .build()
}

fn dns_resolver(
    hostname: &str,
    server: Option<std::net::SocketAddr>,
    timeout: std::time::Duration,
) -> Result<DnsResolver, TransportError> {
    match server {
        Some(server) => DnsResolver::with_server(hostname, server, timeout),
        None => DnsResolver::system(hostname, timeout),
    }
}

/// Names the backend at a resolved address: the signal endpoint's scheme,
/// the address, `loadbalancing.dns.port` (and the signal's path for HTTP).
fn dns_backend_url(
    config: &Config,
    signal: Signal,
    port: u16,
) -> impl Fn(IpAddr) -> String + Send + Sync + 'static {
    let sc = config.signal(signal);
    let scheme = if sc
        .endpoint
        .trim()
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        "https"
    } else {
        "http"
    };
    let protocol = sc.protocol;
    move |ip: IpAddr| {
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        backend_url(&format!("{scheme}://{host}:{port}"), signal, protocol)
    }
}

/// The backend set `signal` would be balanced over now: the static list,
/// or the DNS name resolved once (as the agent's first resolution does);
/// `None` without `loadbalancing:`. For `otlp-client diagnose`.
///
/// # Errors
///
/// The DNS resolver's error (it cannot be built, or the look-up fails),
/// naming the host name and what failed.
pub async fn resolve_backends(
    config: &Config,
    signal: Signal,
) -> Option<Result<Vec<String>, TransportError>> {
    let lb = config.loadbalancing.as_ref()?;
    let protocol = config.signal(signal).protocol;
    Some(match &lb.resolver {
        LbResolver::Static { endpoints } => Ok(endpoints
            .iter()
            .map(|e| backend_url(e, signal, protocol))
            .collect()),
        LbResolver::Dns {
            hostname,
            port,
            timeout,
            server,
            ..
        } => match dns_resolver(hostname, *server, *timeout) {
            Ok(dns) => {
                let url = dns_backend_url(config, signal, *port);
                dns.resolve()
                    .await
                    .map(|ips| ips.into_iter().map(url).collect())
            }
            Err(e) => Err(e),
        },
    })
}
