//! Resolution of the `loadbalancing:` section (a child of `resolve` so it
//! reads settings through the same `Reader`, recording every problem).

use super::{Raw, Reader, Setting, parse_url};
use crate::{
    loadbalancing::{
        DEFAULT_LB_DNS_INTERVAL, DEFAULT_LB_DNS_PORT, DEFAULT_LB_DNS_TIMEOUT, LbResolver,
        LoadBalancingConfig, ResolverKind, RoutingKey,
    },
    source::Problem,
};

impl Reader<'_> {
    /// `loadbalancing:`, or `None` when no key of the section is set.
    pub(super) fn loadbalancing(&mut self) -> Option<LoadBalancingConfig> {
        const KEYS: [&str; 8] = [
            "loadbalancing.routing_key",
            "loadbalancing.resolver",
            "loadbalancing.endpoints",
            "loadbalancing.dns.hostname",
            "loadbalancing.dns.port",
            "loadbalancing.dns.interval",
            "loadbalancing.dns.timeout",
            "loadbalancing.dns.server",
        ];
        if !KEYS.iter().any(|k| self.is_set(k)) {
            return None;
        }
        let routing_key = self
            .choice::<RoutingKey>("loadbalancing.routing_key")
            .unwrap_or_default();
        let kind = match self.choice::<ResolverKind>("loadbalancing.resolver") {
            Some(k) => k,
            None if self.is_set("loadbalancing.dns.hostname") => ResolverKind::Dns,
            None => ResolverKind::Static,
        };
        let resolver = match kind {
            ResolverKind::Static => {
                let endpoints = self.lb_endpoints();
                if endpoints.is_empty() && !self.is_set("loadbalancing.endpoints") {
                    self.problems.push(
                        Problem::error(
                            "loadbalancing.endpoints",
                            &self.source("loadbalancing.resolver"),
                            "load balancing with the static resolver needs backends",
                        )
                        .hint("list them: loadbalancing.endpoints: [http://gw-1:4317, http://gw-2:4317], or use resolver: dns"),
                    );
                }
                LbResolver::Static { endpoints }
            }
            ResolverKind::Dns => {
                let hostname = self
                    .get("loadbalancing.dns.hostname", |t| Ok(t.trim().to_owned()))
                    .unwrap_or_default();
                if hostname.is_empty() {
                    self.problems.push(
                        Problem::error(
                            "loadbalancing.dns.hostname",
                            &self.source("loadbalancing.resolver"),
                            "load balancing with the dns resolver needs a host name",
                        )
                        .hint("set loadbalancing.dns.hostname, e.g. otel-gateway-headless.observability.svc"),
                    );
                }
                let port = match self.count("loadbalancing.dns.port") {
                    None => DEFAULT_LB_DNS_PORT,
                    Some(p) => match u16::try_from(p) {
                        Ok(p) if p > 0 => p,
                        _ => {
                            self.problems.push(
                                Problem::error(
                                    "loadbalancing.dns.port",
                                    &self.source("loadbalancing.dns.port"),
                                    format!("port {p} is out of range"),
                                )
                                .hint("use a port from 1 to 65535"),
                            );
                            DEFAULT_LB_DNS_PORT
                        }
                    },
                };
                LbResolver::Dns {
                    hostname,
                    port,
                    interval: self
                        .duration("loadbalancing.dns.interval")
                        .filter(|d| !d.is_zero())
                        .unwrap_or(DEFAULT_LB_DNS_INTERVAL),
                    timeout: self
                        .duration("loadbalancing.dns.timeout")
                        .filter(|d| !d.is_zero())
                        .unwrap_or(DEFAULT_LB_DNS_TIMEOUT),
                    server: self.addr("loadbalancing.dns.server"),
                }
            }
        };
        Some(LoadBalancingConfig {
            routing_key,
            resolver,
        })
    }

    /// `loadbalancing.endpoints`: each a URL with a scheme.
    fn lb_endpoints(&mut self) -> Vec<String> {
        let Some(Setting {
            raw: Raw::List(urls),
            source,
        }) = self.settings.get("loadbalancing.endpoints")
        else {
            return Vec::new();
        };
        let (urls, source) = (urls.clone(), source.clone());
        let mut ok = Vec::new();
        for u in &urls {
            match parse_url(u) {
                Ok(_) => ok.push(u.trim().to_owned()),
                Err((msg, hint)) => {
                    let mut p = Problem::error("loadbalancing.endpoints", &source, msg);
                    if let Some(h) = hint {
                        p = p.hint(h);
                    }
                    self.problems.push(p);
                }
            }
        }
        ok
    }
}
