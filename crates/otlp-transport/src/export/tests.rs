//! Unit tests of config validation and the exporter builder.

use super::*;

#[test]
fn debug_of_config_redacts_header_values() {
    let cfg = ExporterConfig {
        headers: vec![("authorization".into(), "Bearer top-secret".into())],
        ..ExporterConfig::default()
    };
    let text = format!("{cfg:?}");
    assert!(text.contains("authorization: <redacted>"), "{text}");
    assert!(!text.contains("top-secret"), "{text}");
}

#[test]
fn endpoint_without_scheme_follows_insecure_flag() {
    let plain = TlsConfig {
        insecure: true,
        ..TlsConfig::default()
    };
    assert_eq!(
        parse_endpoint("collector:4317", &plain)
            .unwrap()
            .scheme_str(),
        Some("http")
    );
    if cfg!(feature = "tls") {
        let uri = parse_endpoint("collector:4317", &TlsConfig::default()).unwrap();
        assert_eq!(uri.scheme_str(), Some("https"));
    }
}

#[test]
fn bad_endpoints_are_refused_with_the_reason() {
    let tls = TlsConfig::default();
    assert!(matches!(
        parse_endpoint("  ", &tls),
        Err(TransportError::NoEndpoint)
    ));
    let err = parse_endpoint("ftp://x:1", &tls).unwrap_err();
    assert!(
        err.to_string().contains("unsupported scheme 'ftp'"),
        "{err}"
    );
    let err = parse_endpoint("http://", &tls).unwrap_err();
    assert!(
        matches!(err, TransportError::InvalidEndpoint { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("use e.g. http://localhost:4317"),
        "{err}"
    );
}

#[cfg(not(feature = "tls"))]
#[test]
fn https_without_tls_feature_is_a_build_error() {
    let err = parse_endpoint("https://collector:4317", &TlsConfig::default()).unwrap_err();
    assert!(
        matches!(err, TransportError::TlsFeatureDisabled { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("enable feature `tls`"), "{err}");
}

#[test]
fn invalid_header_names_the_header_but_not_its_value() {
    let err = validate_headers(&[("bad header".into(), "secret-value".into())]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("'bad header'"), "{text}");
    assert!(!text.contains("secret-value"), "{text}");
    let ok = validate_headers(&[("x-api-key".into(), "v".into())]).unwrap();
    assert!(ok.get("x-api-key").unwrap().is_sensitive());
}

#[test]
fn port_hint_names_the_other_protocols_port() {
    let grpc_on_http: ::http::Uri = "http://c:4318".parse().unwrap();
    assert!(port_hint(&grpc_on_http, Protocol::Grpc).contains("4317"));
    let http_on_grpc: ::http::Uri = "http://c:4317".parse().unwrap();
    assert!(port_hint(&http_on_grpc, Protocol::HttpProtobuf).contains("4318"));
    assert_eq!(port_hint(&http_on_grpc, Protocol::Grpc), "");
}

#[test]
fn compiled_out_compression_is_refused() {
    assert!(check_compression(Compression::None).is_ok());
    assert_eq!(
        check_compression(Compression::Gzip).is_ok(),
        cfg!(feature = "gzip")
    );
    assert_eq!(
        check_compression(Compression::Zstd).is_ok(),
        cfg!(feature = "zstd")
    );
}
