//! The HTTP source connector against a local paged HTTP source (an axum server on a loopback
//! port) and the test broker (Apache Kafka; `KAFKA_BOOTSTRAP_SERVERS` names it). Every test
//! uses its own connector, topic and offset-topic names.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use services::http_source::{self, Connector, ConnectorConfig, State as ConnectorState};
use tower::ServiceExt;

mod common;
#[path = "support/kafka.rs"]
mod kafka;
use common::{assert_exports_service_metrics, bootstrap, unique};

/// Item `id` of the source: five keys, a sequence number per item, a timestamp.
fn item(id: u64) -> Value {
    json!({
        "id": id,
        "key": format!("k{}", id % 5),
        "seq": id,
        "at": 1_795_514_400_000_u64 + id * 1000,
    })
}

/// A paged source: `GET /items?after=<id>&limit=<n>[&cursor=<id>]` gives the items after
/// the cursor (or `after`) among the first `visible`, and `next` while more are visible.
#[derive(Default)]
struct Feed {
    visible: AtomicU64,
    /// The next this many requests answer 500 (odd) or 429 (even).
    failing: AtomicUsize,
    /// The next this many requests take 2 s to answer.
    slow: AtomicUsize,
    /// From this request number on (1-based; 0: never), every request answers 500.
    failing_from: AtomicUsize,
    malformed: AtomicBool,
    requests: AtomicUsize,
    delay_ms: AtomicU64,
    /// The highest item id served so far.
    served: AtomicU64,
    /// Requests that asked for items past the end (the connector caught up).
    caught_up: AtomicUsize,
    token: Option<&'static str>,
}

async fn items(
    State(feed): State<Arc<Feed>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let number = feed.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let failing_from = feed.failing_from.load(Ordering::SeqCst);
    if failing_from > 0 && number >= failing_from {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down for maintenance").into_response();
    }
    if let Some(token) = feed.token {
        let expected = format!("Bearer {token}");
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(&expected)
        {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let delay = feed.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let slow = feed.slow.load(Ordering::SeqCst);
    if slow > 0 {
        feed.slow.store(slow - 1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let failing = feed.failing.load(Ordering::SeqCst);
    if failing > 0 {
        feed.failing.store(failing - 1, Ordering::SeqCst);
        return if failing % 2 == 1 {
            (StatusCode::INTERNAL_SERVER_ERROR, "database on fire").into_response()
        } else {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "0")],
                "slow down",
            )
                .into_response()
        };
    }
    if feed.malformed.load(Ordering::SeqCst) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"items": [{"id": 1,"#,
        )
            .into_response();
    }
    let number = |name: &str, default: u64| {
        query
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let start = query
        .get("cursor")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| number("after", 0));
    let visible = feed.visible.load(Ordering::SeqCst);
    let end = (start + number("limit", 10)).min(visible);
    if start >= visible {
        feed.caught_up.fetch_add(1, Ordering::SeqCst);
    }
    feed.served.fetch_max(end, Ordering::SeqCst);
    let page: Vec<Value> = (start + 1..=end).map(item).collect();
    let next = (end < visible).then(|| end.to_string());
    Json(json!({"items": page, "next": next})).into_response()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn feed(visible: u64, token: Option<&'static str>) -> (Arc<Feed>, SocketAddr) {
    let feed = Arc::new(Feed {
        visible: AtomicU64::new(visible),
        token,
        ..Feed::default()
    });
    let app = axum::Router::new()
        .route("/items", axum::routing::get(items))
        .with_state(Arc::clone(&feed));
    let address = serve(app).await;
    (feed, address)
}

/// A connector reading the feed at `address` into `topic`, 37 items a page, cursor paging.
fn config(name: &str, topic: &str, address: SocketAddr) -> Value {
    json!({"name": name, "config": {
        "http.request.url": format!("http://{address}/items?after=${{offset}}&limit=37"),
        "http.offset.initial": "0",
        "http.timer.interval.millis": "100",
        "http.retry.backoff.initial.millis": "20",
        "http.retry.backoff.max.millis": "200",
        "http.response.list.pointer": "/items",
        "http.response.record.key.pointer": "/key",
        "http.response.record.offset.pointer": "/id",
        "http.response.record.timestamp.pointer": "/at",
        "http.response.next.pointer": "/next",
        "http.response.next.type": "cursor",
        "kafka.topic": topic,
        "topic.creation.default.partitions": "3",
        "topic.creation.default.replication.factor": "1",
        "offset.storage.topic": format!("{topic}-offsets"),
        "offset.storage.replication.factor": "1",
        "producer.bootstrap.servers": bootstrap(),
    }})
}

fn connector(config: &Value) -> Arc<Connector> {
    let config = ConnectorConfig::from_value(config).unwrap();
    Connector::new(config, Duration::from_secs(5)).unwrap()
}

/// Polls `check` until it is true, for at most `limit`; whether it became true.
async fn wait_until<F: Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    while !check().await {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Polls `check` until it is true; fails the test after `limit`.
async fn eventually<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    check: impl FnMut() -> F,
) {
    assert!(
        wait_until(limit, check).await,
        "timed out waiting until {what}"
    );
}

/// Runs a connector on `config` until it committed `offset`, then stops it.
async fn run_until_committed(config: &Value, offset: &str, limit: Duration) {
    let connector = connector(config);
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, offset, limit).await;
    connector.stop();
    running.await.unwrap();
}

/// Waits until `connector` failed; why it did.
async fn failure(connector: &Connector, limit: Duration) -> String {
    eventually("the connector failed", limit, || {
        let failed = connector.status().state == ConnectorState::Failed;
        async move { failed }
    })
    .await;
    connector
        .status()
        .trace
        .expect("a failed connector says why in its trace")
}

fn committed_offset(connector: &Connector) -> Option<String> {
    connector.committed().and_then(|stored| stored.offset)
}

/// Waits until `connector` committed `offset`.
async fn wait_committed(connector: &Connector, offset: &str, limit: Duration) {
    eventually(&format!("offset {offset} is committed"), limit, || {
        let done = committed_offset(connector).as_deref() == Some(offset);
        async move { done }
    })
    .await;
}

/// One record as read back: partition, key, value.
type Read = (i32, String, Value, Option<i64>);

/// Every record of `topic`, in log order per partition, read until the broker says
/// end-of-partition.
fn read_topic(topic: &str) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    let mut assignment = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
        open.insert(partition.id());
    }
    let mut records = Vec::new();
    if open.is_empty() {
        return records;
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} timed out: {} records, partitions without end {open:?}",
            records.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            Some(Ok(message)) => records.push((
                message.partition(),
                String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
                serde_json::from_slice(message.payload().unwrap()).unwrap(),
                message.timestamp().to_millis(),
            )),
        }
    }
    records
}

