//! Request validation that needs no broker: topic names and config keys, as Kafka defines them.

use super::error::{ApiError, ErrorCode};

/// Topic-level configuration keys Kafka 4.x accepts (`TopicConfig`). Keys of Confluent
/// Server (`confluent.…`, see [`CONFLUENT_KEY_PATTERN`]) are passed to the broker, which
/// checks them.
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
            ErrorCode::InvalidTopicName,
            format!("topic name `{name}` {reason}"),
        )),
    }
}

/// The longest topic config value accepted, in bytes (longer values are refused before they
/// reach a broker: some drop the connection on them).
pub const MAX_CONFIG_VALUE: usize = 16_384;
/// Confluent Server's own topic keys (`confluent.` and lower-case dotted words), passed to
/// the broker, which checks them.
pub const CONFLUENT_KEY_PATTERN: &str = "^confluent(\\.[a-z0-9]+)+$";

fn is_confluent_key(key: &str) -> bool {
    key.strip_prefix("confluent.").is_some_and(|rest| {
        rest.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    })
}

/// Every key must be a topic config Kafka knows; every value at most [`MAX_CONFIG_VALUE`]
/// bytes without a NUL byte.
pub fn configs(configs: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    for (key, value) in configs {
        if !(TOPIC_CONFIGS.contains(&key.as_str()) || is_confluent_key(key)) {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownConfig,
                format!(
                    "`{}` is not a topic configuration (e.g. retention.ms, cleanup.policy)",
                    key.escape_debug()
                ),
            ));
        }
        if value.len() > MAX_CONFIG_VALUE {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidConfig,
                format!(
                    "`{key}` is {} bytes long; at most {MAX_CONFIG_VALUE} are accepted",
                    value.len()
                ),
            ));
        }
        if value.contains('\0') {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidConfig,
                format!("the value of `{key}` contains a NUL byte"),
            ));
        }
    }
    Ok(())
}
