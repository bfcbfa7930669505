//! Parsers of the value kinds (counts, addresses, endpoints, URLs) and the per-signal endpoint rule.

use super::*;

pub(super) fn parse_count(t: &str) -> Result<u64, ParseErr> {
    let t = t.trim();
    if t.starts_with('-') {
        return Err((
            format!("'{t}' is negative"),
            Some("use a whole number of 0 or more".into()),
        ));
    }
    t.replace('_', "").parse::<u64>().map_err(|_| {
        (
            format!("'{t}' is not a whole number"),
            Some("write digits only, e.g. 512".into()),
        )
    })
}

/// Parses a listen address; `localhost` means 127.0.0.1.
pub(crate) fn parse_addr(t: &str) -> Result<SocketAddr, ParseErr> {
    let t = t.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = t.strip_prefix("localhost:")
        && let Ok(p) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
    }
    let hint = if t.parse::<u16>().is_ok() {
        format!(
            "add the interface, e.g. 127.0.0.1:{t} (local only) or 0.0.0.0:{t} (all interfaces)"
        )
    } else if t.contains("://") {
        "write host:port without a scheme, e.g. 0.0.0.0:4317".into()
    } else {
        "write ip:port, e.g. 127.0.0.1:8080 or [::1]:8080".into()
    };
    Err((format!("'{t}' is not a listen address"), Some(hint)))
}

/// Whether `text` starts with a scheme (`http://`, `https://` or another one
/// [`parse_url`] refuses).
pub(crate) fn has_scheme(text: &str) -> bool {
    text.contains("://")
}

/// Parses an endpoint as written: a URL ([`parse_url`]), or `host:port`
/// without a scheme, which the OTLP specification lets `insecure` resolve for
/// gRPC. Returns the trimmed text.
pub(crate) fn parse_endpoint_text(text: &str) -> Result<String, ParseErr> {
    let t = text.trim();
    if t.is_empty() || has_scheme(t) || t.contains(char::is_whitespace) {
        return parse_url(t).map(|_| t.to_owned());
    }
    // Checked as the URL it becomes; messages quote the text as written.
    let as_url = format!("http://{t}");
    match parse_url(&as_url) {
        Ok(_) => Ok(t.to_owned()),
        Err((msg, hint)) => Err((msg.replace(&format!("'{as_url}'"), &format!("'{t}'")), hint)),
    }
}

/// Parses and checks an endpoint URL: scheme http or https, a host, an optional valid port.
pub(crate) fn parse_url(text: &str) -> Result<Url<'_>, ParseErr> {
    let t = text.trim();
    if t.is_empty() {
        return Err((
            "endpoint is empty".into(),
            Some(
                "write a URL such as http://localhost:4317, or remove the key to use the default"
                    .into(),
            ),
        ));
    }
    if t.contains(char::is_whitespace) {
        return Err((
            format!("endpoint '{t}' contains whitespace"),
            Some("remove the spaces".into()),
        ));
    }
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err((
            format!("endpoint '{t}': missing scheme"),
            Some(format!("use http://{t} (plaintext) or https://{t} (TLS)")),
        ));
    };
    let lower = scheme.to_ascii_lowercase();
    if lower != "http" && lower != "https" {
        let hint = match lower.as_str() {
            "grpc" | "grpcs" | "tcp" | "dns" | "unix" => format!(
                "use http:// or https://; choose gRPC with `protocol: grpc`, not the scheme, e.g. http://{rest}"
            ),
            _ => "use http:// (plaintext) or https:// (TLS)".into(),
        };
        return Err((
            format!("endpoint '{t}': unsupported scheme '{scheme}'"),
            Some(hint),
        ));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => {
                return Err((
                    format!("endpoint '{t}': unclosed '[' in IPv6 address"),
                    Some("write e.g. http://[::1]:4317".into()),
                ));
            }
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err((
            format!("endpoint '{t}': missing host"),
            Some("write e.g. http://localhost:4317".into()),
        ));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
    {
        return Err((
            format!("endpoint '{t}': invalid host '{host}'"),
            Some("use a host name or IP address".into()),
        ));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err((
                    format!("endpoint '{t}': invalid port '{p}'"),
                    Some("use a port between 1 and 65535, e.g. 4317 (grpc) or 4318 (http)".into()),
                ));
            }
            Ok(n) => Some(n),
        },
    };
    Ok(Url {
        scheme,
        host,
        port,
        path,
    })
}

/// Applies the spec's path rule: HTTP protocols get `v1/<signal>` appended to a base URL.
pub(crate) fn signal_endpoint(base: &str, protocol: Protocol, signal: Signal) -> String {
    if protocol.is_http() {
        format!("{}{}", base.trim_end_matches('/'), signal.http_path())
    } else {
        base.to_owned()
    }
}