fn feed_served(feed: &Feed) -> u64 {
    feed.served.load(Ordering::SeqCst)
}

/// Every item 1..=n is in the topic exactly once, under its key, in order per key.
fn assert_exactly_once(records: &[Read], n: u64) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, _, value, _) in records {
        *seen.entry(value["id"].as_u64().unwrap()).or_default() += 1;
    }
    let missing: Vec<u64> = (1..=n)
        .filter(|id| !seen.contains_key(id))
        .take(20)
        .collect();
    let twice: Vec<(&u64, &usize)> = seen.iter().filter(|(_, c)| **c > 1).take(20).collect();
    let other: Vec<&u64> = seen
        .keys()
        .filter(|id| !(1..=n).contains(*id))
        .take(20)
        .collect();
    assert!(
        missing.is_empty() && twice.is_empty() && other.is_empty(),
        "{} records for {n} items; missing (first 20): {missing:?}; more than once: {twice:?}; unknown: {other:?}",
        records.len()
    );
    let mut last_seq: BTreeMap<&str, (i32, u64)> = BTreeMap::new();
    for (partition, key, value, _) in records {
        assert_eq!(key, value["key"].as_str().unwrap(), "keyed by /key");
        let seq = value["seq"].as_u64().unwrap();
        if let Some((p, previous)) = last_seq.insert(key, (*partition, seq)) {
            assert_eq!(p, *partition, "one key, one partition");
            assert!(seq > previous, "{key}: {seq} after {previous}");
        }
    }
}

