//! The HTTP side: one request with the connector's method, headers and auth; retries with
//! backoff on 429, 5xx, timeouts and connection errors (honouring Retry-After); a page's
//! records and the link to the next page.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;
use yoke::{Yoke, Yokeable};

use super::config::{Auth, ConnectorConfig, Pagination};
use super::offset::{OffsetKind, SourceOffset, timestamp_millis};
use super::scan;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// A 2xx body.
    Body(Vec<u8>),
    /// Worth another try, after `after` if the server said so.
    Retry {
        /// What went wrong.
        reason: String,
        /// The server's Retry-After.
        after: Option<Duration>,
    },
    /// Retrying will not help: the connector fails with this reason.
    Fatal(String),
}

/// The HTTP client of one connector.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    client: reqwest::Client,
}

/// Retry-After: delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            Some(
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            )
        }
    }
}

/// The first line of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl Source {
    /// A client with the connector's headers, auth and request timeout.
    pub(crate) fn new(config: &ConnectorConfig) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            // Both were checked when the configuration was read.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .user_agent(concat!("http-source-connector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// One request.
    pub(crate) async fn attempt(
        &self,
        config: &ConnectorConfig,
        url: &Url,
        offset: &str,
    ) -> Attempt {
        let mut request = self.client.request(config.method.clone(), url.clone());
        if let Some(body) = &config.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.replace("${offset}", offset));
        }
        request = match &config.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() || e.is_redirect() => {
                return Attempt::Fatal(format!(
                    "{config_method} {url}: {e}",
                    config_method = config.method
                ));
            }
            Err(e) => {
                return Attempt::Retry {
                    reason: format!("{} {url}: {}", config.method, error_chain(&e)),
                    after: None,
                };
            }
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let body = match body(response, config.max_response_bytes).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) if status.is_success() => {
                return Attempt::Fatal(format!(
                    "{} {url}: the response is larger than http.response.max.bytes ({} bytes): ask the source for smaller pages or raise the limit",
                    config.method, config.max_response_bytes
                ));
            }
            // An error's status says what to do; its body would only be quoted.
            Err(BodyError::TooLarge) => Vec::new(),
            Err(BodyError::Read(e)) => {
                return Attempt::Retry {
                    reason: format!(
                        "{} {url}: reading the body: {}",
                        config.method,
                        error_chain(&e)
                    ),
                    after: None,
                };
            }
        };
        if status.is_success() {
            Attempt::Body(body)
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry {
                reason: format!("{} {url}: HTTP {status}: {}", config.method, excerpt(&body)),
                after,
            }
        } else {
            Attempt::Fatal(format!(
                "{} {url}: HTTP {status}: {}",
                config.method,
                excerpt(&body)
            ))
        }
    }
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Room reserved up front for a body at most (a larger one grows as it arrives): a
/// `Content-Length` the source gets wrong allocates no more than this.
const RESERVE_AT_MOST: u64 = 16 << 20;

/// Why a response's body was not read.
enum BodyError {
    /// It is longer than the limit: refused by its `Content-Length`, or once that much came.
    TooLarge,
    Read(reqwest::Error),
}

/// A response's body of at most `limit` bytes, its chunks copied once into one buffer sized
/// by `Content-Length`.
async fn body(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let length = response.content_length().unwrap_or(0);
    if length > limit {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(usize::try_from(length.min(RESERVE_AT_MOST)).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One record, ready to produce, borrowing its value from the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// Key bytes: a string key as is, anything else as JSON.
    pub(crate) key: Option<Cow<'a, [u8]>>,
    /// The record's JSON, as the source sent it.
    pub(crate) value: &'a [u8],
    /// Its source offset.
    pub(crate) offset: Option<SourceOffset>,
    /// Its Kafka timestamp (epoch milliseconds).
    pub(crate) timestamp: Option<i64>,
}

/// A page: its records and where the next page is.
#[derive(Debug, Yokeable)]
pub(crate) struct Page<'a> {
    /// The records, in the order the source gave them.
    pub(crate) records: Vec<Record<'a>>,
    /// The number of items in the response's list.
    pub(crate) items: usize,
    /// The next page of this poll, if any.
    pub(crate) next: Option<Url>,
}

/// The values at JSON pointers (RFC 6901, each empty or starting with `/`) inside raw JSON,
/// in one pass over each object or array on the way: their other members are skipped, not
/// built. `None` where there is nothing (or null), or `node` is not valid JSON.
fn walk<'a, const N: usize>(
    node: &'a RawValue,
    pointers: [Option<&str>; N],
) -> [Option<&'a RawValue>; N] {
    walk_text(node.get(), pointers, None).map_or([None; N], |(found, _)| found)
}

