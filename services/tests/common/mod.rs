//! What the services' integration tests share: the test broker's address, unique names and
//! the metric-name contract with the rendered alerts.

#![allow(clippy::unwrap_used)] // tests fail by panicking

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`, set by scripts/kafka.sh).
pub(crate) fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| {
        panic!("KAFKA_BOOTSTRAP_SERVERS is unset: start the test broker with `eval \"$(scripts/kafka.sh start)\"` (scripts/test.sh does)")
    })
}

/// A name no other test run uses: `<prefix>-<pid>-<nanoseconds>`.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Fails unless the `/metrics` text exports every metric the platform's alerts and dashboards
/// take from `job` (`kafka_components::render::SERVICE_METRICS`).
pub(crate) fn assert_exports_service_metrics(job: &str, text: &str) {
    let Some((_, metrics)) = kafka_components::render::SERVICE_METRICS
        .iter()
        .find(|(name, _)| *name == job)
    else {
        panic!("SERVICE_METRICS has no job `{job}`: the contract checks nothing");
    };
    assert!(
        !metrics.is_empty(),
        "SERVICE_METRICS lists no metric for `{job}`"
    );
    for metric in *metrics {
        assert!(
            text.contains(&format!("\n{metric}{{")),
            "the alerts need {metric}: {text}"
        );
    }
}
