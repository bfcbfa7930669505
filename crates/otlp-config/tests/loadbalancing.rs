#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `loadbalancing:` section: resolution, validation and explain output.

use std::time::Duration;

use otlp_config::{ConfigFile, LbResolver, RoutingKey, Severity, Sources};

fn resolve(yaml: &str) -> otlp_config::Resolved {
    Sources::new()
        .with_file(ConfigFile::parse("lb.yaml", yaml).unwrap())
        .resolve()
}

#[test]
fn no_section_means_no_load_balancing() {
    assert_eq!(
        resolve("endpoint: http://a:4317\n").config.loadbalancing,
        None
    );
}

#[test]
fn static_list_resolves_and_explain_shows_the_backends() {
    let r = resolve(
        "loadbalancing:\n  routing_key: trace_id\n  resolver: static\n  endpoints: [http://gw-1:4317, http://gw-2:4317]\n",
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let lb = r.config.loadbalancing.clone().unwrap();
    assert_eq!(lb.routing_key, RoutingKey::TraceId);
    assert_eq!(
        lb.resolver,
        LbResolver::Static {
            endpoints: vec!["http://gw-1:4317".into(), "http://gw-2:4317".into()]
        }
    );
    let text = r.explain().render_text();
    assert!(text.contains("loadbalancing.endpoints"), "{text}");
    assert!(
        text.contains("http://gw-1:4317, http://gw-2:4317"),
        "{text}"
    );
    assert!(text.contains("lb.yaml"), "{text}");
}

#[test]
fn dns_resolver_takes_its_settings_and_defaults() {
    let r = resolve(
        "loadbalancing:\n  routing_key: service\n  resolver: dns\n  dns:\n    hostname: gateways.internal\n    interval: 2s\n",
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let lb = r.config.loadbalancing.unwrap();
    assert_eq!(lb.routing_key, RoutingKey::Service);
    assert_eq!(
        lb.resolver,
        LbResolver::Dns {
            hostname: "gateways.internal".into(),
            port: 4317,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            server: None,
        }
    );
}

#[test]
fn mistakes_are_reported_with_their_field() {
    let r = resolve("loadbalancing:\n  routing_key: traceid\n  resolver: static\n");
    let errors: Vec<_> = r
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.path.clone(), p.message.clone(), p.hint.clone()))
        .collect();
    assert!(
        errors
            .iter()
            .any(|(k, _, h)| k == "loadbalancing.routing_key"
                && h.as_deref().unwrap_or("").contains("trace_id")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(k, _, _)| k == "loadbalancing.endpoints"),
        "{errors:?}"
    );
    let r = resolve("loadbalancing:\n  resolver: dns\n  dns:\n    port: 70000\n");
    let keys: Vec<_> = r.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(keys.contains(&"loadbalancing.dns.hostname"), "{keys:?}");
    assert!(keys.contains(&"loadbalancing.dns.port"), "{keys:?}");
    let r = resolve("loadbalancing:\n  endpoints: [gw-1:4317]\n  dnss: {}\n");
    let keys: Vec<_> = r.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(keys.contains(&"loadbalancing.endpoints"), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("dnss")), "{keys:?}");
}

#[test]
fn dns_server_is_an_address() {
    let r = resolve(
        "loadbalancing:\n  resolver: dns\n  dns:\n    hostname: gw\n    server: 127.0.0.1:5353\n",
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    match r.config.loadbalancing.unwrap().resolver {
        LbResolver::Dns { server, .. } => {
            assert_eq!(server, Some("127.0.0.1:5353".parse().unwrap()))
        }
        other => panic!("{other:?}"),
    }
    let r =
        resolve("loadbalancing:\n  resolver: dns\n  dns:\n    hostname: gw\n    server: nowhere\n");
    assert!(
        r.problems
            .iter()
            .any(|p| p.path == "loadbalancing.dns.server"),
        "{:?}",
        r.problems
    );
}
