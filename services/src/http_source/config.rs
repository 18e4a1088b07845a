//! The connector's configuration file: Kafka Connect's shape (`{"name": …, "config": {…}}`,
//! dotted keys, values as strings or numbers), as JSON or TOML. Every key is checked before
//! anything starts; an error names the key to fix.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use super::offset::{OffsetKind, SourceOffset};

/// A configuration error, naming the file and the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON or TOML, or not `{name, config}`.
    #[error("{path} is not a connector configuration: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// One key is missing or wrong.
    #[error("{key}: {reason}")]
    Key {
        /// The key (`config.kafka.topic`).
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

fn key_error(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// How requests authenticate. Secrets come from the environment, never the file, and
/// `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// HTTP basic.
    Basic {
        /// User name.
        user: String,
        /// Password (read from the variable `http.auth.password.env` names).
        password: String,
    },
    /// `Authorization: Bearer <token>` (read from the variable `http.auth.token.env` names).
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"[secret]")
                .finish(),
            Auth::Bearer(_) => f.write_str("Bearer([secret])"),
        }
    }
}

/// librdkafka producer settings; `Debug` hides `sasl.password`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProducerSettings(pub BTreeMap<String, String>);

impl std::fmt::Debug for ProducerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::kafka_security::debug_settings(
            f,
            self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// How a response leads to the next page of the same poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// One request per poll.
    None,
    /// The value at `pointer` is the next page's URL (absolute, or relative to the request).
    Link {
        /// Where the next link is.
        pointer: String,
    },
    /// The value at `pointer` is a cursor, sent as the query parameter `param`.
    Cursor {
        /// Where the next cursor is.
        pointer: String,
        /// The query parameter that carries it.
        param: String,
    },
}

/// Where the source offset comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSpec {
    /// JSON pointer into each record.
    pub pointer: String,
    /// How offsets compare.
    pub kind: OffsetKind,
}

/// A connector's validated configuration.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The connector's name.
    pub name: String,
    /// The request URL, with `${offset}` where the current offset goes.
    pub url: String,
    /// GET or POST.
    pub method: reqwest::Method,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request body template (`${offset}` substituted), for POST.
    pub body: Option<String>,
    /// Authentication.
    pub auth: Auth,
    /// Time between the end of one poll and the start of the next.
    pub poll_interval: Duration,
    /// Time one HTTP request may take.
    pub request_timeout: Duration,
    /// The largest response body the connector reads; a larger page fails it.
    pub max_response_bytes: u64,
    /// First retry delay after a 429, 5xx or timeout; doubles up to `retry_backoff_max`.
    pub retry_backoff_initial: Duration,
    /// Longest retry delay (a longer Retry-After is honoured as given).
    pub retry_backoff_max: Duration,
    /// Consecutive failed attempts before the connector fails (0: retry for ever).
    pub retry_max_attempts: u32,
    /// JSON pointer to the list of records in a response.
    pub list_pointer: String,
    /// JSON pointer to each record's key.
    pub key_pointer: Option<String>,
    /// Where each record's source offset is (none: every poll produces every record).
    pub offset: Option<OffsetSpec>,
    /// The offset before any record was produced.
    pub initial_offset: Option<SourceOffset>,
    /// JSON pointer to each record's timestamp (epoch milliseconds or RFC 3339).
    pub timestamp_pointer: Option<String>,
    /// Paging within one poll.
    pub pagination: Pagination,
    /// The target topic.
    pub topic: String,
    /// Partitions of the target topic if the connector creates it.
    pub topic_partitions: i32,
    /// Replication factor of the target topic if the connector creates it.
    pub topic_replication_factor: i32,
    /// The compacted topic that stores source offsets.
    pub offset_topic: String,
    /// Replication factor of the offset topic if the connector creates it.
    pub offset_topic_replication_factor: i32,
    /// librdkafka producer settings (`producer.` prefix removed).
    pub producer: ProducerSettings,
    /// The REST listener (`http://host:port`), if the file names one.
    pub listener: Option<String>,
}

