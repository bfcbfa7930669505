//! `send --replay FILE`: the export requests of an OTLP/JSON lines file (what
//! `sink --output` writes) pushed back through the exporter, queue and
//! retries, for reproducing a bug report or a recorded load shape.
//!
//! A reader thread decodes one line at a time with the HTTP receiver's own
//! OTLP/JSON rules ([`otlp::transport::from_otlp_json`]) and hands batches
//! over a small bounded channel, so the file is never held in memory and
//! blocking file reads stay off the async runtime.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use otlp::core::{Batch, Signal};
use tokio::sync::mpsc;

/// The longest line read: above the receivers' default
/// `max_decompressed_bytes` (64 MiB of protobuf), with room for JSON's
/// larger encoding of the same request.
pub(crate) const MAX_LINE_BYTES: u64 = 256 * 1024 * 1024;

/// Batches in flight between the reader thread and the sender.
const CHANNEL: usize = 8;

/// Why a replay stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    /// The file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line is not an OTLP/JSON export request.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// What a replay pushed into the pipeline.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Items (spans, data points, log records) handed to the pipeline.
    pub(crate) items: u64,
    /// Requests (lines) read.
    pub(crate) requests: u64,
    /// Items per signal seen in the file.
    pub(crate) per_signal: BTreeMap<Signal, u64>,
    /// The reason the replay stopped before the end of the file.
    pub(crate) error: Option<ReplayError>,
}

/// Reads `path` and hands every request to `send` (which waits when the
/// queue is full under `block`); returns what was handed over.
pub(crate) async fn replay<F, Fut>(path: &Path, mut send: F) -> Replayed
where
    F: FnMut(Batch) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let file = match File::open(path) {
        Ok(f) => f,
        Err(source) => {
            return Replayed {
                error: Some(ReplayError::Read {
                    path: path.to_path_buf(),
                    source,
                }),
                ..Replayed::default()
            };
        }
    };
    let (tx, mut rx) = mpsc::channel::<Result<Batch, ReplayError>>(CHANNEL);
    let owned = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("otlp-client-replay".into())
        .spawn(move || read_lines(BufReader::new(file), &owned, &tx));
    if let Err(source) = reader {
        return Replayed {
            error: Some(ReplayError::Read {
                path: path.to_path_buf(),
                source,
            }),
            ..Replayed::default()
        };
    }
    let mut out = Replayed::default();
    while let Some(next) = rx.recv().await {
        match next {
            Ok(batch) => {
                out.items += batch.items();
                out.requests += 1;
                *out.per_signal.entry(batch.signal()).or_default() += batch.items();
                send(batch).await;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// The reader thread: one decoded batch per non-empty line, then the first
/// error if any. Stops when the receiving side is gone.
fn read_lines<R: Read>(
    mut reader: BufReader<R>,
    path: &Path,
    tx: &mpsc::Sender<Result<Batch, ReplayError>>,
) {
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        n += 1;
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line);
        let next = match read {
            Ok(0) => return,
            Ok(len) if len as u64 > MAX_LINE_BYTES => Err(ReplayError::Line {
                path: path.to_path_buf(),
                line: n,
                reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
            }),
            Ok(_) => {
                let body = line.trim_ascii();
                if body.is_empty() {
                    continue;
                }
                decode(body).map_err(|reason| ReplayError::Line {
                    path: path.to_path_buf(),
                    line: n,
                    reason,
                })
            }
            Err(source) => Err(ReplayError::Read {
                path: path.to_path_buf(),
                source,
            }),
        };
        let stop = next.is_err();
        if tx.blocking_send(next).is_err() || stop {
            return;
        }
    }
}

/// One OTLP/JSON export request, its signal read from its top-level key.
pub(crate) fn decode(json: &[u8]) -> Result<Batch, String> {
    let signal = signal_of(json)?;
    otlp::transport::from_otlp_json(signal, json)
}

/// `resourceSpans` -> traces, `resourceMetrics` -> metrics, `resourceLogs`
/// -> logs, `resourceProfiles` -> profiles (the snake_case spellings too, as
/// the OTLP/JSON decoder takes them).
fn signal_of(json: &[u8]) -> Result<Signal, String> {
    let keys: BTreeMap<String, serde::de::IgnoredAny> = serde_json::from_slice(json)
        .map_err(|e| format!("not an OTLP/JSON export request (a JSON object per line): {e}"))?;
    let found: Vec<Signal> = keys
        .keys()
        .filter_map(|k| match k.as_str() {
            "resourceSpans" | "resource_spans" => Some(Signal::Traces),
            "resourceMetrics" | "resource_metrics" => Some(Signal::Metrics),
            "resourceLogs" | "resource_logs" => Some(Signal::Logs),
            "resourceProfiles" | "resource_profiles" => Some(Signal::Profiles),
            _ => None,
        })
        .collect();
    match found.as_slice() {
        [signal] => Ok(*signal),
        [] => Err(
            "no resourceSpans, resourceMetrics, resourceLogs or resourceProfiles key: not an OTLP/JSON export request"
                .to_owned(),
        ),
        _ => Err("more than one signal's key in one request".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"b"}]}]}]}"#;
    const LOG: &str =
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#;

    #[test]
    fn each_line_is_decoded_as_the_signal_its_key_names() {
        let spans = decode(SPAN.as_bytes()).unwrap();
        assert_eq!((spans.signal(), spans.items()), (Signal::Traces, 2));
        let logs = decode(LOG.as_bytes()).unwrap();
        assert_eq!((logs.signal(), logs.items()), (Signal::Logs, 1));
        assert!(
            decode(b"{\"resourceThings\":[]}")
                .unwrap_err()
                .contains("resourceSpans")
        );
        assert!(decode(b"[1]").unwrap_err().contains("JSON object"));
        assert!(
            decode(br#"{"resourceSpans":[],"resourceLogs":[]}"#)
                .unwrap_err()
                .contains("more than one")
        );
        // The receiver's rules: ids are hex.
        let base64_id = SPAN.replace("eee19b7ec3c1b174", "7uGbfsPBsXQ=");
        assert!(decode(base64_id.as_bytes()).is_err());
    }

    #[tokio::test]
    async fn a_file_is_replayed_line_by_line_and_stops_at_the_first_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.jsonl");
        std::fs::write(&path, format!("{SPAN}\n\n{LOG}\r\nnot json\n{SPAN}\n")).unwrap();
        let mut got = Vec::new();
        let r = replay(&path, |b| {
            got.push((b.signal(), b.items()));
            async {}
        })
        .await;
        assert_eq!(got, [(Signal::Traces, 2), (Signal::Logs, 1)]);
        assert_eq!((r.items, r.requests), (3, 2));
        let err = r.error.unwrap().to_string();
        assert!(err.contains("capture.jsonl:4: "), "{err}");

        let missing = replay(&dir.path().join("none"), |_| async {}).await;
        assert!(matches!(missing.error, Some(ReplayError::Read { .. })));
    }
}