/// [`walk`] over JSON text, which this pass also checks: the error is where it is not JSON.
/// Where pointer `split` names a member of the document itself, its value is read as the
/// elements of a list in the same pass (and not returned as raw JSON).
fn walk_text<'a, const N: usize>(
    text: &'a str,
    pointers: [Option<&str>; N],
    split: Option<usize>,
) -> Result<([Option<&'a RawValue>; N], Option<Elements<'a>>), serde_json::Error> {
    // Each pointer's first token (unescaped) and the rest of it; `None` for the empty pointer.
    let steps = pointers.map(|pointer| {
        pointer.map(|pointer| {
            let rest = pointer.strip_prefix('/')?;
            let (token, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let token: Cow<'_, str> = if token.contains('~') {
                Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(token)
            };
            Some((token, rest))
        })
    });
    let tokens: [Option<&str>; N] = std::array::from_fn(|i| match &steps[i] {
        Some(Some((token, _))) => Some(token.as_ref()),
        _ => None,
    });
    // The whole document, where a pointer is empty.
    let whole: Option<&'a RawValue> = if steps.iter().any(|step| matches!(step, Some(None))) {
        Some(serde_json::from_str(text)?)
    } else {
        None
    };
    let split = split.filter(|i| matches!(&steps[*i], Some(Some((_, "")))));
    let (found, elements) = if tokens.iter().all(Option::is_none) {
        if whole.is_none() {
            // Nothing to find: still say whether it is JSON.
            serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        }
        ([None; N], None)
    } else {
        let mut parser = serde_json::Deserializer::from_str(text);
        let found =
            serde::de::DeserializeSeed::deserialize(Members { tokens, split }, &mut parser)?;
        parser.end()?;
        found
    };
    let found = std::array::from_fn(|i| {
        let value = match &steps[i] {
            None => None,
            Some(None) => whole,
            Some(Some((_, ""))) => found[i],
            Some(Some((_, rest))) => {
                let [value] = walk(found[i]?, [Some(*rest)]);
                value
            }
        };
        value.filter(|value| value.get() != "null")
    });
    Ok((found, elements))
}

/// What a pointer split by [`walk_text`] found.
enum Elements<'a> {
    /// A list: its elements, as raw JSON.
    List(Vec<&'a RawValue>),
    /// Null: nothing.
    Null,
    /// Something else.
    Other,
}

/// Reads a value as [`Elements`].
struct ElementsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ElementsSeed {
    type Value = Elements<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ElementsSeed {
    type Value = Elements<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            elements.push(element);
        }
        Ok(Elements::List(elements))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Elements::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Elements::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Elements::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Elements::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Elements::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Elements::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Elements::Other)
    }
}

/// One step of several JSON pointers at once: for each token, the member of that name of
/// an object or the element at that index of an array, as raw JSON borrowed from the
/// document (`None` for a token that is itself `None`); the member token `split` names, when
/// no other token wants it, as [`Elements`] instead.
struct Members<'t, const N: usize> {
    tokens: [Option<&'t str>; N],
    split: Option<usize>,
}

impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for Members<'_, N> {
    type Value = ([Option<&'de RawValue>; N], Option<Elements<'de>>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const N: usize> serde::de::Visitor<'de> for Members<'_, N> {
    type Value = ([Option<&'de RawValue>; N], Option<Elements<'de>>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut found, mut elements) = ([None; N], None);
        while let Some(MemberName(name)) = map.next_key()? {
            let wanted: [bool; N] = std::array::from_fn(|i| {
                let pending = if Some(i) == self.split {
                    elements.is_none()
                } else {
                    found[i].is_none()
                };
                pending && self.tokens[i] == Some(&*name)
            });
            let others = wanted
                .iter()
                .enumerate()
                .any(|(i, wanted)| *wanted && Some(i) != self.split);
            match self.split {
                Some(split) if wanted[split] && !others => {
                    elements = Some(map.next_value_seed(ElementsSeed)?);
                }
                _ if wanted.contains(&true) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    for (slot, _) in found.iter_mut().zip(wanted).filter(|(_, wanted)| *wanted) {
                        *slot = Some(value);
                    }
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((found, elements))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let indices = self
            .tokens
            .map(|token| token.and_then(|t| t.parse::<usize>().ok()));
        let mut found = [None; N];
        for at in 0.. {
            if indices.contains(&Some(at)) {
                let Some(element) = seq.next_element::<&'de RawValue>()? else {
                    break;
                };
                for (slot, _) in found
                    .iter_mut()
                    .zip(indices)
                    .filter(|(_, i)| *i == Some(at))
                {
                    *slot = Some(element);
                }
            } else if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                break;
            }
        }
        Ok((found, None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(([None; N], None))
    }
}

/// A member's name, borrowed from the document unless it has escapes (serde's own `Cow`
/// always copies).
struct MemberName<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(MemberNameVisitor)
    }
}

struct MemberNameVisitor;

impl<'de> serde::de::Visitor<'de> for MemberNameVisitor {
    type Value = MemberName<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(MemberName(Cow::Borrowed(name)))
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(MemberName(Cow::Owned(name.to_owned())))
    }
}

/// The value a record's pointer found (raw JSON), parsed; an error naming the record when
/// there is none.
fn field(
    found: Option<&str>,
    (item, index): (&str, usize),
    pointer: &str,
    what: &str,
) -> Result<Value, String> {
    let found = found.ok_or_else(|| {
        format!(
            "record {index} has no {what} at `{pointer}`: {}",
            excerpt(item.as_bytes())
        )
    })?;
    serde_json::from_str(found).map_err(|e| format!("record {index}: {what} at `{pointer}`: {e}"))
}

/// A record's key (raw JSON): a string as its text (borrowed unless it has escapes),
/// anything else as its JSON.
fn key_bytes<'a>(
    found: Option<&'a str>,
    (item, index): (&str, usize),
    pointer: &str,
) -> Result<Cow<'a, [u8]>, String> {
    if let Some(text) = found.filter(|found| found.starts_with('"')) {
        // Checked JSON: a string without a backslash is its text between the quotes.
        if !text.contains('\\') {
            let inner = text.get(1..text.len() - 1).unwrap_or_default();
            return Ok(Cow::Borrowed(inner.as_bytes()));
        }
        let key: String = serde_json::from_str(text)
            .map_err(|e| format!("record {index}: key at `{pointer}`: {e}"))?;
        return Ok(Cow::Owned(key.into_bytes()));
    }
    Ok(Cow::Owned(
        field(found, (item, index), pointer, "key")?
            .to_string()
            .into_bytes(),
    ))
}

/// The text of the next link or cursor found at `pointer`: none when absent, null or empty;
/// a number is taken as its digits where `numbers` allows it; anything else is an error
/// naming `what`.
fn next_value(
    found: Option<&str>,
    pointer: &str,
    (what, numbers): (&str, bool),
    url: &Url,
) -> Result<Option<String>, String> {
    match found.and_then(|v| serde_json::from_str::<Value>(v).ok()) {
        None => Ok(None),
        Some(Value::String(text)) => Ok((!text.is_empty()).then_some(text)),
        Some(Value::Number(number)) if numbers => Ok(Some(number.to_string())),
        Some(other) => Err(format!(
            "{what} at `{pointer}` from {url} is not a string: {other}"
        )),
    }
}