/// The default of `http.response.max.bytes`: far above any page a source should send, far
/// below what would exhaust the connector's memory.
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Declares the settings of the `config` object: each key once, as a variant of [`Setting`].
macro_rules! settings {
    ($($(#[$doc:meta])* $variant:ident = $key:literal,)*) => {
        /// A setting of the `config` object (besides `producer.*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Setting {
            $($(#[$doc])* $variant,)*
        }

        impl Setting {
            /// Every setting.
            const ALL: &'static [Setting] = &[$(Setting::$variant,)*];

            /// Its name in errors: `config.<key>`.
            fn name(self) -> String {
                Raw::name(self.key())
            }

            /// Its key in the `config` object.
            fn key(self) -> &'static str {
                match self {
                    $(Setting::$variant => $key,)*
                }
            }
        }
    };
}

settings! {
    /// Kafka Connect's own: accepted, not used.
    ConnectorClass = "connector.class",
    /// Kafka Connect's own: accepted, not used.
    TasksMax = "tasks.max",
    HttpRequestUrl = "http.request.url",
    HttpRequestMethod = "http.request.method",
    HttpRequestHeaders = "http.request.headers",
    HttpRequestBody = "http.request.body",
    HttpRequestTimeoutMillis = "http.request.timeout.millis",
    HttpRequestCursorParam = "http.request.cursor.param",
    HttpAuthType = "http.auth.type",
    HttpAuthUser = "http.auth.user",
    HttpAuthPasswordEnv = "http.auth.password.env",
    HttpAuthTokenEnv = "http.auth.token.env",
    HttpTimerIntervalMillis = "http.timer.interval.millis",
    HttpRetryBackoffInitialMillis = "http.retry.backoff.initial.millis",
    HttpRetryBackoffMaxMillis = "http.retry.backoff.max.millis",
    HttpRetryMaxAttempts = "http.retry.max.attempts",
    HttpOffsetInitial = "http.offset.initial",
    HttpResponseMaxBytes = "http.response.max.bytes",
    HttpResponseListPointer = "http.response.list.pointer",
    HttpResponseRecordKeyPointer = "http.response.record.key.pointer",
    HttpResponseRecordOffsetPointer = "http.response.record.offset.pointer",
    HttpResponseRecordOffsetType = "http.response.record.offset.type",
    HttpResponseRecordTimestampPointer = "http.response.record.timestamp.pointer",
    HttpResponseNextPointer = "http.response.next.pointer",
    HttpResponseNextType = "http.response.next.type",
    KafkaTopic = "kafka.topic",
    TopicCreationDefaultPartitions = "topic.creation.default.partitions",
    TopicCreationDefaultReplicationFactor = "topic.creation.default.replication.factor",
    OffsetStorageTopic = "offset.storage.topic",
    OffsetStorageReplicationFactor = "offset.storage.replication.factor",
    Listeners = "listeners",
}

impl AsRef<str> for Setting {
    fn as_ref(&self) -> &str {
        self.key()
    }
}

/// Producer settings the delivery guarantee depends on, and the only value each may have.
const PINNED_PRODUCER: &[(&str, &[&str])] = &[
    ("enable.idempotence", &["true"]),
    ("acks", &["all", "-1"]),
    ("request.required.acks", &["all", "-1"]),
];

/// The raw `config` object, read key by key.
struct Raw<'a> {
    config: &'a serde_json::Map<String, Value>,
}

impl Raw<'_> {
    fn name(key: &str) -> String {
        format!("config.{key}")
    }

    /// A string or number, as text.
    fn text(&self, key: impl AsRef<str>) -> Result<Option<String>, ConfigError> {
        let key = key.as_ref();
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(key_error(&Self::name(key), "must be a string or a number")),
        }
    }

    fn required(&self, key: impl AsRef<str>) -> Result<String, ConfigError> {
        let key = key.as_ref();
        match self.text(key)? {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(key_error(&Self::name(key), "is required")),
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: impl AsRef<str>,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        let key = key.as_ref();
        match self.text(key)? {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| key_error(&Self::name(key), format!("must be {what}, not `{text}`"))),
        }
    }

    fn millis(
        &self,
        key: impl AsRef<str>,
        default: u64,
        min: u64,
    ) -> Result<Duration, ConfigError> {
        let key = key.as_ref();
        let millis: u64 = self.number(key, default, "a whole number of milliseconds")?;
        if millis < min {
            return Err(key_error(
                &Self::name(key),
                format!("must be at least {min} ms, not {millis}"),
            ));
        }
        Ok(Duration::from_millis(millis))
    }

    fn positive<T>(&self, key: impl AsRef<str>, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display,
    {
        let key = key.as_ref();
        let n: T = self.number(key, default, "a positive whole number")?;
        if n < T::from(1) {
            return Err(key_error(
                &Self::name(key),
                format!("must be at least 1, not {n}"),
            ));
        }
        Ok(n)
    }

    fn pointer(&self, key: impl AsRef<str>) -> Result<Option<String>, ConfigError> {
        let key = key.as_ref();
        let Some(pointer) = self.text(key)? else {
            return Ok(None);
        };
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(key_error(
                &Self::name(key),
                format!(
                    "`{pointer}` is not a JSON pointer: it is empty (the whole value) or starts with `/`, as in `/data/items`"
                ),
            ));
        }
        Ok(Some(pointer))
    }

    fn secret(&self, key: impl AsRef<str>) -> Result<String, ConfigError> {
        let key = key.as_ref();
        let var = self.required(key)?;
        match std::env::var(&var) {
            Ok(value) if !value.is_empty() => Ok(value),
            _ => Err(key_error(
                &Self::name(key),
                format!("the environment variable {var} is not set (or empty)"),
            )),
        }
    }

    fn headers(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let key = Setting::HttpRequestHeaders.key();
        let pairs: Vec<(String, String)> = match self.config.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, value)| match value {
                    Value::String(v) => Ok((name.clone(), v.clone())),
                    _ => Err(key_error(
                        &format!("{}.{name}", Self::name(key)),
                        "a header value must be a string",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(list)) => list
                .split([',', '\n'])
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry
                        .split_once(':')
                        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                        .ok_or_else(|| {
                            key_error(&Self::name(key), format!("`{entry}` is not `Name: value`"))
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(key_error(
                    &Self::name(key),
                    "must be `Name: value, Name: value` or an object of names to values",
                ));
            }
        };
        for (name, value) in &pairs {
            let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(key_error(
                    &Self::name(key),
                    format!("`{name}: {value}` is not a valid HTTP header"),
                ));
            }
        }
        Ok(pairs)
    }
}

