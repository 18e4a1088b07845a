//! Benchmark: records/s of the HTTP source connector, end to end from a fast local paged
//! source into the broker, beside the fastest raw rdkafka producer sending the same records
//! with the same delivery guarantees (idempotent, acks=all) to the same broker in the same run.
//!
//! `scripts/bench-http-source.sh [records] [rounds]` runs this in release mode against a
//! broker of its own. Each round runs the raw producer once per delivery path and batching
//! tuning (a future per record, or a `ThreadedProducer` counting the answers as the connector
//! does; librdkafka's defaults, which the connector uses; longer linger with larger batches;
//! lz4 compression) and the connector (alternating which goes first), each into a fresh
//! 3-partition topic, deleted after it (the broker slows as it fills). The reference is the
//! tuning with the highest median over the rounds (the fastest of several noisy runs in each
//! round would measure the noise as much as the producer). A raw producer is timed from its
//! first send to its last acknowledgement after a warm-up record (its producer id and the
//! topic's metadata are fetched before the clock starts, as the connector's are at its
//! start-up); the connector from its first request to the source to its last committed
//! offset, its start-up reported beside. Medians and the spread (lowest to highest) over the
//! rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use services::http_source::{Connector, ConnectorConfig};

const PAGE: usize = 1000;

/// Item `id`: a key among 100, a small payload.
fn item(id: usize) -> Value {
    json!({"id": id, "key": format!("k{}", id % 100), "payload": "x".repeat(100)})
}

/// Every page, serialised once, so the source costs next to nothing; and when the
/// connector asked for the first one.
struct Pages {
    bodies: Vec<Vec<u8>>,
    first_request: std::sync::Mutex<Option<Instant>>,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    cursor: Option<usize>,
}