/// Why a body from `url` is not JSON.
fn malformed(url: &Url, body: &[u8], error: &dyn std::fmt::Display) -> String {
    format!("malformed JSON from {url}: {error}: {}", excerpt(body))
}

/// A page read by the general reader: any pointers, and the error where the body is not a
/// page.
fn parts<'a>(
    config: &ConnectorConfig,
    url: &Url,
    body: &'a [u8],
    text: &'a str,
    (next_pointer, fields): (Option<&str>, [Option<&str>; 3]),
) -> Result<scan::Scanned<'a>, String> {
    let malformed = |e: &dyn std::fmt::Display| malformed(url, body, e);
    // One pass over the document checks it, finds the next page and (where the list is a
    // member of the document) reads the list's elements.
    let ([list, found_next], elements) = walk_text(
        text,
        [Some(config.list_pointer.as_str()), next_pointer],
        Some(0),
    )
    .map_err(|e| malformed(&e))?;
    let missing = || {
        format!(
            "the response from {url} has no `{}`: {}",
            config.list_pointer,
            excerpt(body)
        )
    };
    let not_a_list = |list: &RawValue| {
        format!(
            "`{}` in the response from {url} is not a list: {}",
            config.list_pointer,
            excerpt(list.get().as_bytes())
        )
    };
    let items: Vec<&RawValue> = match (elements, list) {
        (Some(Elements::List(items)), _) => items,
        (Some(Elements::Null), _) | (None, None) => return Err(missing()),
        (Some(Elements::Other), _) => {
            // Found again as raw JSON, to show it.
            let ([list], _) = walk_text(text, [Some(config.list_pointer.as_str())], None)
                .map_err(|e| malformed(&e))?;
            return Err(list.map_or_else(missing, not_a_list));
        }
        (None, Some(list)) => serde_json::from_str(list.get()).map_err(|_| not_a_list(list))?,
    };
    let records = items
        .into_iter()
        .map(|item| (item.get(), walk(item, fields).map(|v| v.map(RawValue::get))))
        .collect();
    Ok(scan::Scanned {
        records,
        next: found_next.map(RawValue::get),
    })
}

/// Reads a response body into records; the error is why the connector fails. Records keep
/// the bytes the source sent; only the parts the pointers name are parsed, each object on
/// the way read once for all of them: in a page of the common shape by one pass of
/// [`scan`], checking the JSON and building nothing, otherwise by the general reader.
pub(crate) fn page<'a>(
    config: &ConnectorConfig,
    url: &Url,
    body: &'a [u8],
) -> Result<Page<'a>, String> {
    let text = std::str::from_utf8(body).map_err(|e| malformed(url, body, &e))?;
    let next_pointer = match &config.pagination {
        Pagination::None => None,
        Pagination::Link { pointer } | Pagination::Cursor { pointer, .. } => Some(pointer.as_str()),
    };
    let offset_pointer = config.offset.as_ref().map(|spec| spec.pointer.as_str());
    let fields = [
        config.key_pointer.as_deref(),
        offset_pointer,
        config.timestamp_pointer.as_deref(),
    ];
    let scan::Scanned {
        records: items,
        next: found_next,
    } = match scan::page(text, &config.list_pointer, next_pointer, fields) {
        Some(scanned) => scanned,
        None => parts(config, url, body, text, (next_pointer, fields))?,
    };
    let next = next_url(config, found_next, url)?;
    let count = items.len();
    let mut records = Vec::with_capacity(count);
    for (index, (item, found)) in items.into_iter().enumerate() {
        records.push(record(config, url, (item, index), found)?);
    }
    Ok(Page {
        records,
        items: count,
        next,
    })
}