/// What `${offset}` keeps unencoded: RFC 3986's unreserved characters.
const OFFSET_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL template with `offset` in place of `${offset}`, URL-encoded.
pub(crate) fn expand_url(template: &str, offset: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(offset, OFFSET_ENCODE).to_string();
    template.replace("${offset}", &encoded)
}

impl ConnectorConfig {
    /// Reads and validates a configuration file (`.toml`, otherwise JSON).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let syntax = |reason: String| ConfigError::Syntax {
            path: shown.clone(),
            reason,
        };
        let document: Value = if path.extension().is_some_and(|ext| ext == "toml") {
            toml::from_str(&text).map_err(|e| syntax(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| syntax(e.to_string()))?
        };
        Self::from_value(&document)
    }

    /// Validates a configuration document (`{"name": …, "config": {…}}`).
    pub fn from_value(document: &Value) -> Result<Self, ConfigError> {
        let name = connector_name(document)?;
        let Some(Value::Object(config)) = document.get("config") else {
            return Err(key_error("config", "is required (an object of settings)"));
        };
        for key in config.keys() {
            if !Setting::ALL.iter().any(|s| s.key() == key) && !key.starts_with("producer.") {
                return Err(key_error(
                    &Raw::name(key),
                    "is not a setting of this connector (see docs/http-source-connector.md for the list)",
                ));
            }
        }
        let raw = Raw { config };
        let url = raw.required(Setting::HttpRequestUrl)?;
        let method = raw.method()?;
        let auth = raw.auth()?;
        let offset = raw.offset()?;
        let initial_offset = raw.initial_offset(offset.as_ref())?;
        check_url(&url, initial_offset.as_ref())?;
        let pagination = raw.pagination()?;
        let (topic, offset_topic) = raw.topics(&name)?;
        let producer = raw.producer()?;
        let listener = raw.text(Setting::Listeners)?;
        let (retry_backoff_initial, retry_backoff_max) = raw.backoff()?;
        Ok(Self {
            url,
            method,
            headers: raw.headers()?,
            body: raw.text(Setting::HttpRequestBody)?,
            auth,
            poll_interval: raw.millis(Setting::HttpTimerIntervalMillis, 60_000, 0)?,
            request_timeout: raw.millis(Setting::HttpRequestTimeoutMillis, 30_000, 1)?,
            max_response_bytes: raw.positive(Setting::HttpResponseMaxBytes, MAX_RESPONSE_BYTES)?,
            retry_backoff_initial,
            retry_backoff_max,
            retry_max_attempts: raw.number(
                Setting::HttpRetryMaxAttempts,
                0,
                "a whole number (0: retry for ever)",
            )?,
            list_pointer: raw
                .pointer(Setting::HttpResponseListPointer)?
                .unwrap_or_default(),
            key_pointer: raw.pointer(Setting::HttpResponseRecordKeyPointer)?,
            offset,
            initial_offset,
            timestamp_pointer: raw.pointer(Setting::HttpResponseRecordTimestampPointer)?,
            pagination,
            topic,
            topic_partitions: raw.positive(Setting::TopicCreationDefaultPartitions, 3)?,
            topic_replication_factor: raw
                .positive(Setting::TopicCreationDefaultReplicationFactor, 3)?,
            offset_topic,
            offset_topic_replication_factor: raw
                .positive(Setting::OffsetStorageReplicationFactor, 3)?,
            producer: ProducerSettings(producer),
            listener,
            name,
        })
    }
}

