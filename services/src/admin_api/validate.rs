//! Request validation that needs no broker: topic names and config keys, as Kafka defines them.

use super::error::{ApiError, ErrorCode};

/// The form of a topic config's value, as Kafka's `TopicConfig` types it. The API refuses a
/// value of another form itself, naming the form; the broker checks ranges (a segment of at
/// least 1 MiB, a ratio between 0 and 1, …) and answers with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A whole number of 32 bits.
    Int,
    /// A whole number of 64 bits (milliseconds, bytes).
    Long,
    /// `true` or `false`.
    Bool,
    /// A decimal number: `0.5`.
    Decimal,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// One or more of these words, comma-separated: `compact,delete`.
    ListOf(&'static [&'static str]),
    /// `*`, or `partition:broker` pairs, comma-separated, or nothing.
    Replicas,
}

/// Topic-level configuration keys Kafka 4.x accepts (`TopicConfig`), with the form of their
/// values. Keys of Confluent Server (`confluent.…`, see [`CONFLUENT_KEY_PATTERN`]) are passed
/// to the broker, which checks them.
pub const TOPIC_CONFIGS: &[(&str, Form)] = &[
    ("cleanup.policy", Form::ListOf(&["delete", "compact"])),
    ("compression.gzip.level", Form::Int),
    ("compression.lz4.level", Form::Int),
    (
        "compression.type",
        Form::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    ("compression.zstd.level", Form::Int),
    ("delete.retention.ms", Form::Long),
    ("file.delete.delay.ms", Form::Long),
    ("flush.messages", Form::Long),
    ("flush.ms", Form::Long),
    ("follower.replication.throttled.replicas", Form::Replicas),
    ("index.interval.bytes", Form::Int),
    ("leader.replication.throttled.replicas", Form::Replicas),
    ("local.retention.bytes", Form::Long),
    ("local.retention.ms", Form::Long),
    ("max.compaction.lag.ms", Form::Long),
    ("max.message.bytes", Form::Int),
    ("message.timestamp.after.max.ms", Form::Long),
    ("message.timestamp.before.max.ms", Form::Long),
    (
        "message.timestamp.type",
        Form::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Form::Decimal),
    ("min.compaction.lag.ms", Form::Long),
    ("min.insync.replicas", Form::Int),
    ("preallocate", Form::Bool),
    ("remote.log.copy.disable", Form::Bool),
    ("remote.log.delete.on.disable", Form::Bool),
    ("remote.storage.enable", Form::Bool),
    ("retention.bytes", Form::Long),
    ("retention.ms", Form::Long),
    ("segment.bytes", Form::Int),
    ("segment.index.bytes", Form::Int),
    ("segment.jitter.ms", Form::Long),
    ("segment.ms", Form::Long),
    ("unclean.leader.election.enable", Form::Bool),
];

impl Form {
    /// The form as a regular expression (for the OpenAPI document); [`Form::accepts`] takes
    /// exactly what it matches, but for a number out of its type's range.
    pub fn pattern(self) -> String {
        let words = |words: &[&str]| words.join("|");
        match self {
            Form::Int => "^-?[0-9]{1,10}$".to_owned(),
            Form::Long => "^-?[0-9]{1,19}$".to_owned(),
            Form::Bool => "^(true|false)$".to_owned(),
            Form::Decimal => "^-?[0-9]+(\\.[0-9]+)?$".to_owned(),
            Form::OneOf(all) => format!("^({})$", words(all)),
            Form::ListOf(all) => format!("^({0})(,({0}))*$", words(all)),
            Form::Replicas => "^(\\*|[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*)?$".to_owned(),
        }
    }

    /// Whether `value` has this form.
    pub fn accepts(self, value: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let whole = |s: &str| digits(s.strip_prefix('-').unwrap_or(s));
        match self {
            Form::Int => whole(value) && value.parse::<i32>().is_ok(),
            Form::Long => whole(value) && value.parse::<i64>().is_ok(),
            Form::Bool => value == "true" || value == "false",
            Form::Decimal => {
                let (int, frac) = value.split_once('.').unwrap_or((value, "0"));
                whole(int) && digits(frac)
            }
            Form::OneOf(all) => all.contains(&value),
            Form::ListOf(all) => value.split(',').all(|word| all.contains(&word)),
            Form::Replicas => {
                value.is_empty()
                    || value == "*"
                    || value.split(',').all(|pair| {
                        pair.split_once(':')
                            .is_some_and(|(partition, broker)| digits(partition) && digits(broker))
                    })
            }
        }
    }

    /// What a value of this form looks like, for an error.
    fn describe(self) -> String {
        match self {
            Form::Int => "a whole number of 32 bits (e.g. 1048576)".to_owned(),
            Form::Long => "a whole number of 64 bits (e.g. 604800000)".to_owned(),
            Form::Bool => "`true` or `false`".to_owned(),
            Form::Decimal => "a decimal number (e.g. 0.5)".to_owned(),
            Form::OneOf(all) => format!("one of {}", all.join(", ")),
            Form::ListOf(all) => format!("one or more of {}, comma-separated", all.join(", ")),
            Form::Replicas => {
                "`*` or partition:broker pairs, comma-separated (e.g. 0:1,1:2)".to_owned()
            }
        }
    }
}

/// At most the first 40 characters of `value`, for an error.
fn shortened(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// The form of a known topic config's value.
fn form_of(key: &str) -> Option<Form> {
    TOPIC_CONFIGS
        .iter()
        .find_map(|&(known, form)| (known == key).then_some(form))
}

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
/// bytes without a NUL byte, of its key's [`Form`].
pub fn configs(configs: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    for (key, value) in configs {
        let form = form_of(key);
        if form.is_none() && !is_confluent_key(key) {
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
        if let Some(form) = form
            && !form.accepts(value)
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidConfig,
                format!(
                    "`{key}` must be {}, not `{}`",
                    form.describe(),
                    shortened(value).escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::{Form, TOPIC_CONFIGS};

    #[test]
    fn each_form_takes_what_its_pattern_matches_and_nothing_else() {
        // The document's pattern and the API's check are one rule: a value the pattern
        // matches is refused only for a number out of its type's range.
        let samples = [
            "",
            "0",
            "-1",
            "+1",
            "007",
            "1.5",
            "-0.25",
            ".5",
            "1.",
            "1e3",
            "2147483647",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "true",
            "false",
            "TRUE",
            "delete",
            "compact",
            "compact,delete",
            "compact, delete",
            "delete,",
            "zstd",
            "ZSTD",
            "CreateTime",
            "*",
            "0:1",
            "0:1,1:2",
            "0:1,",
            "a:1",
            "*,0:1",
            " 1",
        ];
        for &(key, form) in TOPIC_CONFIGS {
            let pattern = regex::Regex::new(&form.pattern()).unwrap();
            for value in samples {
                let out_of_range = matches!(
                    (form, value),
                    (
                        Form::Int,
                        "2147483648" | "9223372036854775807" | "9223372036854775808"
                    ) | (Form::Long, "9223372036854775808")
                );
                assert_eq!(
                    form.accepts(value),
                    pattern.is_match(value) && !out_of_range,
                    "{key} = {value:?} against {}",
                    form.pattern()
                );
            }
        }
    }
}