/// Where the next page is, as the pagination finds it in this one.
fn next_url(
    config: &ConnectorConfig,
    found_next: Option<&str>,
    url: &Url,
) -> Result<Option<Url>, String> {
    let next = match &config.pagination {
        Pagination::None => None,
        Pagination::Link { pointer } => next_value(found_next, pointer, ("next link", false), url)?
            .map(|link| {
                url.join(&link)
                    .map_err(|e| format!("next link `{link}` from {url} is not a URL: {e}"))
            })
            .transpose()?,
        Pagination::Cursor { pointer, param } => {
            next_value(found_next, pointer, ("next cursor", true), url)?
                .map(|cursor| with_query(url, param, &cursor))
        }
    };
    Ok(next)
}

/// One item of a page as a record: its key, offset and timestamp read from the parts the
/// pointers found (`[key, offset, timestamp]`).
fn record<'a>(
    config: &ConnectorConfig,
    url: &Url,
    (item, index): (&'a str, usize),
    [key, offset, timestamp]: [Option<&'a str>; 3],
) -> Result<Record<'a>, String> {
    let at = (item, index);
    let key = match &config.key_pointer {
        None => None,
        Some(pointer) => Some(key_bytes(key, at, pointer)?),
    };
    let offset = match &config.offset {
        None => None,
        // A whole number read as it is: the common incrementing offset, in no JSON value.
        Some(spec)
            if spec.kind == OffsetKind::Incrementing
                && let Some(number) = offset.and_then(|n| n.parse().ok()) =>
        {
            Some(SourceOffset::number(number))
        }
        Some(spec) => Some(
            SourceOffset::parse(spec.kind, &field(offset, at, &spec.pointer, "offset")?).map_err(
                |e| {
                    format!(
                        "record {index} from {url}: offset at `{}`: {e}",
                        spec.pointer
                    )
                },
            )?,
        ),
    };
    let timestamp = match &config.timestamp_pointer {
        None => None,
        Some(pointer) => {
            let value = field(timestamp, at, pointer, "timestamp")?;
            Some(timestamp_millis(&value).ok_or_else(|| {
                format!("record {index} from {url}: timestamp at `{pointer}` is neither epoch milliseconds nor an RFC 3339 time: {value}")
            })?)
        }
    };
    Ok(Record {
        key,
        value: item.as_bytes(),
        offset,
        timestamp,
    })
}

/// A page read into records that owns its body: what the fetching task hands the producing
/// one. The records borrow from the body they were read from, as [`page`] gives them.
#[derive(Debug)]
pub(crate) struct FetchedPage(Yoke<Page<'static>, Vec<u8>>);

impl FetchedPage {
    /// [`page`], keeping the body.
    pub(crate) fn read(config: &ConnectorConfig, url: &Url, body: Vec<u8>) -> Result<Self, String> {
        Yoke::try_attach_to_cart(body, |body| page(config, url, body)).map(Self)
    }

    /// The page: its records, borrowing from the body.
    pub(crate) fn page(&self) -> &Page<'_> {
        self.0.get()
    }
}