/// The connector's name: it prefixes the default offset topic, so it follows the topic name
/// rule.
fn connector_name(document: &Value) -> Result<String, ConfigError> {
    match document.get("name") {
        Some(Value::String(name)) => match crate::topic_name::problem(name) {
            None => Ok(name.clone()),
            Some(problem) => Err(key_error(
                "name",
                format!("`{name}` cannot name a connector: it {problem}"),
            )),
        },
        _ => Err(key_error("name", "is required (a string)")),
    }
}

/// Refuses a request URL (its template expanded with the initial offset) that is not an
/// http:// or https:// URL with a host.
fn check_url(url: &str, initial_offset: Option<&SourceOffset>) -> Result<(), ConfigError> {
    let expanded = expand_url(
        url,
        &initial_offset.map(SourceOffset::text).unwrap_or_default(),
    );
    match Url::parse(&expanded) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        Ok(parsed) => Err(key_error(
            &Setting::HttpRequestUrl.name(),
            format!(
                "`{url}` must be an http:// or https:// URL with a host, not {}:",
                parsed.scheme()
            ),
        )),
        Err(e) => Err(key_error(
            &Setting::HttpRequestUrl.name(),
            format!("`{url}` is not a URL: {e}"),
        )),
    }
}

/// The settings that take more than one key, or choose between kinds.
impl Raw<'_> {
    fn method(&self) -> Result<reqwest::Method, ConfigError> {
        match self
            .text(Setting::HttpRequestMethod)?
            .unwrap_or_else(|| "GET".to_owned())
            .to_ascii_uppercase()
            .as_str()
        {
            "GET" => Ok(reqwest::Method::GET),
            "POST" => Ok(reqwest::Method::POST),
            other => Err(key_error(
                &Setting::HttpRequestMethod.name(),
                format!("must be GET or POST, not `{other}`"),
            )),
        }
    }

    fn auth(&self) -> Result<Auth, ConfigError> {
        match self.text(Setting::HttpAuthType)?.as_deref() {
            None | Some("none") => Ok(Auth::None),
            Some("basic") => Ok(Auth::Basic {
                user: self.required(Setting::HttpAuthUser)?,
                password: self.secret(Setting::HttpAuthPasswordEnv)?,
            }),
            Some("bearer") => Ok(Auth::Bearer(self.secret(Setting::HttpAuthTokenEnv)?)),
            Some(other) => Err(key_error(
                &Setting::HttpAuthType.name(),
                format!("must be none, basic or bearer, not `{other}`"),
            )),
        }
    }

    fn offset(&self) -> Result<Option<OffsetSpec>, ConfigError> {
        let pointer = self.pointer(Setting::HttpResponseRecordOffsetPointer)?;
        let kind = self.text(Setting::HttpResponseRecordOffsetType)?;
        let Some(pointer) = pointer else {
            if kind.is_some() {
                return Err(key_error(
                    &Setting::HttpResponseRecordOffsetType.name(),
                    "needs http.response.record.offset.pointer",
                ));
            }
            return Ok(None);
        };
        let kind = match kind.as_deref() {
            None | Some("incrementing") => OffsetKind::Incrementing,
            Some("timestamp") => OffsetKind::Timestamp,
            Some("cursor") => OffsetKind::Cursor,
            Some(other) => {
                return Err(key_error(
                    &Setting::HttpResponseRecordOffsetType.name(),
                    format!("must be incrementing, timestamp or cursor, not `{other}`"),
                ));
            }
        };
        Ok(Some(OffsetSpec { pointer, kind }))
    }

    fn initial_offset(
        &self,
        offset: Option<&OffsetSpec>,
    ) -> Result<Option<SourceOffset>, ConfigError> {
        let Some(text) = self.text(Setting::HttpOffsetInitial)? else {
            return Ok(None);
        };
        let Some(spec) = offset else {
            return Err(key_error(
                &Setting::HttpOffsetInitial.name(),
                "needs http.response.record.offset.pointer",
            ));
        };
        SourceOffset::parse(spec.kind, &Value::String(text))
            .map(Some)
            .map_err(|reason| key_error(&Setting::HttpOffsetInitial.name(), reason))
    }

    fn pagination(&self) -> Result<Pagination, ConfigError> {
        let Some(pointer) = self.pointer(Setting::HttpResponseNextPointer)? else {
            return Ok(Pagination::None);
        };
        match self.text(Setting::HttpResponseNextType)?.as_deref() {
            None | Some("link") => Ok(Pagination::Link { pointer }),
            Some("cursor") => Ok(Pagination::Cursor {
                pointer,
                param: self
                    .text(Setting::HttpRequestCursorParam)?
                    .unwrap_or_else(|| "cursor".to_owned()),
            }),
            Some(other) => Err(key_error(
                &Setting::HttpResponseNextType.name(),
                format!("must be link or cursor, not `{other}`"),
            )),
        }
    }

    /// The records' topic and the offsets' topic (by default named after the connector):
    /// two valid topic names, not the same.
    fn topics(&self, name: &str) -> Result<(String, String), ConfigError> {
        let topic = self.required(Setting::KafkaTopic)?;
        if let Some(problem) = crate::topic_name::problem(&topic) {
            return Err(key_error(
                &Setting::KafkaTopic.name(),
                format!("`{topic}` is not a topic name: it {problem}"),
            ));
        }
        let offset_topic = self
            .text(Setting::OffsetStorageTopic)?
            .unwrap_or_else(|| format!("{name}-offsets"));
        if let Some(problem) = crate::topic_name::problem(&offset_topic) {
            return Err(key_error(
                &Setting::OffsetStorageTopic.name(),
                format!("`{offset_topic}` is not a topic name: it {problem}"),
            ));
        }
        if offset_topic == topic {
            return Err(key_error(
                &Setting::OffsetStorageTopic.name(),
                format!("`{offset_topic}` is kafka.topic: offsets need a topic of their own"),
            ));
        }
        Ok((topic, offset_topic))
    }

    /// The producer's settings (`producer.*`): the delivery guarantee's pinned, the SASL
    /// password read from the variable named, the bootstrap servers required.
    fn producer(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut producer = BTreeMap::new();
        for (key, _) in self
            .config
            .iter()
            .filter(|(k, _)| k.starts_with("producer."))
        {
            let setting = &key["producer.".len()..];
            let value = self.required(key)?;
            if let Some((_, allowed)) = PINNED_PRODUCER.iter().find(|(k, _)| *k == setting)
                && !allowed.contains(&value.as_str())
            {
                return Err(key_error(
                    &Raw::name(key),
                    format!(
                        "must be {} (the connector's delivery guarantee needs it), not `{value}`",
                        allowed.join(" or ")
                    ),
                ));
            }
            match setting {
                // Secrets come from the environment, never the file.
                "sasl.password" => {
                    return Err(key_error(
                        &Raw::name(key),
                        "a password does not belong in the file: put it in an environment variable and name that in config.producer.sasl.password.env",
                    ));
                }
                "sasl.password.env" => {
                    let password = std::env::var(&value).ok().filter(|p| !p.is_empty());
                    let password = password.ok_or_else(|| {
                        key_error(
                            &Raw::name(key),
                            format!(
                                "the variable `{value}` is not set (it holds the SASL password)"
                            ),
                        )
                    })?;
                    producer.insert("sasl.password".to_owned(), password);
                }
                _ => {
                    producer.insert(setting.to_owned(), value);
                }
            }
        }
        if !producer.contains_key("bootstrap.servers") {
            return Err(key_error(
                "config.producer.bootstrap.servers",
                "is required",
            ));
        }
        Ok(producer)
    }

    /// The retry backoff's first and longest waits.
    fn backoff(&self) -> Result<(Duration, Duration), ConfigError> {
        let retry_backoff_initial = self.millis(Setting::HttpRetryBackoffInitialMillis, 500, 1)?;
        let retry_backoff_max = self.millis(Setting::HttpRetryBackoffMaxMillis, 60_000, 1)?;
        if retry_backoff_max < retry_backoff_initial {
            return Err(key_error(
                &Setting::HttpRetryBackoffMaxMillis.name(),
                "must not be less than http.retry.backoff.initial.millis",
            ));
        }
        Ok((retry_backoff_initial, retry_backoff_max))
    }
}