async fn call(connector: &Arc<Connector>, method: &str, uri: &str) -> (StatusCode, Value, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = http_source::router(Arc::clone(connector), "test:8084")
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    )
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{line_start}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_arrives_once_keyed_in_order_per_key_and_a_restart_adds_no_duplicates() {
    let (feed, address) = feed(1000, None).await;
    let (name, topic) = (unique("e2e"), unique("e2e-items"));
    let document = config(&name, &topic, address);
    let first = connector(&document);
    let running = tokio::spawn(Arc::clone(&first).run());
    wait_committed(&first, "1000", Duration::from_secs(60)).await;

    let (status, body, _) = call(&first, "GET", "/connectors").await;
    assert_eq!((status, body), (StatusCode::OK, json!([name])));
    let (status, body, _) = call(&first, "GET", &format!("/connectors/{name}/status")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["connector"]["state"], "RUNNING", "{body}");
    assert_eq!(body["tasks"][0]["state"], "RUNNING", "{body}");
    assert_eq!(body["type"], "source");
    let (status, body, _) = call(&first, "GET", "/connectors/nope/status").await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let (_, offsets, _) = call(&first, "GET", &format!("/connectors/{name}/offsets")).await;
    assert_eq!(
        offsets["offsets"][0]["offset"]["offset"], "1000",
        "{offsets}"
    );

    let (status, _, metrics) = call(&first, "GET", "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_exports_service_metrics("http-source-connector", &metrics);
    let labels = format!("{{connector=\"{name}\"}}");
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_records_produced_total{labels}")
        ),
        1000.0
    );
    assert_eq!(
        metric(&metrics, &format!("http_source_offset_lag_records{labels}")),
        0.0
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_connector_status{{connector=\"{name}\",status=\"running\"}}")
        ),
        1.0
    );
    assert!(
        metric(
            &metrics,
            &format!("http_source_last_success_timestamp_seconds{labels}")
        ) > 1.7e9
    );

    first.stop();
    running.await.unwrap();
    let records = read_topic(&topic);
    assert_exactly_once(&records, 1000);
    assert!(
        records
            .iter()
            .all(|(_, _, v, ts)| *ts == Some(v["at"].as_i64().unwrap())),
        "the Kafka timestamp is the record's /at"
    );

    // An ordinary restart, with 50 new items at the source: only those are produced.
    feed.visible.store(1050, Ordering::SeqCst);
    run_until_committed(&document, "1050", Duration::from_secs(60)).await;
    assert_exactly_once(&read_topic(&topic), 1050);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_the_topic_but_not_committed_are_not_produced_again() {
    let (feed, address) = feed(100, None).await;
    let (name, topic) = (unique("recover"), unique("recover-items"));
    let document = config(&name, &topic, address);
    run_until_committed(&document, "100", Duration::from_secs(30)).await;

    // What a run that died between the broker's ack and the offset commit leaves behind:
    // items 101..=150 in the topic, the committed offset still 100.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    for id in 101..=150 {
        let value = item(id);
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(value["key"].as_str().unwrap())
                    .payload(&value.to_string()),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    feed.visible.store(200, Ordering::SeqCst);
    let second = connector(&document);
    let running = tokio::spawn(Arc::clone(&second).run());
    wait_committed(&second, "200", Duration::from_secs(30)).await;
    let (_, _, metrics) = call(&second, "GET", "/metrics").await;
    second.stop();
    running.await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            &format!(
                "http_source_records_skipped_total{{connector=\"{name}\",kind=\"recovered\"}}"
            )
        ),
        50.0
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_records_produced_total{{connector=\"{name}\"}}")
        ),
        50.0
    );
    let records = read_topic(&topic);
    assert_eq!(records.len(), 200);
    let ids: BTreeSet<u64> = records
        .iter()
        .map(|(_, _, v, _)| v["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=200).collect());
}

/// The connector binary on `file`, its JSON log appended to `log`.
fn spawn_connector(
    file: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_http-source-connector"))
        .arg(file)
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

/// Log lines at ERROR level (an alert on errors would fire on them).
fn error_lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(r#""level":"ERROR""#))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_and_restarted_every_record_is_in_the_topic_once() {
    const ITEMS: u64 = 3000;
    // The source wants a bearer token, which the connector reads from the environment.
    let (feed, address) = feed(ITEMS, Some("s3cret")).await;
    feed.delay_ms.store(10, Ordering::SeqCst);
    let (name, topic) = (unique("kill"), unique("kill-items"));
    let mut document = config(&name, &topic, address);
    document["config"]["http.auth.type"] = json!("bearer");
    document["config"]["http.auth.token.env"] = json!("ITEMS_TOKEN");
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("connector.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let log = directory.path().join("connector.log");
    let start = || spawn_connector(&file, &log, &[("ITEMS_TOKEN", "s3cret")]);

    let mut process = start();
    eventually(
        "a third of the items were served",
        Duration::from_secs(60),
        || {
            let enough = feed_served(&feed) >= 1000;
            async move { enough }
        },
    )
    .await;
    process.kill().unwrap(); // SIGKILL: no shutdown, no last commit
    process.wait().unwrap();
    let at_kill = read_topic(&topic).len();
    assert!(
        at_kill < ITEMS as usize,
        "killed mid-stream ({at_kill} of {ITEMS} in the topic)"
    );

    let caught_up = feed.caught_up.load(Ordering::SeqCst);
    let mut process = start();
    let done = wait_until(Duration::from_secs(60), || {
        let done = feed.caught_up.load(Ordering::SeqCst) > caught_up
            && read_topic(&topic).len() >= ITEMS as usize;
        async move { done }
    })
    .await;
    assert!(
        done,
        "the restarted connector did not catch up; its log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Let anything still on its way land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.kill().unwrap();
    process.wait().unwrap();
    assert_exactly_once(&read_topic(&topic), ITEMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_and_nothing_is_lost() {
    let (feed, address) = feed(100, None).await;
    feed.slow.store(2, Ordering::SeqCst);
    let (name, topic) = (unique("timeout"), unique("timeout-items"));
    let mut document = config(&name, &topic, address);
    document["config"]["http.request.timeout.millis"] = json!("300");
    let connector = connector(&document);
    let running = tokio::spawn(Arc::clone(&connector).run());
    let mut traces = Vec::new();
    eventually("offset 100 is committed", Duration::from_secs(30), || {
        traces.extend(connector.status().trace);
        let done = committed_offset(&connector).as_deref() == Some("100");
        async move { done }
    })
    .await;
    assert!(traces.iter().any(|t| t.contains("timed out")), "{traces:?}");
    let (_, _, metrics) = call(&connector, "GET", "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_errors_total{{connector=\"{name}\",kind=\"http_retried\"}}")
        ),
        2.0
    );
    connector.stop();
    running.await.unwrap();
    assert_exactly_once(&read_topic(&topic), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_nothing_is_lost() {
    let (feed, address) = feed(200, None).await;
    feed.failing.store(6, Ordering::SeqCst);
    let (name, topic) = (unique("retry"), unique("retry-items"));
    let connector = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&connector).run());
    let mut saw_retry_trace = false;
    eventually("offset 200 is committed", Duration::from_secs(30), || {
        if let Some(trace) = connector.status().trace {
            assert!(
                trace.contains("HTTP 500") || trace.contains("HTTP 429"),
                "{trace}"
            );
            saw_retry_trace = true;
        }
        let done = committed_offset(&connector).as_deref() == Some("200");
        async move { done }
    })
    .await;
    assert_eq!(
        feed.failing.load(Ordering::SeqCst),
        0,
        "every failure was answered"
    );
    assert!(saw_retry_trace, "the status named the error being retried");
    let (_, _, metrics) = call(&connector, "GET", "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_errors_total{{connector=\"{name}\",kind=\"http_retried\"}}")
        ),
        6.0
    );
    assert_eq!(connector.status().state, ConnectorState::Running);
    connector.stop();
    running.await.unwrap();
    assert_exactly_once(&read_topic(&topic), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_fails_the_connector_with_the_reason_and_restart_resumes() {
    let (feed, address) = feed(74, None).await;
    let (name, topic) = (unique("malformed"), unique("malformed-items"));
    let connector = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, "74", Duration::from_secs(30)).await;

    feed.malformed.store(true, Ordering::SeqCst);
    feed.visible.store(100, Ordering::SeqCst);
    failure(&connector, Duration::from_secs(10)).await;
    let (_, status, _) = call(&connector, "GET", &format!("/connectors/{name}/status")).await;
    assert_eq!(status["connector"]["state"], "FAILED");
    let trace = status["connector"]["trace"].as_str().unwrap();
    assert!(
        trace.starts_with(&format!(
            "malformed JSON from http://{address}/items?after=74&limit=37"
        )),
        "{trace}"
    );
    let (_, _, metrics) = call(&connector, "GET", "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_connector_status{{connector=\"{name}\",status=\"failed\"}}")
        ),
        1.0
    );
    // It stopped polling.
    let requests = feed.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        feed.requests.load(Ordering::SeqCst),
        requests,
        "a FAILED connector does not poll"
    );

    // Fixed at the source, restarted over REST: it resumes from the committed offset.
    feed.malformed.store(false, Ordering::SeqCst);
    let (status, _, _) = call(&connector, "POST", &format!("/connectors/{name}/restart")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_committed(&connector, "100", Duration::from_secs(30)).await;
    assert_eq!(connector.status().state, ConnectorState::Running);
    connector.stop();
    running.await.unwrap();
    assert_exactly_once(&read_topic(&topic), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_fails_the_connector_and_pause_stops_polling() {
    // 401: the source wants a token this connector does not send.
    let (_, address) = feed(10, Some("other")).await;
    let (name, topic) = (unique("denied"), unique("denied-items"));
    let denied = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&denied).run());
    let trace = failure(&denied, Duration::from_secs(30)).await;
    assert!(trace.contains("HTTP 401 Unauthorized"), "{trace}");
    denied.stop();
    running.await.unwrap();

    let (feed, address) = feed(10, None).await;
    let (name, topic) = (unique("pause"), unique("pause-items"));
    let connector = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, "10", Duration::from_secs(30)).await;
    let (status, _, _) = call(&connector, "PUT", &format!("/connectors/{name}/pause")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the connector is paused", Duration::from_secs(5), || {
        let paused = connector.status().state == ConnectorState::Paused;
        async move { paused }
    })
    .await;
    let (_, status, _) = call(&connector, "GET", &format!("/connectors/{name}/status")).await;
    assert_eq!(status["connector"]["state"], "PAUSED");
    feed.visible.store(20, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        committed_offset(&connector).as_deref(),
        Some("10"),
        "paused: nothing polled"
    );
    let (status, _, _) = call(&connector, "PUT", &format!("/connectors/{name}/resume")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_committed(&connector, "20", Duration::from_secs(30)).await;
    connector.stop();
    running.await.unwrap();
    assert_exactly_once(&read_topic(&topic), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_the_size_limit_fails_the_connector_naming_the_limit() {
    let (_, address) = feed(74, None).await;
    let (name, topic) = (unique("oversized"), unique("oversized-items"));
    let mut document = config(&name, &topic, address);
    // A page of 37 items is about 2.5 kB.
    document["config"]["http.response.max.bytes"] = json!("1000");
    let limited = connector(&document);
    let running = tokio::spawn(Arc::clone(&limited).run());
    let trace = failure(&limited, Duration::from_secs(30)).await;
    assert_eq!(
        trace,
        format!(
            "GET http://{address}/items?after=0&limit=37: the response is larger than http.response.max.bytes (1000 bytes): ask the source for smaller pages or raise the limit"
        )
    );
    limited.stop();
    running.await.unwrap();
    assert_eq!(read_topic(&topic), [], "nothing of the page was produced");

    // Started again with the default limit, it reads everything, once.
    run_until_committed(
        &config(&name, &topic, address),
        "74",
        Duration::from_secs(30),
    )
    .await;
    assert_exactly_once(&read_topic(&topic), 74);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_read_no_further_than_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A source that answers every request with a chunked body that never ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&sent);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let sent = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut request = [0; 4096];
                if socket.read(&mut request).await.is_err() {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n6\r\n[\"xxx\"\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 4096, ",\"xx\"".repeat(4096 / 5) + " ");
                while socket.write_all(chunk.as_bytes()).await.is_ok() {
                    sent.fetch_add(4096, Ordering::SeqCst);
                }
            });
        }
    });
    let (name, topic) = (unique("endless"), unique("endless-items"));
    let mut document = config(&name, &topic, address);
    document["config"]["http.response.max.bytes"] = json!("1048576");
    document["config"]["http.response.list.pointer"] = json!("");
    let connector = connector(&document);
    let running = tokio::spawn(Arc::clone(&connector).run());
    let trace = failure(&connector, Duration::from_secs(30)).await;
    assert!(
        trace.ends_with(
            "the response is larger than http.response.max.bytes (1048576 bytes): ask the source for smaller pages or raise the limit"
        ),
        "{trace}"
    );
    connector.stop();
    running.await.unwrap();
    // The connection was dropped: the source's writes stop, a few socket buffers past 1 MiB.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = sent.load(Ordering::SeqCst);
    assert_eq!(after, stopped, "the source is still being read");
    assert!(after < 16 << 20, "{after} bytes were sent");
    assert_eq!(read_topic(&topic), []);
}

