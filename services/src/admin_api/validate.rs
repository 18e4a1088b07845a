//! Request validation that needs no broker: topic names and config keys, as Kafka defines them.

use super::error::ApiError;

/// Topic-level configuration keys Kafka 4.x accepts (`TopicConfig`). Keys of Confluent
/// Server (`confluent.…`) are passed to the broker, which checks them.
pub const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Kafka's topic name rules (`crate::topic_name`), as the API's 400.
pub fn topic_name(name: &str) -> Result<(), ApiError> {
    match crate::topic_name::problem(name) {
        None => Ok(()),
        Some(reason) => Err(ApiError::bad_request(
            "invalid_topic_name",
            format!("topic name `{name}` {reason}"),
        )),
    }
}

/// Every key must be a topic config Kafka knows.
pub fn config_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Result<(), ApiError> {
    for key in keys {
        if !(TOPIC_CONFIGS.contains(&key.as_str()) || key.starts_with("confluent.")) {
            return Err(ApiError::bad_request(
                "unknown_config",
                format!("`{key}` is not a topic configuration (e.g. retention.ms, cleanup.policy)"),
            ));
        }
    }
    Ok(())
}
