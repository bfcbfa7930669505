//! The DNS resolver of a balanced backend set: the A / AAAA records of one
//! name, resolved again on an interval (hickory-resolver).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use super::{Backend, LoadBalancer};
use crate::TransportError;
use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
};

/// Resolves one host name to the backend set.
#[derive(Clone)]
pub struct DnsResolver {
    resolver: TokioResolver,
    hostname: String,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

fn options(timeout: Duration) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    // Every resolution asks the server: a changed answer is seen at the next interval.
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    opts
}

impl DnsResolver {
    /// A resolver of `hostname` through the system's configuration
    /// (`/etc/resolv.conf`), each query bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`TransportError::InvalidEndpoint`] when the system configuration cannot be read.
    pub fn system(hostname: &str, timeout: Duration) -> Result<Self, TransportError> {
        let invalid = |e: &dyn std::fmt::Display| TransportError::InvalidEndpoint {
            endpoint: format!("dns {hostname}"),
            reason: format!("the system resolver configuration cannot be read: {e}"),
        };
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| invalid(&e))?
            .with_options(options(timeout))
            .build()
            .map_err(|e| invalid(&e))?;
        Ok(Self {
            resolver,
            hostname: hostname.to_owned(),
        })
    }

    /// A resolver of `hostname` asking only the server at `server` (UDP,
    /// then TCP), each query bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`TransportError::InvalidEndpoint`] when the resolver cannot be built.
    pub fn with_server(
        hostname: &str,
        server: SocketAddr,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
            server.ip(),
            true,
            vec![udp, tcp],
        )]);
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options(timeout))
            .build()
            .map_err(|e| TransportError::InvalidEndpoint {
                endpoint: format!("dns {hostname}"),
                reason: format!("the resolver cannot be built: {e}"),
            })?;
        Ok(Self {
            resolver,
            hostname: hostname.to_owned(),
        })
    }

    /// The name resolved.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The name's addresses now, sorted and without duplicates.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connect`] at the DNS step when the lookup fails.
    pub async fn resolve(&self) -> Result<Vec<IpAddr>, TransportError> {
        let lookup = self
            .resolver
            .lookup_ip(self.hostname.as_str())
            .await
            .map_err(|e| TransportError::Connect {
                endpoint: format!("dns {}", self.hostname),
                step: crate::ConnectStep::Dns,
                detail: e.to_string(),
            })?;
        let mut ips: Vec<IpAddr> = lookup.iter().collect();
        ips.sort();
        ips.dedup();
        Ok(ips)
    }
}

/// Keeps `balancer`'s backend set equal to `dns`'s answer: resolves now,
/// then every `interval` and whenever a backend fails, naming each address's
/// backend with `url` and building new ones with `make`. A failed or empty
/// resolution keeps the last set (a DNS hiccup never empties the tier); an
/// address whose backend cannot be built is left out with a warning and the
/// rest applied. Ends when every other clone of the balancer is gone. Each
/// change is logged at INFO with the set and how many backends came and went.
pub fn spawn_refresh<S: Backend>(
    balancer: LoadBalancer<S>,
    dns: DnsResolver,
    interval: Duration,
    url: impl Fn(IpAddr) -> String + Send + Sync + 'static,
    make: impl Fn(&str) -> Result<S, TransportError> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let interval = interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let failed = balancer.failed.clone();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // A backend failed: resolve again now (at most every 250 ms),
                // so a gateway that left loses its share at once.
                () = failed.notified() => {
                    tokio::time::sleep(Duration::from_millis(250).min(interval)).await;
                }
            }
            if Arc::strong_count(&balancer.backends) <= 1 {
                return;
            }
            match dns.resolve().await {
                Ok(ips) if !ips.is_empty() => {
                    let names = ips.into_iter().map(&url);
                    let change = balancer.set_backends(names, &make);
                    for (backend, e) in &change.skipped {
                        tracing::warn!(hostname = %dns.hostname, %backend, error = %e, "a resolved address cannot be a backend; leaving it out and applying the rest of the answer (fix the address the name resolves to, or loadbalancing.dns.port)");
                    }
                    if change.changed() > 0 {
                        tracing::info!(
                            hostname = %dns.hostname,
                            backends = ?balancer.backend_names(),
                            added = change.added,
                            removed = change.removed,
                            "load balancing backend set changed"
                        );
                    }
                }
                Ok(_) => {
                    tracing::warn!(hostname = %dns.hostname, "dns answered no address; keeping the last backend set")
                }
                Err(e) => {
                    tracing::warn!(hostname = %dns.hostname, error = %e, "dns resolution failed; keeping the last backend set (check the name and loadbalancing.dns.server)")
                }
            }
        }
    })
}
