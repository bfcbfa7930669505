#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The facade on both runtime flavours, and outside any runtime.

use std::time::Duration;

use opentelemetry_proto::tonic::{
    common::v1::InstrumentationScope, resource::v1::Resource, trace::v1::Span,
};
use otlp::{Otlp, OtlpError, config::Config, core::Signal};

fn unreachable_config() -> Config {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = Config::default();
    config.retry.max_retries = Some(0);
    for s in &mut config.signals {
        s.endpoint = format!("http://{unused}");
    }
    config
}

#[test]
fn building_outside_a_runtime_is_a_clear_error_not_a_panic() {
    let err = Otlp::builder()
        .with_config(unreachable_config())
        .build()
        .unwrap_err();
    assert!(matches!(err, OtlpError::NoRuntime), "{err}");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

async fn export_and_shut_down() {
    let otlp = Otlp::builder()
        .with_config(unreachable_config())
        .build()
        .unwrap();
    let resource = otlp::resource_group(&Resource::default(), "");
    let scope = otlp::scope_group(&InstrumentationScope::default(), "");
    for i in 0..10 {
        let span = Span {
            name: format!("s{i}"),
            ..Default::default()
        };
        otlp.try_export(otlp::span_item(&resource, &scope, &span))
            .unwrap();
    }
    let report = otlp.shutdown(Duration::from_secs(3)).await;
    let stats = otlp.stats();
    let t = stats.signal(Signal::Traces);
    assert_eq!(t.accepted, 10);
    // Nothing listens: every span ends failed or dropped, and the books balance.
    assert_eq!(report.sent, 0);
    assert_eq!(
        t.sent + t.dropped_total() + t.failed_total() + t.queued_items,
        t.accepted
    );
}

#[test]
fn exports_and_shuts_down_on_a_current_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_and_shut_down());
}

#[test]
fn exports_and_shuts_down_on_a_multi_thread_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_and_shut_down());
}
