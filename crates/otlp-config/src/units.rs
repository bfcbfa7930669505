//! Parsing and printing of the value formats used in config: durations
//! (`10s`, `250ms`), byte sizes (`4MiB`), and the W3C-baggage-like header
//! list of the OpenTelemetry environment variables.

use std::time::Duration;

/// Parses a duration with a unit, such as `10s`, `250ms`, `1m 30s` or `2h`.
///
/// A bare number is refused because its unit is ambiguous (the spec's
/// environment variables use milliseconds, the seed's `OTLP_TIMEOUT` seconds).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(otlp_config::parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(otlp_config::parse_duration("10").is_err());
/// ```
///
/// # Errors
///
/// Returns a message saying what is wrong and how to write it instead.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write a number with a unit, e.g. 10s or 250ms".into());
    }
    if t.starts_with('-') {
        return Err(format!(
            "'{t}' is negative; a duration must be positive, e.g. 10s"
        ));
    }
    // Zero needs no unit (`retry.max_elapsed: 0` means forever).
    if t.chars().all(|c| c == '0' || c == '.') && t.contains('0') {
        return Ok(Duration::ZERO);
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "'{t}' has no unit; write e.g. {t}s for seconds or {t}ms for milliseconds"
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "'{t}' is not a duration ({e}); write a number with a unit: ms, s, m or h, e.g. 10s"
        )
    })
}

/// Prints a duration the way [`parse_duration`] reads it (`10s`, `250ms`, `1m 30s`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

/// Parses a byte size: a plain number of bytes, or a number with a unit
/// `B`, `KiB`, `MiB`, `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000).
///
/// ```
/// assert_eq!(otlp_config::parse_size("4MiB"), Ok(4 * 1024 * 1024));
/// assert_eq!(otlp_config::parse_size("1 KB"), Ok(1000));
/// ```
///
/// # Errors
///
/// Returns a message saying what is wrong and how to write it instead.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let bad =
        || format!("'{t}' is not a size; write a number with a unit, e.g. 4MiB, 512KiB or 1GiB");
    if num.is_empty() {
        return Err(bad());
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "ki" | "k" => 1 << 10,
        "mib" | "mi" | "m" => 1 << 20,
        "gib" | "gi" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    if num.contains('.') {
        let value: f64 = num.parse().map_err(|_| bad())?;
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(format!("'{t}' is too large"));
        }
        return Ok(bytes.round() as u64);
    }
    let value: u64 = num.parse().map_err(|_| format!("'{t}' is too large"))?;
    value
        .checked_mul(mult)
        .ok_or_else(|| format!("'{t}' is too large"))
}

/// Prints a byte size with the largest binary unit that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (m, u) in UNITS {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{u}", bytes / m);
        }
    }
    format!("{bytes}B")
}

/// Decodes `%XX` escapes. Returns `None` on a malformed escape (a `%` not
/// followed by two hex digits) or a non-UTF-8 result.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    // percent-encoding passes a malformed escape through as it is; the OTel
    // header format wants it reported, so check the escapes first.
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Parses `key1=value1,key2=value2` (the OTel `*_HEADERS` format): entries
/// split on `,`, key and value trimmed and percent-decoded, empty entries skipped.
///
/// # Errors
///
/// Returns one message per malformed entry.
pub(crate) fn parse_header_list(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut headers = Vec::new();
    let mut errors = Vec::new();
    for entry in text.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        // Properties after ';' (baggage metadata) carry no meaning for headers.
        let entry = entry.split(';').next().unwrap_or(entry);
        let Some((k, v)) = entry.split_once('=') else {
            errors.push(format!(
                "header entry '{entry}' has no '='; write key=value, entries separated by ','"
            ));
            continue;
        };
        match (percent_decode(k.trim()), percent_decode(v.trim())) {
            (Some(k), Some(v)) if !k.is_empty() => headers.push((k, v)),
            (Some(k), Some(_)) if k.is_empty() => {
                errors.push(format!("header entry '{entry}' has an empty name"));
            }
            _ => errors.push(format!(
                "header entry '{entry}' has a malformed %-escape; escape '%' as %25"
            )),
        }
    }
    (headers, errors)
}

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may be sent as an HTTP header value (no control characters).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_round_trip() {
        for (text, want) in [
            ("10s", Duration::from_secs(10)),
            ("250ms", Duration::from_millis(250)),
            ("1m 30s", Duration::from_secs(90)),
            ("2h", Duration::from_secs(7200)),
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d, want, "{text}");
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert!(parse_duration("10").unwrap_err().contains("10s"));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        for (text, want) in [
            ("4MiB", 4 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("1 MB", 1_000_000),
            ("100", 100),
            ("0.5MiB", 512 << 10),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        assert_eq!(format_size(4 << 20), "4MiB");
        assert_eq!(format_size(1000), "1000B");
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn header_list_is_percent_decoded_and_reports_bad_entries() {
        let (h, e) = parse_header_list("api-key=a%20b, x=1=2 ,,bad,%zz=1");
        assert_eq!(
            h,
            vec![
                ("api-key".to_owned(), "a b".to_owned()),
                ("x".to_owned(), "1=2".to_owned())
            ]
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn percent_decode_refuses_cut_escapes_and_non_utf8() {
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("100%25").as_deref(), Some("100%"));
        assert_eq!(percent_decode("a%4"), None);
        assert_eq!(percent_decode("a%"), None);
        assert_eq!(percent_decode("%g1"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