/// Kafka's topic-name rule, also used for connector names.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"name": "c", "config": {
            "http.request.url": "http://127.0.0.1:1/items?after=${offset}",
            "kafka.topic": "items",
            "producer.bootstrap.servers": "127.0.0.1:9092",
        }})
    }

    fn error_of(patch: Value) -> String {
        let mut document = base();
        for (key, value) in patch.as_object().into_iter().flatten() {
            if value.is_null() {
                document["config"].as_object_mut().map(|c| c.remove(key));
            } else {
                document["config"][key] = value.clone();
            }
        }
        match ConnectorConfig::from_value(&document) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn secrets_from_the_environment_never_show_in_debug() {
        // PATH and HOME are set in any test run: their values stand in for the secrets.
        let mut document = base();
        document["config"]["producer.sasl.password.env"] = json!("PATH");
        document["config"]["http.auth.type"] = json!("bearer");
        document["config"]["http.auth.token.env"] = json!("HOME");
        let config = ConnectorConfig::from_value(&document).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{config:?}");
        for secret in [std::env::var("PATH"), std::env::var("HOME")] {
            let secret = secret.unwrap_or_default();
            assert!(!secret.is_empty() && !shown.contains(&secret), "{shown}");
        }
        assert!(
            shown.contains("\"sasl.password\": \"[secret]\"") && shown.contains("Bearer([secret])")
        );
    }

    #[test]
    #[allow(clippy::too_many_lines, reason = "a table of cases")]
    fn each_bad_setting_is_named() {
        let cases = [
            (
                json!({"kafka.topic": null}),
                "config.kafka.topic: is required",
            ),
            (
                json!({"http.request.url": null}),
                "config.http.request.url: is required",
            ),
            (
                json!({"http.request.url": "not a url"}),
                "config.http.request.url: `not a url` is not a URL",
            ),
            (
                json!({"http.request.url": "ftp://h/x"}),
                "config.http.request.url: `ftp://h/x` must be an http:// or https:// URL",
            ),
            (
                json!({"http.response.list.pointer": "topics"}),
                "config.http.response.list.pointer: `topics` is not a JSON pointer",
            ),
            (
                json!({"http.response.record.key.pointer": "name"}),
                "config.http.response.record.key.pointer: `name` is not a JSON pointer",
            ),
            (
                json!({"http.timer.interval.millis": "soon"}),
                "config.http.timer.interval.millis: must be a whole number of milliseconds, not `soon`",
            ),
            (
                json!({"http.request.method": "DELETE"}),
                "config.http.request.method: must be GET or POST",
            ),
            (
                json!({"http.auth.type": "digest"}),
                "config.http.auth.type: must be none, basic or bearer",
            ),
            (
                json!({"http.auth.type": "bearer", "http.auth.token.env": "KAFKA_PLATFORM_UNSET_TOKEN"}),
                "config.http.auth.token.env: the environment variable KAFKA_PLATFORM_UNSET_TOKEN is not set",
            ),
            (
                json!({"http.response.record.offset.type": "timestamp"}),
                "config.http.response.record.offset.type: needs http.response.record.offset.pointer",
            ),
            (
                json!({"http.response.record.offset.pointer": "/id", "http.offset.initial": "x"}),
                "config.http.offset.initial: `x` is not a whole number",
            ),
            (
                json!({"producer.acks": "1"}),
                "config.producer.acks: must be all",
            ),
            (
                json!({"producer.sasl.password": "hunter2"}),
                "config.producer.sasl.password: a password does not belong in the file: put it in an environment variable and name that in config.producer.sasl.password.env",
            ),
            (
                json!({"producer.sasl.password.env": "KAFKA_PLATFORM_UNSET_PASSWORD"}),
                "config.producer.sasl.password.env: the variable `KAFKA_PLATFORM_UNSET_PASSWORD` is not set (it holds the SASL password)",
            ),
            (
                json!({"producer.enable.idempotence": "false"}),
                "config.producer.enable.idempotence: must be true",
            ),
            (
                json!({"producer.bootstrap.servers": null}),
                "config.producer.bootstrap.servers: is required",
            ),
            (
                json!({"http.request.ulr": "x"}),
                "config.http.request.ulr: is not a setting of this connector",
            ),
            (
                json!({"http.request.headers": "Accept"}),
                "config.http.request.headers: `Accept` is not `Name: value`",
            ),
            (
                json!({"kafka.topic": "a b"}),
                "config.kafka.topic: `a b` is not a topic name: it contains ' '",
            ),
            (
                json!({"offset.storage.topic": "items"}),
                "config.offset.storage.topic: `items` is kafka.topic: offsets need a topic of their own",
            ),
            (
                json!({"topic.creation.default.partitions": 0}),
                "config.topic.creation.default.partitions: must be at least 1, not 0",
            ),
            (
                json!({"http.response.max.bytes": "0"}),
                "config.http.response.max.bytes: must be at least 1, not 0",
            ),
            (
                json!({"http.response.max.bytes": "64MB"}),
                "config.http.response.max.bytes: must be a positive whole number, not `64MB`",
            ),
        ];
        for (patch, expected) in cases {
            let error = error_of(patch.clone());
            assert!(
                error.starts_with(expected),
                "{patch}: expected `{expected}…`, got `{error}`"
            );
        }
        assert_eq!(error_of(json!({})), "accepted");
    }

    #[test]
    fn connect_style_values_and_headers_are_read() -> Result<(), ConfigError> {
        let mut document = base();
        document["config"]["http.timer.interval.millis"] = json!("250");
        document["config"]["http.request.timeout.millis"] = json!(1500);
        document["config"]["http.request.headers"] =
            json!("Accept: application/json, X-Team: kafka");
        document["config"]["http.response.next.pointer"] = json!("/next");
        document["config"]["http.response.next.type"] = json!("cursor");
        let config = ConnectorConfig::from_value(&document)?;
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert_eq!(config.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.max_response_bytes, 64 << 20, "the default limit");
        assert_eq!(
            config.headers,
            [
                ("Accept".to_owned(), "application/json".to_owned()),
                ("X-Team".to_owned(), "kafka".to_owned())
            ]
        );
        assert_eq!(
            config.pagination,
            Pagination::Cursor {
                pointer: "/next".to_owned(),
                param: "cursor".to_owned()
            }
        );
        assert_eq!(config.offset_topic, "c-offsets");
        Ok(())
    }

    #[test]
    fn offsets_are_url_encoded_into_the_template() {
        assert_eq!(
            expand_url("http://h/x?since=${offset}", "2026-11-24T10:00:00+01:00"),
            "http://h/x?since=2026-11-24T10%3A00%3A00%2B01%3A00"
        );
        assert_eq!(expand_url("http://h/x", "5"), "http://h/x");
    }
}
