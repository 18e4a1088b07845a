//! Source offsets: what a record's offset value means, how two compare, and the record that
//! stores the committed offset in the compacted offset topic.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a record's offset value is read and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetKind {
    /// A whole number that grows with every record (an id, a sequence).
    Incrementing,
    /// A time: epoch milliseconds, or an RFC 3339 string.
    Timestamp,
    /// An opaque token the source gives back; not ordered, only the same token is "seen".
    Cursor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Order {
    Number(i64),
    Nanos(i128),
    Opaque,
}

/// One source offset: its text (as it goes into the URL) and how it orders.
#[derive(Debug, Clone)]
pub struct SourceOffset {
    /// `None` where the text is the digits of its number (a whole number the source sent as a
    /// JSON number): nothing to keep for each record of a page.
    text: Option<String>,
    order: Order,
}

impl PartialEq for SourceOffset {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order && self.text() == other.text()
    }
}

impl Eq for SourceOffset {}

/// Epoch milliseconds (a number, or a string of digits) or an RFC 3339 time, as nanoseconds
/// since the epoch.
fn nanos(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(|ms| i128::from(ms) * 1_000_000),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(ms) => Some(i128::from(ms) * 1_000_000),
            Err(_) => time::OffsetDateTime::parse(
                s.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(time::OffsetDateTime::unix_timestamp_nanos),
        },
        _ => None,
    }
}

/// A record's Kafka timestamp (epoch milliseconds) from its timestamp value.
pub(crate) fn timestamp_millis(value: &Value) -> Option<i64> {
    nanos(value).and_then(|n| i64::try_from(n / 1_000_000).ok())
}

impl SourceOffset {
    /// Reads an offset value of `kind`; the error says what was found.
    pub fn parse(kind: OffsetKind, value: &Value) -> Result<Self, String> {
        if let (OffsetKind::Incrementing, Some(number)) = (kind, value.as_i64()) {
            return Ok(Self::number(number));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("`{value}` is not an offset (a string or a number)")),
        };
        let order = match kind {
            OffsetKind::Incrementing => Order::Number(
                text.trim()
                    .parse()
                    .map_err(|_| format!("`{text}` is not a whole number"))?,
            ),
            OffsetKind::Timestamp => Order::Nanos(nanos(value).ok_or_else(|| {
                format!("`{text}` is neither epoch milliseconds nor an RFC 3339 time")
            })?),
            OffsetKind::Cursor => Order::Opaque,
        };
        Ok(Self {
            text: Some(text),
            order,
        })
    }

    /// An incrementing offset the source sent as a JSON number.
    pub(crate) fn number(number: i64) -> Self {
        Self {
            text: None,
            order: Order::Number(number),
        }
    }

    /// The offset as it goes into the URL.
    pub fn text(&self) -> Cow<'_, str> {
        match (&self.text, &self.order) {
            (Some(text), _) => Cow::Borrowed(text),
            (None, Order::Number(number)) => Cow::Owned(number.to_string()),
            (None, _) => Cow::Borrowed(""),
        }
    }

    /// Whether a record at `self` is new after `seen`: later for numbers and times,
    /// different for cursors.
    pub fn is_after(&self, seen: &Self) -> bool {
        match (&self.order, &seen.order) {
            (Order::Number(a), Order::Number(b)) => a > b,
            (Order::Nanos(a), Order::Nanos(b)) => a > b,
            _ => self.text() != seen.text(),
        }
    }
}

/// The value stored under the connector's key in the offset topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffset {
    /// The source offset every record up to which is in the topic (none before the first
    /// record, or for sources without offsets).
    pub offset: Option<String>,
    /// Per partition of the target topic, the log end after those records: what lies beyond
    /// was produced after this commit, and is what a restart must not produce again.
    pub positions: BTreeMap<i32, i64>,
    /// When this was committed (epoch milliseconds).
    pub committed_at_ms: i64,
}

impl StoredOffset {
    /// Now, in epoch milliseconds.
    pub(crate) fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The offset topic's key for a connector writing to a topic, Kafka Connect's shape:
/// `["<connector>",{"topic":"<topic>"}]`. A new target topic starts from scratch.
pub(crate) fn offset_key(connector: &str, topic: &str) -> Vec<u8> {
    serde_json::json!([connector, {"topic": topic}])
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kind: OffsetKind, value: Value) -> SourceOffset {
        match SourceOffset::parse(kind, &value) {
            Ok(offset) => offset,
            Err(e) => panic!("{value}: {e}"),
        }
    }

    #[test]
    fn incrementing_offsets_compare_as_numbers_not_text() {
        let nine = parse(OffsetKind::Incrementing, json!(9));
        let ten = parse(OffsetKind::Incrementing, json!("10"));
        assert!(ten.is_after(&nine));
        assert!(!nine.is_after(&ten));
        assert!(!ten.is_after(&ten));
        assert_eq!(ten.text(), "10");
        assert_eq!(parse(OffsetKind::Incrementing, json!(10)).text(), "10");
        assert_eq!(parse(OffsetKind::Incrementing, json!(10)), ten);
    }

    #[test]
    fn timestamps_compare_as_times_across_forms() {
        let utc = parse(OffsetKind::Timestamp, json!("2026-11-24T10:00:00Z"));
        let same_in_paris = parse(OffsetKind::Timestamp, json!("2026-11-24T11:00:00+01:00"));
        let later_ms = parse(OffsetKind::Timestamp, json!(1_795_514_400_001_i64));
        assert!(!utc.is_after(&same_in_paris) && !same_in_paris.is_after(&utc));
        assert!(later_ms.is_after(&utc));
        assert_eq!(
            timestamp_millis(&json!("2026-11-24T10:00:00.250Z")),
            Some(1_795_514_400_250)
        );
    }

    #[test]
    fn cursors_are_only_equal_or_new() {
        let a = parse(OffsetKind::Cursor, json!("b3Jk"));
        let b = parse(OffsetKind::Cursor, json!("AAAA"));
        assert!(b.is_after(&a) && a.is_after(&b));
        assert!(!a.is_after(&a));
    }

    #[test]
    fn bad_values_are_refused_with_what_was_found() {
        assert_eq!(
            SourceOffset::parse(OffsetKind::Incrementing, &json!("x1")).err(),
            Some("`x1` is not a whole number".to_owned())
        );
        assert!(SourceOffset::parse(OffsetKind::Timestamp, &json!("yesterday")).is_err());
        assert!(SourceOffset::parse(OffsetKind::Cursor, &json!({"a": 1})).is_err());
    }
}