/// Runs the binary on `config` and returns its exit status and stderr.
fn run_binary(config: &str, extension: &str) -> (std::process::ExitStatus, String) {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join(format!("connector.{extension}"));
    std::fs::write(&file, config).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_http-source-connector"))
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn config_errors_name_the_field_and_exit_non_zero() {
    let good = || {
        json!({"name": "c", "config": {
            "http.request.url": "http://127.0.0.1:1/items",
            "http.response.list.pointer": "/items",
            "kafka.topic": "items",
            "producer.bootstrap.servers": "127.0.0.1:1",
        }})
    };
    let cases = [
        (
            "kafka.topic",
            Value::Null,
            "config.kafka.topic: is required",
        ),
        (
            "http.response.list.pointer",
            json!("items"),
            "config.http.response.list.pointer: `items` is not a JSON pointer",
        ),
        (
            "http.request.url",
            json!("localhost/items"),
            "config.http.request.url: `localhost/items` is not a URL",
        ),
    ];
    for (key, value, expected) in cases {
        let mut document = good();
        if value.is_null() {
            document["config"].as_object_mut().unwrap().remove(key);
        } else {
            document["config"][key] = value;
        }
        let (status, stderr) = run_binary(&document.to_string(), "json");
        assert!(!status.success(), "{key}: exit {status}");
        assert!(
            stderr.contains("connector.json: ") && stderr.contains(expected),
            "{key}: {stderr}"
        );
    }
    let (status, stderr) = run_binary("name = \"c\"\n[config]\n\"kafka.topic\" = \"t\"\n", "toml");
    assert!(!status.success());
    assert!(
        stderr.contains("config.http.request.url: is required"),
        "{stderr}"
    );
    let (status, stderr) = run_binary("{\"name\": \"c\",", "json");
    assert!(!status.success());
    assert!(
        stderr.contains("is not a connector configuration: EOF while parsing"),
        "{stderr}"
    );
}

#[test]
fn the_rendered_and_the_example_configurations_are_accepted() {
    // What the platform renders for dev: one node per role is all the connector file needs.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/envs");
    let platform = kafka_components::PlatformConfig::load(&dir, "dev").unwrap();
    let nodes: Vec<kafka_components::NodeFacts> = kafka_components::Role::ALL
        .iter()
        .enumerate()
        .map(|(i, &role)| kafka_components::NodeFacts {
            name: format!("dev-{}-1", role.name()),
            role,
            index: 1,
            zone: "eu-central-1a".to_owned(),
            id: format!("i-{i}"),
            private_ip: format!("10.0.1.{}", 10 + i),
            public_ip: String::new(),
            private_dns: format!("ip-10-0-1-{}.internal", 10 + i),
            port_shift: 0,
        })
        .collect();
    let files = kafka_components::render::render("dev", &platform, &nodes).unwrap();
    let file = files
        .iter()
        .find(|f| f.path == "connect/http-source-connector.json")
        .unwrap();
    let rendered: Value = serde_json::from_str(&file.contents).unwrap();
    let config = ConnectorConfig::from_value(&rendered).unwrap();
    assert_eq!(config.topic, "dev.admin-api.topics");
    assert_eq!(config.key_pointer.as_deref(), Some("/name"));
    assert_eq!(config.listener.as_deref(), Some("http://0.0.0.0:8084"));

    let example = ConnectorConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/http-source-connector.example.json"
    )))
    .unwrap();
    assert_eq!(example.url, "http://127.0.0.1:2020/topics");
    assert_eq!(example.list_pointer, "/topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_polls_the_admin_api_topics_into_a_topic() {
    use clap::Parser;
    let admin = services::admin_api::AppState::new(&services::admin_api::Args::parse_from([
        "kafka-admin-api",
        "--bootstrap-servers",
        &bootstrap(),
    ]))
    .unwrap();
    let address = serve(services::admin_api::router(admin)).await;
    let watched = unique("watched");
    let created = reqwest::Client::new()
        .post(format!("http://{address}/topics"))
        .json(&json!({"name": watched, "partitions": 2, "replication_factor": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.text().await);

    let mut example: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/http-source-connector.example.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let topic = unique("admin-api-topics");
    example["name"] = json!(unique("example"));
    example["config"]["http.request.url"] = json!(format!("http://{address}/topics"));
    // One poll is enough: the watched topic exists before it.
    example["config"]["http.timer.interval.millis"] = json!("60000");
    example["config"]["kafka.topic"] = json!(topic);
    example["config"]["offset.storage.topic"] = json!(format!("{topic}-offsets"));
    example["config"]["producer.bootstrap.servers"] = json!(bootstrap());
    let connector = connector(&example);
    let running = tokio::spawn(Arc::clone(&connector).run());
    eventually(
        "the watched topic is in the topic",
        Duration::from_secs(30),
        || {
            let found = read_topic(&topic).iter().any(|(_, key, value, _)| {
                key == &watched && value["partitions"] == 2 && value["name"] == watched.as_str()
            });
            async move { found }
        },
    )
    .await;
    connector.stop();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_away_at_start_is_waited_for() {
    let port = kafka::free_port();
    let (feed, address) = feed(50, None).await;
    let (name, topic) = (unique("away"), unique("away-items"));
    let mut document = config(&name, &topic, address);
    document["config"]["producer.bootstrap.servers"] = json!(format!("127.0.0.1:{port}"));
    document["config"]["producer.reconnect.backoff.max.ms"] = json!("500");
    let connector = Connector::new(
        ConnectorConfig::from_value(&document).unwrap(),
        Duration::from_millis(500),
    )
    .unwrap();
    let running = tokio::spawn(Arc::clone(&connector).run());
    let waiting = wait_until(Duration::from_secs(30), || {
        let waiting = connector
            .status()
            .trace
            .is_some_and(|trace| trace.starts_with("waiting for the broker"));
        async move { waiting }
    })
    .await;
    assert!(
        waiting,
        "not waiting for the broker: {:?}",
        connector.status()
    );
    assert_eq!(connector.status().state, ConnectorState::Running);
    assert_eq!(
        feed.requests.load(Ordering::SeqCst),
        0,
        "no poll before the committed offset is known"
    );

    // The broker starts now, on the port the connector was told; it blocks while it starts,
    // so off the runtime the connector runs on.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let broker = tokio::task::spawn_blocking(move || {
        kafka::Node {
            port: Some(port),
            ..Default::default()
        }
        .start(&path)
    })
    .await
    .unwrap();
    wait_committed(&connector, "50", Duration::from_secs(60)).await;
    assert_eq!(connector.status().trace, None, "the wait is over");
    // The broker itself holds the 50 records, read by a client of the test's own.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    let metadata = reader
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    let held: i64 = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = reader
                .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .sum();
    assert_eq!(held, 50);
    let (_, _, metrics) = call(&connector, "GET", "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            &format!("http_source_records_produced_total{{connector=\"{name}\"}}")
        ),
        50.0
    );
    connector.stop();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_committed_while_the_next_one_is_being_retried() {
    let (feed, address) = feed(100, None).await;
    // The first request answers; every later one fails until the test ends.
    feed.failing_from.store(2, Ordering::SeqCst);
    let (name, topic) = (unique("retrying"), unique("retrying-items"));
    let connector = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, "37", Duration::from_secs(20)).await;
    assert!(
        feed.requests.load(Ordering::SeqCst) >= 2,
        "the second page is still being retried"
    );
    connector.stop();
    running.await.unwrap();
    assert_exactly_once(&read_topic(&topic), 37);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_polls_write_no_offset_record() {
    let (_feed, address) = feed(10, None).await;
    let (name, topic) = (unique("idle"), unique("idle-items"));
    let connector = connector(&config(&name, &topic, address));
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, "10", Duration::from_secs(20)).await;
    let offsets = format!("{topic}-offsets");
    let polls = || metric(&connector.metrics_text(), "http_source_polls_total");
    let (records, polled) = (read_topic(&offsets).len(), polls());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(polls() >= polled + 5.0, "the connector kept polling");
    assert_eq!(
        read_topic(&offsets).len(),
        records,
        "polls that find nothing new write no offset record"
    );
    connector.stop();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_timestamp_pointer_records_carry_the_time_their_page_is_produced() {
    let (_feed, address) = feed(100, None).await;
    let (name, topic) = (unique("untimed"), unique("untimed-items"));
    let mut document = config(&name, &topic, address);
    if let Some(config) = document["config"].as_object_mut() {
        config.remove("http.response.record.timestamp.pointer");
    }
    let now = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        i64::try_from(since.unwrap().as_millis()).unwrap()
    };
    let started = now();
    let connector = connector(&document);
    let running = tokio::spawn(Arc::clone(&connector).run());
    wait_committed(&connector, "100", Duration::from_secs(20)).await;
    let committed = now();
    connector.stop();
    running.await.unwrap();
    let records = read_topic(&topic);
    assert_exactly_once(&records, 100);
    let mut by_page: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
    for (_, _, value, timestamp) in &records {
        let timestamp = timestamp.unwrap_or_default();
        assert!(
            (started..=committed).contains(&timestamp),
            "record {value}: timestamp {timestamp} is not within the run ({started}..={committed})"
        );
        // The feed serves 37 items a page: items 1-37, 38-74, 75-100.
        let page = (value["id"].as_u64().unwrap() - 1) / 37;
        by_page.entry(page).or_default().insert(timestamp);
    }
    assert!(
        by_page.values().all(|times| times.len() == 1),
        "each page's records share one time: {by_page:?}"
    );
}

/// One source shape of the crash soak.
struct Shape {
    paged: bool,
    interval_ms: u64,
}

/// `kill -9` of the real binary at seeded random moments (start-up, recovery, the first poll
/// before any commit, mid-stream, while retrying), for paged and unpaged sources polled at
/// 0, 50 and 1000 ms, each followed by a restart; then the topic, read by an independent
/// consumer to end of partition, holds every item once, in order per key.
/// `HTTP_SOURCE_SOAK_KILLS` (kills per shape, default 2) and `HTTP_SOURCE_SOAK_SEED` set the
/// run; `scripts/soak-http-source.sh` runs the long version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_seeded_random_moments_loses_and_duplicates_nothing() {
    use rand::{Rng, SeedableRng};
    const ITEMS: u64 = 600;
    let kills: usize = std::env::var("HTTP_SOURCE_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("HTTP_SOURCE_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    println!("crash soak: seed {seed}, {kills} kills per shape");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut total, mut mid_run, mut at_start) = (0, 0, 0);
    for shape in [
        Shape {
            paged: true,
            interval_ms: 0,
        },
        Shape {
            paged: true,
            interval_ms: 50,
        },
        Shape {
            paged: true,
            interval_ms: 1000,
        },
        Shape {
            paged: false,
            interval_ms: 0,
        },
        Shape {
            paged: false,
            interval_ms: 50,
        },
        Shape {
            paged: false,
            interval_ms: 1000,
        },
    ] {
        let (feed, address) = feed(ITEMS, None).await;
        // ~17 requests of 60 ms: a run lasts about as long as the window kills land in.
        feed.delay_ms.store(60, Ordering::SeqCst);
        let (name, topic) = (unique("soak"), unique("soak-items"));
        let mut document = config(&name, &topic, address);
        document["config"]["http.timer.interval.millis"] = json!(shape.interval_ms.to_string());
        // Records wait up to 300 ms in the producer, and so does each offset write: a wide
        // window in which records are in the topic and their offset is not.
        document["config"]["producer.linger.ms"] = json!("300");
        if !shape.paged {
            // One request per poll: the items after the offset, 37 at a time.
            let fields = document["config"].as_object_mut().unwrap();
            fields.remove("http.response.next.pointer");
            fields.remove("http.response.next.type");
        }
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("connector.json");
        std::fs::write(&file, document.to_string()).unwrap();
        let log = directory.path().join("connector.log");
        for _ in 0..kills {
            if rng.random_bool(0.3) {
                feed.failing.store(3, Ordering::SeqCst);
            }
            let (requests, caught_up) = (
                feed.requests.load(Ordering::SeqCst),
                feed.caught_up.load(Ordering::SeqCst),
            );
            let mut process = spawn_connector(&file, &log, &[]);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..2000))).await;
            process.kill().unwrap();
            process.wait().unwrap();
            total += 1;
            if feed.requests.load(Ordering::SeqCst) == requests {
                at_start += 1;
            } else if feed.caught_up.load(Ordering::SeqCst) == caught_up {
                // It had not yet asked past the last item: killed mid-run.
                mid_run += 1;
            }
        }
        feed.failing.store(0, Ordering::SeqCst);
        let caught_up = feed.caught_up.load(Ordering::SeqCst);
        let mut process = spawn_connector(&file, &log, &[]);
        let done = wait_until(Duration::from_secs(90), || {
            let done = feed.caught_up.load(Ordering::SeqCst) > caught_up
                && read_topic(&topic).len() >= ITEMS as usize;
            async move { done }
        })
        .await;
        // Let anything still on its way land before counting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        process.kill().unwrap();
        process.wait().unwrap();
        assert!(
            done,
            "seed {seed}, paged {}, interval {} ms: did not catch up; log:\n{}",
            shape.paged,
            shape.interval_ms,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let records = read_topic(&topic);
        println!(
            "crash soak: seed {seed}, paged {}, interval {} ms: {} records for {ITEMS} items",
            shape.paged,
            shape.interval_ms,
            records.len()
        );
        assert_exactly_once(&records, ITEMS);
        assert_eq!(
            error_lines(&log),
            Vec::<String>::new(),
            "no ERROR line in an ordinary run"
        );
    }
    println!(
        "crash soak: seed {seed}: {total} kills, {mid_run} mid-run, {at_start} before the first request, 0 lost, 0 duplicated"
    );
}
