//! The `loadbalancing:` section: trace-aware load balancing over a tier of
//! gateways (routing key and where the backends come from).

use std::{net::SocketAddr, str::FromStr, time::Duration};

/// Load balancing across several upstream backends (`loadbalancing:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancingConfig {
    /// What batches are split and routed on.
    pub routing_key: RoutingKey,
    /// Where the backend set comes from.
    pub resolver: LbResolver,
}

/// `loadbalancing.routing_key`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoutingKey {
    /// Spans by trace id (every span of a trace on one backend); log records
    /// by trace id when they have one, else by resource; metrics by service.
    #[default]
    TraceId,
    /// By the resource's `service.name`.
    Service,
    /// By the whole resource.
    Resource,
    /// Whole batches, one backend after the other (no affinity).
    RoundRobin,
}

/// `loadbalancing.resolver` and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LbResolver {
    /// A fixed list of backend base URLs (`loadbalancing.endpoints`).
    Static {
        /// The backends' base URLs, e.g. `http://gw-1:4317`.
        endpoints: Vec<String>,
    },
    /// The A / AAAA records of a host name, resolved again every `interval`
    /// (`loadbalancing.dns.*`); each address is a backend.
    Dns {
        /// The name to resolve.
        hostname: String,
        /// The port of every backend.
        port: u16,
        /// How often the name is resolved again.
        interval: Duration,
        /// The deadline of one resolution.
        timeout: Duration,
        /// The DNS server to ask (`loadbalancing.dns.server`); the system's
        /// resolver configuration when `None`.
        server: Option<SocketAddr>,
    },
}

/// The default `loadbalancing.dns.port`: OTLP/gRPC.
pub const DEFAULT_LB_DNS_PORT: u16 = 4317;
/// The default `loadbalancing.dns.interval`.
pub const DEFAULT_LB_DNS_INTERVAL: Duration = Duration::from_secs(5);
/// The default `loadbalancing.dns.timeout`.
pub const DEFAULT_LB_DNS_TIMEOUT: Duration = Duration::from_secs(1);

impl RoutingKey {
    /// The accepted spellings: otlp-core's routing keys, then `round_robin`.
    pub const VALUES: [&'static str; otlp_core::RouteKey::VALUES.len() + 1] = {
        let keys = otlp_core::RouteKey::VALUES;
        let mut out = ["round_robin"; otlp_core::RouteKey::VALUES.len() + 1];
        let mut i = 0;
        while i < keys.len() {
            out[i] = keys[i];
            i += 1;
        }
        out
    };

    /// The spelling used in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            RoutingKey::TraceId => "trace_id",
            RoutingKey::Service => "service",
            RoutingKey::Resource => "resource",
            RoutingKey::RoundRobin => "round_robin",
        }
    }
}

impl FromStr for RoutingKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "trace_id" => Ok(RoutingKey::TraceId),
            "service" => Ok(RoutingKey::Service),
            "resource" => Ok(RoutingKey::Resource),
            "round_robin" => Ok(RoutingKey::RoundRobin),
            _ => Err(()),
        }
    }
}

/// `loadbalancing.resolver`'s spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResolverKind {
    Static,
    Dns,
}

impl ResolverKind {
    pub(crate) const VALUES: [&'static str; 2] = ["static", "dns"];
}

impl FromStr for ResolverKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "static" => Ok(ResolverKind::Static),
            "dns" => Ok(ResolverKind::Dns),
            _ => Err(()),
        }
    }
}

/// A backend's base URL as its exporter takes it: with the signal's path
/// for OTLP/HTTP (as `endpoints` get it), as given for gRPC.
pub fn backend_url(endpoint: &str, signal: otlp_core::Signal, protocol: crate::Protocol) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if protocol == crate::Protocol::Grpc || e.ends_with(signal.http_path()) {
        e.to_owned()
    } else {
        format!("{e}{}", signal.http_path())
    }
}

impl LbResolver {
    /// The backend set of `signal` when it is known without the network
    /// (the static list, as each backend's exporter takes it); `None` for
    /// DNS, which is resolved at run time.
    pub fn static_backends(
        &self,
        signal: otlp_core::Signal,
        protocol: crate::Protocol,
    ) -> Option<Vec<String>> {
        match self {
            LbResolver::Static { endpoints } => Some(
                endpoints
                    .iter()
                    .map(|e| backend_url(e, signal, protocol))
                    .collect(),
            ),
            LbResolver::Dns { .. } => None,
        }
    }

    /// How the resolver is shown: `static list (N)` or `dns NAME:PORT every D`.
    pub fn describe(&self) -> String {
        match self {
            LbResolver::Static { endpoints } => format!("static list ({})", endpoints.join(", ")),
            LbResolver::Dns { hostname, port, .. } => format!("dns {hostname}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routing_key_spelling_parses_back_to_itself() {
        assert_eq!(RoutingKey::VALUES.len(), 4);
        for v in RoutingKey::VALUES {
            let key: RoutingKey = v.parse().unwrap_or_else(|()| panic!("{v} does not parse"));
            assert_eq!(key.as_str(), v);
        }
    }
}