async fn page(State(pages): State<Arc<Pages>>, Query(q): Query<PageQuery>) -> impl IntoResponse {
    let index = q.cursor.unwrap_or(0);
    if let Ok(mut first) = pages.first_request.lock() {
        first.get_or_insert_with(Instant::now);
    }
    let body = pages
        .bodies
        .get(index)
        .cloned()
        .unwrap_or_else(|| b"{\"items\":[],\"next\":null}".to_vec());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

async fn create_topic(bootstrap: &str, name: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let results = admin
        .create_topics(
            [&NewTopic::new(name, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for result in results {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    Ok(())
}

/// Deletes the topics a measurement wrote: the broker keeps every record in memory and slows
/// as it fills, so each measurement starts from the same, empty broker.
async fn delete_topics(bootstrap: &str, names: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for result in admin.delete_topics(names, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("deleting {topic}: {code}"))?;
    }
    Ok(())
}

/// The tunings sent through a counting `ThreadedProducer` ([`raw_counting`]) start so.
const COUNTING: &str = "counting";

/// Delivery paths and batching tunings of the raw producer: the reference is the fastest.
const TUNINGS: &[(&str, &[(&str, &str)])] = &[
    ("librdkafka defaults (the connector's)", &[]),
    (
        "counting ThreadedProducer (the connector's delivery path), librdkafka defaults",
        &[],
    ),
    (
        "counting ThreadedProducer, linger 20 ms, 1 MB batches",
        &[
            ("linger.ms", "20"),
            ("batch.size", "1000000"),
            ("batch.num.messages", "100000"),
        ],
    ),
    (
        "linger 20 ms, 1 MB batches",
        &[
            ("linger.ms", "20"),
            ("batch.size", "1000000"),
            ("batch.num.messages", "100000"),
        ],
    ),
    (
        "linger 50 ms, 4 MB batches",
        &[
            ("linger.ms", "50"),
            ("batch.size", "4000000"),
            ("batch.num.messages", "100000"),
        ],
    ),
    (
        "linger 20 ms, 1 MB batches, lz4",
        &[
            ("linger.ms", "20"),
            ("batch.size", "1000000"),
            ("batch.num.messages", "100000"),
            ("compression.type", "lz4"),
        ],
    ),
];

/// A raw producer's settings: the connector's delivery guarantees (idempotent, acks=all, no
/// delivery timeout) with `tuning`.
fn producer_config(bootstrap: &str, tuning: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0");
    for (key, value) in tuning {
        config.set(*key, *value);
    }
    config
}

/// Items 1..=`records` as the raw producers send them: key and JSON bytes.
fn keyed_items(records: usize) -> Vec<(String, Vec<u8>)> {
    (1..=records)
        .map(|id| {
            let value = item(id);
            (
                value["key"].as_str().unwrap_or_default().to_owned(),
                value.to_string().into_bytes(),
            )
        })
        .collect()
}

/// Hands `record` to a producer through `send`, waiting while its queue is full.
async fn with_room<R, T>(
    mut record: R,
    mut send: impl FnMut(R) -> Result<T, (rdkafka::error::KafkaError, R)>,
) -> anyhow::Result<T> {
    loop {
        match send(record) {
            Ok(sent) => return Ok(sent),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => bail!("raw producer: {e}"),
        }
    }
}

/// Hands one record to the producer, waiting while its queue is full.
#[allow(clippy::result_large_err)] // rdkafka hands the record back inside its error
async fn send(
    producer: &FutureProducer,
    record: FutureRecord<'_, str, [u8]>,
) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
    with_room(record, |r| producer.send_result(r)).await
}

/// A raw producer with `tuning`: a warm-up record acknowledged, then every record sent and
/// every acknowledgement awaited; records/s of the latter.
async fn raw(
    bootstrap: &str,
    topic: &str,
    records: usize,
    tuning: &[(&str, &str)],
) -> anyhow::Result<f64> {
    let config = producer_config(bootstrap, tuning);
    let producer: FutureProducer = config.create()?;
    let values = keyed_items(records);
    let warm_up = send(
        &producer,
        FutureRecord::to(topic).key("warm-up").payload(&b"{}"[..]),
    )
    .await?;
    warm_up
        .await
        .context("raw producer closed")?
        .map_err(|(e, _)| anyhow::anyhow!("raw producer warm-up: {e}"))?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(records);
    for (key, value) in &values {
        let record = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_slice());
        deliveries.push(send(&producer, record).await?);
    }
    for delivery in deliveries {
        delivery
            .await
            .context("raw producer closed")?
            .map_err(|(e, _)| anyhow::anyhow!("raw producer: {e}"))?;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// Counts the broker's answers, copying nothing: the leanest delivery path rdkafka has
/// (the connector's: a counter per page, no future per record).
#[derive(Default)]
struct Counting {
    answered: std::sync::atomic::AtomicUsize,
    refused: std::sync::atomic::AtomicUsize,
}

impl rdkafka::ClientContext for Counting {}

impl rdkafka::producer::ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, (): ()) {
        use std::sync::atomic::Ordering::Relaxed;
        if result.is_err() {
            self.refused.fetch_add(1, Relaxed);
        }
        self.answered.fetch_add(1, Relaxed);
    }
}

/// [`raw`] through a `ThreadedProducer` that counts the answers instead of a future per
/// record.
async fn raw_counting(
    bootstrap: &str,
    topic: &str,
    records: usize,
    tuning: &[(&str, &str)],
) -> anyhow::Result<f64> {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use std::sync::atomic::Ordering::Relaxed;
    let config = producer_config(bootstrap, tuning);
    let producer: ThreadedProducer<Counting> = config.create_with_context(Counting::default())?;
    let values = keyed_items(records);
    send_counted(
        &producer,
        BaseRecord::to(topic).key("warm-up").payload(&b"{}"[..]),
    )
    .await?;
    answered(&producer, 1).await;
    let started = Instant::now();
    for (key, value) in &values {
        send_counted(
            &producer,
            BaseRecord::to(topic)
                .key(key.as_str())
                .payload(value.as_slice()),
        )
        .await?;
    }
    answered(&producer, records + 1).await;
    let rate = records as f64 / started.elapsed().as_secs_f64();
    if producer.context().refused.load(Relaxed) > 0 {
        bail!("raw producer: the broker refused records");
    }
    Ok(rate)
}

/// Waits until the broker answered `n` records.
async fn answered(producer: &rdkafka::producer::ThreadedProducer<Counting>, n: usize) {
    use rdkafka::producer::Producer;
    while producer
        .context()
        .answered
        .load(std::sync::atomic::Ordering::Relaxed)
        < n
    {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// [`send`] for the counting producer.
#[allow(clippy::result_large_err)] // rdkafka hands the record back inside its error
async fn send_counted(
    producer: &rdkafka::producer::ThreadedProducer<Counting>,
    record: rdkafka::producer::BaseRecord<'_, str, [u8]>,
) -> anyhow::Result<()> {
    with_room(record, |r| producer.send(r)).await
}

/// The fastest of the tunings this round, each into a fresh topic; every tuning's rate is
/// added to `by_tuning`.
async fn best_raw(
    bootstrap: &str,
    topic: &str,
    records: usize,
    by_tuning: &mut [Vec<f64>],
) -> anyhow::Result<f64> {
    let mut best: f64 = 0.0;
    for (i, (name, tuning)) in TUNINGS.iter().enumerate() {
        let topic = format!("{topic}-{i}");
        create_topic(bootstrap, &topic).await?;
        let rate = if name.starts_with(COUNTING) {
            raw_counting(bootstrap, &topic, records, tuning).await?
        } else {
            raw(bootstrap, &topic, records, tuning).await?
        };
        delete_topics(bootstrap, &[&topic]).await?;
        by_tuning[i].push(rate);
        best = best.max(rate);
    }
    Ok(best)
}

/// The connector: records/s from its first request to the source until every record's
/// offset is committed, and its start-up time (topics, recovery) before that request.
async fn connector(
    bootstrap: &str,
    topic: &str,
    source: &str,
    pages: &Pages,
    records: usize,
) -> anyhow::Result<(f64, Duration)> {
    if let Ok(mut first) = pages.first_request.lock() {
        *first = None;
    }
    let config = ConnectorConfig::from_value(&json!({"name": topic, "config": {
        "http.request.url": format!("{source}/items"),
        "http.timer.interval.millis": "600000",
        "http.response.list.pointer": "/items",
        "http.response.record.key.pointer": "/key",
        "http.response.record.offset.pointer": "/id",
        "http.response.next.pointer": "/next",
        "http.response.next.type": "cursor",
        "kafka.topic": topic,
        "offset.storage.topic": format!("{topic}-offsets"),
        "offset.storage.replication.factor": "1",
        "producer.bootstrap.servers": bootstrap,
    }}))?;
    let connector = Connector::new(config, Duration::from_secs(10))?;
    let started = Instant::now();
    let running = tokio::spawn(Arc::clone(&connector).run());
    let last = records.to_string();
    while connector.committed().and_then(|c| c.offset).as_deref() != Some(last.as_str()) {
        if let Some(trace) = connector.status().trace {
            bail!("connector: {trace}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = pages
        .first_request
        .lock()
        .ok()
        .and_then(|first| *first)
        .context("the source was never asked")?;
    let rate = records as f64 / first.elapsed().as_secs_f64();
    connector.stop();
    running.await?;
    delete_topics(bootstrap, &[topic, &format!("{topic}-offsets")]).await?;
    Ok((rate, first - started))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `lowest–highest`, of sorted values.
fn spread(sorted: &[f64]) -> String {
    match (sorted.first(), sorted.last()) {
        (Some(low), Some(high)) => format!("{low:.0}–{high:.0}"),
        _ => "-".to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: usize = args
        .next()
        .map_or(Ok(200_000), |a| a.parse())
        .context("records")?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse()).context("rounds")?;
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").context("KAFKA_BOOTSTRAP_SERVERS")?;

    let pages: Vec<Vec<u8>> = (0..records.div_ceil(PAGE))
        .map(|index| {
            let first = index * PAGE + 1;
            let last = ((index + 1) * PAGE).min(records);
            let items: Vec<Value> = (first..=last).map(item).collect();
            let next = (last < records).then_some(index + 1);
            json!({"items": items, "next": next})
                .to_string()
                .into_bytes()
        })
        .collect();
    let pages = Arc::new(Pages {
        bodies: pages,
        first_request: std::sync::Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/items", axum::routing::get(page))
        .with_state(Arc::clone(&pages));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let source = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let run = std::process::id();
    let (mut connectors, mut startups) = (Vec::new(), Vec::new());
    let mut by_tuning: Vec<Vec<f64>> = vec![Vec::new(); TUNINGS.len()];
    for round in 0..rounds {
        let raw_topic = format!("bench-raw-{run}-{round}");
        let connector_topic = format!("bench-connector-{run}-{round}");
        create_topic(&bootstrap, &connector_topic).await?;
        // Alternate which goes first (each measurement's topics are deleted after it, so
        // none runs on a broker another filled).
        let (r, c) = if round % 2 == 0 {
            let r = best_raw(&bootstrap, &raw_topic, records, &mut by_tuning).await?;
            (
                r,
                connector(&bootstrap, &connector_topic, &source, &pages, records).await?,
            )
        } else {
            let c = connector(&bootstrap, &connector_topic, &source, &pages, records).await?;
            (
                best_raw(&bootstrap, &raw_topic, records, &mut by_tuning).await?,
                c,
            )
        };
        let (c, startup) = c;
        println!(
            "round {}: fastest raw producer {r:.0} records/s, connector {c:.0} records/s ({:.0}%), connector start-up {} ms",
            round + 1,
            100.0 * c / r,
            startup.as_millis()
        );
        startups.push(startup.as_secs_f64() * 1000.0);
        connectors.push(c);
    }
    let c = median(&mut connectors);
    println!("median of {rounds} rounds, {records} records of ~150 bytes, 3 partitions:");
    let mut reference: (f64, &str) = (0.0, "");
    for ((name, _), rates) in TUNINGS.iter().zip(&mut by_tuning) {
        let m = median(rates);
        println!(
            "  raw producer, {name}: {m:.0} records/s (spread {})",
            spread(rates)
        );
        if m > reference.0 {
            reference = (m, name);
        }
    }
    let (r, tuning) = reference;
    println!(
        "  reference (the raw producer's fastest tuning by median): {tuning}, {r:.0} records/s"
    );
    println!(
        "  http-source-connector: {c:.0} records/s (spread {}) = {:.0}% of the reference (target >= 80%), from its first request to the last offset committed",
        spread(&connectors),
        100.0 * c / r
    );
    println!(
        "  http-source-connector start-up (topics, recovery) before the first request: {:.0} ms",
        median(&mut startups)
    );
    Ok(())
}
