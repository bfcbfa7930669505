//! The transport of one signal's stack: one exporter, or, with
//! `loadbalancing:`, a [`LoadBalancer`] over one exporter per backend.

use std::net::IpAddr;

use otlp_config::{Config, LbResolver, RoutingKey};
use otlp_core::{Batch, ExportResponse, RouteKey, Signal};
use otlp_transport::{
    Exporter, ExporterBuilder, ExporterConfig, Protocol, TransportError,
    balance::{Balance, DnsResolver, LoadBalancer, spawn_refresh},
};
use tower::util::BoxCloneSyncService;

use crate::{OtlpError, convert};

/// The innermost service of a signal's stack.
pub(crate) type Transport = BoxCloneSyncService<Batch, ExportResponse, TransportError>;

/// The signal's transport, and the plain exporter when there is one (its
/// compress step runs before the first attempt; a balanced batch is split
/// first, so each part is compressed by its backend's exporter instead).
pub(crate) fn transport(
    config: &Config,
    signal: Signal,
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
    match &lb.resolver {
        LbResolver::Static { endpoints } => {
            let names = endpoints
                .iter()
                .map(|e| backend_url(e, signal, base.protocol));
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
            let dns = match server {
                Some(server) => DnsResolver::with_server(hostname, *server, *timeout),
                None => DnsResolver::system(hostname, *timeout),
            }
            .map_err(|source| OtlpError::Transport { signal, source })?;
            let scheme = if base
                .endpoint
                .trim()
                .to_ascii_lowercase()
                .starts_with("https://")
            {
                "https"
            } else {
                "http"
            };
            let (port, protocol, base) = (*port, base.protocol, base.clone());
            let url = move |ip: IpAddr| {
                let host = match ip {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                backend_url(&format!("{scheme}://{host}:{port}"), signal, protocol)
            };
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

/// A backend's base URL as its exporter takes it: with the signal's path
/// for OTLP/HTTP (as `endpoints` get it), as given for gRPC.
fn backend_url(endpoint: &str, signal: Signal, protocol: Protocol) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if protocol == Protocol::Grpc || e.ends_with(signal.http_path()) {
        e.to_owned()
    } else {
        format!("{e}{}", signal.http_path())
    }
}