/// `url` with the query parameter `param` set to `value` (replacing any earlier one).
fn with_query(url: &Url, param: &str, value: &str) -> Url {
    let mut next = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(param, value);
    next
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A connector configuration for the tests: a paged list of records keyed and offset by
    /// `/id`, with `extra` keys set over it.
    pub(in crate::http_source) fn config(extra: Value) -> ConnectorConfig {
        let mut document = json!({"name": "c", "config": {
            "http.request.url": "http://127.0.0.1:1/items",
            "kafka.topic": "items",
            "producer.bootstrap.servers": "127.0.0.1:9092",
            "http.response.list.pointer": "/items",
            "http.response.record.key.pointer": "/id",
            "http.response.record.offset.pointer": "/id",
        }});
        for (k, v) in extra.as_object().into_iter().flatten() {
            document["config"][k] = v.clone();
        }
        match ConnectorConfig::from_value(&document) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    fn url() -> Url {
        match Url::parse("http://127.0.0.1:1/items?limit=2") {
            Ok(url) => url,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn records_are_keyed_and_offset_and_the_next_page_is_found() -> Result<(), String> {
        let config = config(
            json!({"http.response.next.pointer": "/next", "http.response.next.type": "cursor"}),
        );
        let body = br#"{"items":[{"id":7,"v":"a"},{"id":8,"v":"b"}],"next":"abc"}"#;
        let page = page(&config, &url(), body)?;
        assert_eq!(page.items, 2);
        assert_eq!(page.records[0].key.as_deref(), Some(&b"7"[..]));
        assert_eq!(page.records[1].value, br#"{"id":8,"v":"b"}"#);
        assert_eq!(
            page.next.map(String::from).as_deref(),
            Some("http://127.0.0.1:1/items?limit=2&cursor=abc")
        );
        Ok(())
    }

    #[test]
    fn a_fetched_page_owns_its_body_and_gives_the_records_page_reads() -> Result<(), String> {
        let config = config(json!({"http.response.record.key.pointer": "/k"}));
        let body =
            br#"{"items":[{"id":1,"k":"plain"},{"id":2,"k":"tab\there"},{"id":3,"k":{"a":1}}]}"#;
        let read = page(&config, &url(), body)?.records;
        let fetched = FetchedPage::read(&config, &url(), body.to_vec())?;
        assert_eq!(fetched.page().items, 3);
        assert_eq!(fetched.page().records, read);
        Ok(())
    }

    #[test]
    fn a_relative_next_link_resolves_against_the_request() -> Result<(), String> {
        let config = config(json!({"http.response.next.pointer": "/links/next"}));
        let body = br#"{"items":[],"links":{"next":"/items?page=2"}}"#;
        let page = page(&config, &url(), body)?;
        assert_eq!(
            page.next.map(String::from).as_deref(),
            Some("http://127.0.0.1:1/items?page=2")
        );
        Ok(())
    }

    /// The list is read in the pass over the document where it is a member of it, and found
    /// the same wherever the pointer leads (nested, the whole document, a member the next
    /// link's pointer also passes through).
    #[test]
    fn lists_are_found_at_any_pointer() -> Result<(), String> {
        let values = |config: &ConnectorConfig, body: &[u8]| -> Result<Vec<String>, String> {
            let page = page(config, &url(), body)?;
            Ok(page
                .records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value).into_owned())
                .collect())
        };
        let next = |config: &ConnectorConfig, body: &[u8]| -> Result<Option<String>, String> {
            Ok(page(config, &url(), body)?.next.map(String::from))
        };
        let top = config(json!({}));
        assert_eq!(
            values(
                &top,
                br#"{"next":1,"items":[{"id":1},{"id":2}],"items":[{"id":3}]}"#
            )?,
            [r#"{"id":1}"#, r#"{"id":2}"#],
            "the first of two members of the same name, as for every pointer"
        );
        let nested = config(json!({
            "http.response.list.pointer": "/data/items",
            "http.response.next.pointer": "/data/next",
            "http.response.next.type": "cursor",
        }));
        let body = br#"{"data":{"items":[{"id":1}],"next":"n2"}}"#;
        assert_eq!(values(&nested, body)?, [r#"{"id":1}"#]);
        assert_eq!(
            next(&nested, body)?.as_deref(),
            Some("http://127.0.0.1:1/items?limit=2&cursor=n2")
        );
        let whole = config(json!({"http.response.list.pointer": ""}));
        assert_eq!(values(&whole, br#"[{"id":1}, {"id":2}]"#)?.len(), 2);
        let shared = config(json!({
            "http.response.list.pointer": "/page",
            "http.response.next.pointer": "/page/1/next",
            "http.response.next.type": "link",
        }));
        let body = br#"{"page":[{"id":1},{"id":2,"next":"/more"}]}"#;
        assert_eq!(values(&shared, body)?.len(), 2);
        assert_eq!(
            next(&shared, body)?.as_deref(),
            Some("http://127.0.0.1:1/more")
        );
        for (body, expected) in [
            (&br#"{"items":null}"#[..], "has no `/items`"),
            (br#"{"items":"abc"}"#, "is not a list: \"abc\""),
        ] {
            match page(&top, &url(), body) {
                Ok(_) => panic!("accepted {}", String::from_utf8_lossy(body)),
                Err(e) => assert!(e.contains(expected), "expected `…{expected}…`, got `{e}`"),
            }
        }
        Ok(())
    }

    #[test]
    fn bad_responses_say_what_is_wrong() {
        let config = config(json!({}));
        let cases: [(&[u8], &str); 4] = [
            (
                b"{\"items\": [",
                "malformed JSON from http://127.0.0.1:1/items?limit=2",
            ),
            (
                br#"{"data":[]}"#,
                "the response from http://127.0.0.1:1/items?limit=2 has no `/items`",
            ),
            (
                br#"{"items":{"id":1}}"#,
                "`/items` in the response from http://127.0.0.1:1/items?limit=2 is not a list",
            ),
            (
                br#"{"items":[{"id":1},{"name":"x"}]}"#,
                "record 1 has no key at `/id`",
            ),
        ];
        for (body, expected) in cases {
            match page(&config, &url(), body) {
                Ok(_) => panic!("accepted {}", String::from_utf8_lossy(body)),
                Err(e) => assert!(e.starts_with(expected), "expected `{expected}…`, got `{e}`"),
            }
        }
    }

    #[test]
    fn pointers_reach_members_and_elements_in_one_pass() {
        let document: &RawValue = match serde_json::from_str(
            // A member name with an escape (`\u0065` is `e`) is matched by what it says.
            r#"{"a":{"b":[10,{"c~/d":"x"},null]},"\u0065":"y","a/b":1,"f":null}"#,
        ) {
            Ok(document) => document,
            Err(e) => panic!("{e}"),
        };
        let found = walk(
            document,
            [
                Some("/a/b/0"),
                Some("/a/b/1/c~0~1d"),
                Some("/e"),
                Some("/a~1b"),
                Some(""),
                Some("/a/b/2"),
                Some("/f"),
                Some("/a/b/9"),
                Some("/e/x"),
                None,
            ],
        );
        let texts: Vec<Option<&str>> = found.iter().map(|v| v.map(RawValue::get)).collect();
        assert_eq!(
            texts,
            [
                Some("10"),
                Some(r#""x""#),
                Some(r#""y""#),
                Some("1"),
                Some(document.get()),
                None,
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn keys_are_borrowed_text_or_json() -> Result<(), String> {
        let config = config(json!({"http.response.record.key.pointer": "/k"}));
        let body = br#"{"items":[{"id":1,"k":"plain"},{"id":2,"k":"a\"b"},{"id":3,"k":{"x":1}}]}"#;
        let page = page(&config, &url(), body)?;
        let keys: Vec<_> = page.records.iter().map(|r| r.key.clone()).collect();
        assert!(matches!(keys[0], Some(Cow::Borrowed(b"plain"))));
        assert_eq!(keys[1].as_deref(), Some(&b"a\"b"[..]));
        assert_eq!(keys[2].as_deref(), Some(&br#"{"x":1}"#[..]));
        Ok(())
    }

    /// A random JSON text for [`the_one_pass_reader_finds_what_the_general_one_does`]: the
    /// names the pointers look for among others, escapes, numbers of every form, nesting,
    /// spacing.
    fn random_json(rng: &mut rand::rngs::StdRng, depth: usize) -> String {
        use rand::Rng;
        let space = |rng: &mut rand::rngs::StdRng| [" ", "", "\n ", "\t"][rng.random_range(0..4)];
        match rng.random_range(0..if depth > 3 { 5 } else { 8 }) {
            0 => ["true", "false", "null"][rng.random_range(0..3)].to_owned(),
            1 => ["0", "-12", "3.25", "1e9", "-0.5E-3", "7"][rng.random_range(0..6)].to_owned(),
            2 => [
                "\"k1\"",
                "\"a\\\"b\"",
                "\"\\u00e9té\"",
                "\"\"",
                "\"2024-01-02T03:04:05Z\"",
            ][rng.random_range(0..5)]
            .to_owned(),
            3 | 4 => rng.random_range(0..1_000_000).to_string(),
            5 => {
                let n = rng.random_range(0..4);
                let elements: Vec<String> = (0..n).map(|_| random_json(rng, depth + 1)).collect();
                format!(
                    "[{}{}]",
                    space(rng),
                    elements.join(&format!(",{}", space(rng)))
                )
            }
            _ => random_object(rng, depth),
        }
    }

    /// A random JSON object, as [`random_json`] makes them.
    fn random_object(rng: &mut rand::rngs::StdRng, depth: usize) -> String {
        use rand::Rng;
        let names = [
            "items", "next", "id", "k", "ts", "x", "id", "k", "ts", "i\\u0064",
        ];
        let members: Vec<String> = (0..rng.random_range(0..5))
            .map(|_| {
                format!(
                    "{}\"{}\"{}:{}",
                    [" ", ""][rng.random_range(0..2)],
                    names[rng.random_range(0..names.len())],
                    ["", " "][rng.random_range(0..2)],
                    random_json(rng, depth + 1)
                )
            })
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// Seeded: the one pass over a page of the common shape finds exactly what the general
    /// reader does, and declines (for the general reader to say what is wrong) everything
    /// that reader refuses — pages, random documents, and both with a byte cut or added.
    #[test]
    fn the_one_pass_reader_finds_what_the_general_one_does() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let config = config(json!({
            "http.response.record.key.pointer": "/k",
            "http.response.record.timestamp.pointer": "/ts",
            "http.response.next.pointer": "/next",
            "http.response.next.type": "cursor",
        }));
        let (next, fields) = (Some("/next"), [Some("/k"), Some("/id"), Some("/ts")]);
        const CASES: usize = 20_000;
        let mut scanned = 0;
        for case in 0..CASES {
            let mut text = if case % 2 == 0 {
                let records: Vec<String> = (0..rng.random_range(0..4))
                    .map(|_| random_object(&mut rng, 1))
                    .collect();
                format!(
                    "{{\"a\":{}, \"items\" : [{}],\"next\":{} }}",
                    random_json(&mut rng, 1),
                    records.join(","),
                    random_json(&mut rng, 1)
                )
            } else {
                random_json(&mut rng, 0)
            };
            if rng.random_bool(0.3) && !text.is_empty() {
                let mut at = rng.random_range(0..text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                if rng.random_bool(0.5) {
                    text.remove(at);
                } else {
                    text.insert(
                        at,
                        ['{', '"', ',', ']', '0', '\\', '\u{1}'][rng.random_range(0..7)],
                    );
                }
            }
            let general = parts(&config, &url(), text.as_bytes(), &text, (next, fields));
            if let Some(one_pass) = scan::page(&text, "/items", next, fields) {
                scanned += 1;
                match general {
                    Ok(general) => {
                        assert_eq!(one_pass.records, general.records, "records of {text}");
                        assert_eq!(one_pass.next, general.next, "next of {text}");
                    }
                    Err(e) => panic!(
                        "the one pass accepted what the general reader refuses ({e}): {text}"
                    ),
                }
            }
        }
        // Most pages of the common shape are read in the one pass (those with escaped member
        // names among the records' are not).
        assert!(scanned * 4 > CASES, "{scanned} of {CASES} read in one pass");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
