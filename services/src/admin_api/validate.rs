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

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn topic_name(name: &str) -> Result<(), ApiError> {
    let reason = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > 249 {
        Some(format!(
            "has {} characters; at most 249 are allowed",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("cannot be `.` or `..`".to_owned())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("contains {c:?}; only a-z, A-Z, 0-9, `.`, `_` and `-` are allowed"))
    };
    match reason {
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
