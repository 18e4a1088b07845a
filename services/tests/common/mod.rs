//! What the services' integration tests share: the test broker's address and unique names.

#![allow(clippy::unwrap_used)] // tests fail by panicking

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`, set by scripts/tansu.sh).
pub(crate) fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| {
        panic!("KAFKA_BOOTSTRAP_SERVERS is unset: start the test broker with `eval \"$(scripts/tansu.sh start)\"` (scripts/test.sh does)")
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
