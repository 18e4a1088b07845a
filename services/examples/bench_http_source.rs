//! Benchmark: records/s of the HTTP source connector, end to end from a fast local paged
//! source into the broker, beside the fastest raw rdkafka producer sending the same records
//! with the same delivery guarantees (idempotent, acks=all) to the same broker in the same run.
//!
//! `scripts/bench-http-source.sh [records] [rounds]` runs this in release mode against a
//! broker of its own, then, when the local platform runs, against its 3 + 3 cluster (over
//! SASL_SSL, 3 replicas: see [`Cluster`]). Each round runs the raw producer once per delivery path and batching
//! tuning (a future per record, or a `ThreadedProducer` counting the answers as the connector
//! does; librdkafka's defaults; the connector's own settings; longer linger with larger
//! batches; lz4 compression) and the connector (alternating which goes first), each into a
//! fresh 3-partition topic, deleted after it (the broker slows as it fills). The reference is
//! the tuning with the highest median over the rounds (the fastest of several noisy runs in
//! each round would measure the noise as much as the producer). A raw producer is timed from
//! its first send to its last acknowledgement after a warm-up record (its producer id and the
//! topic's metadata are fetched before the clock starts, as the connector's are at its
//! start-up); the connector from its first request to the source to the same event, the
//! broker's acknowledgement of its last record, and to the commit of its offset after it
//! (reported beside, as its start-up is). Medians and the spread (lowest to highest) over the
//! rounds, and the CPU time each spent per record, in this process and in the broker: on a
//! machine where the broker shares the cores, records/s follow the sum of the two. Beside the
//! ratio of the medians, the median of each round's own ratio (the connector against the
//! reference tuning's run in that round), which the machine's drift between rounds does not
//! move; and each round's, in order, so that runs can be pooled.

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
use services::http_source::{Connector, ConnectorConfig, PRODUCER_DEFAULTS};

const PAGE: usize = 1000;

/// Item `id`: a key among 100, a small payload.
fn item(id: usize) -> Value {
    json!({"id": id, "key": format!("k{}", id % 100), "payload": "x".repeat(100)})
}

/// Every page, serialised once and never copied, so the source costs next to nothing; and
/// when the connector asked for the first one.
struct Pages {
    bodies: Vec<axum::body::Bytes>,
    first_request: std::sync::Mutex<Option<Clock>>,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    cursor: Option<usize>,
}

async fn page(State(pages): State<Arc<Pages>>, Query(q): Query<PageQuery>) -> impl IntoResponse {
    let index = q.cursor.unwrap_or(0);
    if let Ok(mut first) = pages.first_request.lock() {
        first.get_or_insert_with(Clock::start);
    }
    let body = pages
        .bodies
        .get(index)
        .cloned()
        .unwrap_or_else(|| axum::body::Bytes::from_static(b"{\"items\":[],\"next\":null}"));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

/// The variable holding the SASL password of a secured cluster: the raw clients read it,
/// the connector is told its name (`producer.sasl.password.env`), as on the platform.
const PASSWORD_VARIABLE: &str = "BENCH_KAFKA_PASSWORD";

/// The cluster measured: its bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`), what every client
/// adds for a secured one (`BENCH_KAFKA_SETTINGS`: `key=value` words, the password in
/// [`PASSWORD_VARIABLE`]), and the replicas of the topics (`BENCH_REPLICATION`, default 1;
/// the minimum in-sync is the platform's 2 where there are 3).
struct Cluster {
    bootstrap: String,
    settings: Vec<(String, String)>,
    replication: i32,
}

impl Cluster {
    fn from_environment() -> anyhow::Result<Self> {
        let bootstrap =
            std::env::var("KAFKA_BOOTSTRAP_SERVERS").context("KAFKA_BOOTSTRAP_SERVERS")?;
        let settings = std::env::var("BENCH_KAFKA_SETTINGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(|word| {
                word.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .with_context(|| format!("BENCH_KAFKA_SETTINGS: `{word}` is not key=value"))
            })
            .collect::<anyhow::Result<_>>()?;
        let replication = std::env::var("BENCH_REPLICATION")
            .map_or(Ok(1), |r| r.parse())
            .context("BENCH_REPLICATION")?;
        Ok(Self {
            bootstrap,
            settings,
            replication,
        })
    }

    /// A client of the cluster, with its settings and password.
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.settings {
            config.set(key, value);
        }
        if let Ok(password) = std::env::var(PASSWORD_VARIABLE) {
            config.set("sasl.password", password);
        }
        config
    }

    /// The connector's `producer.*` settings for the cluster.
    fn producer_settings(&self) -> serde_json::Map<String, Value> {
        let mut producer = serde_json::Map::new();
        producer.insert("producer.bootstrap.servers".into(), json!(self.bootstrap));
        for (key, value) in &self.settings {
            producer.insert(format!("producer.{key}"), json!(value));
        }
        if std::env::var(PASSWORD_VARIABLE).is_ok() {
            producer.insert(
                "producer.sasl.password.env".into(),
                json!(PASSWORD_VARIABLE),
            );
        }
        producer
    }
}

fn admin(cluster: &Cluster) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(cluster.client().create()?)
}

async fn create_topic(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    let min_insync = cluster.replication.min(2).to_string();
    let topic = NewTopic::new(name, 3, TopicReplication::Fixed(cluster.replication))
        .set("min.insync.replicas", &min_insync);
    let results = admin(cluster)?
        .create_topics([&topic], &AdminOptions::new())
        .await?;
    for result in results {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    Ok(())
}

/// Deletes the topics a measurement wrote: the broker keeps every record in memory and slows
/// as it fills, so each measurement starts from the same, empty broker.
async fn delete_topics(cluster: &Cluster, names: &[&str]) -> anyhow::Result<()> {
    for result in admin(cluster)?
        .delete_topics(names, &AdminOptions::new())
        .await?
    {
        result.map_err(|(topic, code)| anyhow::anyhow!("deleting {topic}: {code}"))?;
    }
    Ok(())
}

/// When a measurement started: the wall clock, and the CPU time of this process and of the
/// broker (when `KAFKA_PLATFORM_KAFKA_PID` names it, as scripts/kafka.sh prints), from
/// `/proc` (in the kernel's 100 Hz ticks).
struct Clock {
    started: Instant,
    broker: Option<String>,
    cpu: (f64, Option<f64>),
}

/// CPU time per record, in microseconds: this process (the producer, or the connector with the
/// source it reads) and the broker.
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    broker: Option<f64>,
}

/// Seconds of CPU a process has used: `utime + stime` of `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

impl Clock {
    fn start() -> Self {
        let broker = std::env::var("KAFKA_PLATFORM_KAFKA_PID").ok();
        let cpu = (
            cpu_seconds("self").unwrap_or_default(),
            broker.as_deref().and_then(cpu_seconds),
        );
        Self {
            started: Instant::now(),
            broker,
            cpu,
        }
    }

    /// `records` handled since the start: records/s and the CPU spent per record.
    fn measured(&self, records: usize) -> Measured {
        let us = |seconds: f64| seconds * 1e6 / records as f64;
        Measured {
            rate: records as f64 / self.started.elapsed().as_secs_f64(),
            cpu: Cpu {
                process: us(cpu_seconds("self").unwrap_or_default() - self.cpu.0),
                broker: self
                    .broker
                    .as_deref()
                    .and_then(cpu_seconds)
                    .zip(self.cpu.1)
                    .map(|(now, start)| us(now - start)),
            },
        }
    }
}

/// One measurement: records/s and the CPU spent per record.
#[derive(Clone, Copy)]
struct Measured {
    rate: f64,
    cpu: Cpu,
}

/// How a raw producer hands records over and hears back.
#[derive(Clone, Copy)]
enum Delivery {
    /// A `FutureProducer`: a future per record.
    Future,
    /// A `ThreadedProducer` counting the answers, copying nothing (the connector's path).
    Counting,
}

/// A delivery path and a batching tuning of the raw producer.
struct Tuning {
    name: &'static str,
    delivery: Delivery,
    settings: Vec<(&'static str, &'static str)>,
}

const LINGER_20_1MB: &[(&str, &str)] = &[
    ("linger.ms", "20"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "100000"),
];

/// The contenders for the reference: the fastest by median is it.
fn tunings() -> Vec<Tuning> {
    let tuning = |name, delivery, settings: &[(&'static str, &'static str)]| Tuning {
        name,
        delivery,
        settings: settings.to_vec(),
    };
    let connector_s: Vec<(&str, &str)> = PRODUCER_DEFAULTS
        .iter()
        .map(|(names, value)| (names[0], *value))
        .collect();
    let lz4 = [LINGER_20_1MB, &[("compression.type", "lz4")]].concat();
    vec![
        tuning(
            "future per record, librdkafka defaults",
            Delivery::Future,
            &[],
        ),
        tuning(
            "counting ThreadedProducer (the connector's delivery path), librdkafka defaults",
            Delivery::Counting,
            &[],
        ),
        tuning(
            "counting ThreadedProducer, the connector's settings (linger 20 ms)",
            Delivery::Counting,
            &connector_s,
        ),
        tuning(
            "counting ThreadedProducer, linger 20 ms, 1 MB batches",
            Delivery::Counting,
            LINGER_20_1MB,
        ),
        tuning(
            "future per record, linger 20 ms, 1 MB batches",
            Delivery::Future,
            LINGER_20_1MB,
        ),
        tuning(
            "future per record, linger 50 ms, 4 MB batches",
            Delivery::Future,
            &[
                ("linger.ms", "50"),
                ("batch.size", "4000000"),
                ("batch.num.messages", "100000"),
            ],
        ),
        tuning(
            "future per record, linger 20 ms, 1 MB batches, lz4",
            Delivery::Future,
            &lz4,
        ),
    ]
}

/// A raw producer's settings: the connector's delivery guarantees (idempotent, acks=all, no
/// delivery timeout) with `tuning`.
fn producer_config(cluster: &Cluster, tuning: &[(&str, &str)]) -> ClientConfig {
    let mut config = cluster.client();
    config
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
    cluster: &Cluster,
    topic: &str,
    records: usize,
    tuning: &[(&str, &str)],
) -> anyhow::Result<Measured> {
    let config = producer_config(cluster, tuning);
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
    let clock = Clock::start();
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
    Ok(clock.measured(records))
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
    cluster: &Cluster,
    topic: &str,
    records: usize,
    tuning: &[(&str, &str)],
) -> anyhow::Result<Measured> {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use std::sync::atomic::Ordering::Relaxed;
    let config = producer_config(cluster, tuning);
    let producer: ThreadedProducer<Counting> = config.create_with_context(Counting::default())?;
    let values = keyed_items(records);
    send_counted(
        &producer,
        BaseRecord::to(topic).key("warm-up").payload(&b"{}"[..]),
    )
    .await?;
    answered(&producer, 1).await;
    let clock = Clock::start();
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
    let measured = clock.measured(records);
    if producer.context().refused.load(Relaxed) > 0 {
        bail!("raw producer: the broker refused records");
    }
    Ok(measured)
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

/// The fastest of the tunings this round, each into a fresh topic; every tuning's
/// measurement is added to `by_tuning`.
async fn best_raw(
    cluster: &Cluster,
    topic: &str,
    records: usize,
    by_tuning: &mut [Vec<Measured>],
) -> anyhow::Result<f64> {
    let mut best: f64 = 0.0;
    for (i, tuning) in tunings().iter().enumerate() {
        let topic = format!("{topic}-{i}");
        create_topic(cluster, &topic).await?;
        let measured = match tuning.delivery {
            Delivery::Counting => raw_counting(cluster, &topic, records, &tuning.settings).await?,
            Delivery::Future => raw(cluster, &topic, records, &tuning.settings).await?,
        };
        delete_topics(cluster, &[&topic]).await?;
        by_tuning[i].push(measured);
        best = best.max(measured.rate);
    }
    Ok(best)
}

/// One run of the connector.
struct ConnectorRun {
    /// From its first request to the source until the broker acknowledged every record: the
    /// event the raw producers are timed to.
    acknowledged: Measured,
    /// From its first request until every record's offset is committed.
    committed: Measured,
    /// Its start-up (topics, recovery) before that first request.
    startup: Duration,
}

/// The connector, from its first request to the source (every record new, a fresh topic).
async fn connector(
    cluster: &Cluster,
    topic: &str,
    source: &str,
    pages: &Pages,
    records: usize,
) -> anyhow::Result<ConnectorRun> {
    if let Ok(mut first) = pages.first_request.lock() {
        *first = None;
    }
    let mut settings = cluster.producer_settings();
    settings.extend(
        json!({
            "http.request.url": format!("{source}/items"),
            "http.timer.interval.millis": "600000",
            "http.response.list.pointer": "/items",
            "http.response.record.key.pointer": "/key",
            "http.response.record.offset.pointer": "/id",
            "http.response.next.pointer": "/next",
            "http.response.next.type": "cursor",
            "kafka.topic": topic,
            "offset.storage.topic": format!("{topic}-offsets"),
            "offset.storage.replication.factor": cluster.replication.to_string(),
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let config = ConnectorConfig::from_value(&json!({"name": topic, "config": settings}))?;
    let connector = Connector::new(config, Duration::from_secs(10))?;
    let started = Instant::now();
    let running = tokio::spawn(Arc::clone(&connector).run());
    let since_first_request = || {
        pages
            .first_request
            .lock()
            .ok()
            .and_then(|first| first.as_ref().map(|clock| clock.measured(records)))
    };
    let (last, all) = (records.to_string(), records as u64);
    let mut acknowledged = None;
    while connector.committed().and_then(|c| c.offset).as_deref() != Some(last.as_str()) {
        if let Some(trace) = connector.status().trace {
            bail!("connector: {trace}");
        }
        if acknowledged.is_none() && connector.produced() >= all {
            acknowledged = since_first_request();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = pages
        .first_request
        .lock()
        .ok()
        .and_then(|mut first| first.take())
        .context("the source was never asked")?;
    let committed = first.measured(records);
    connector.stop();
    running.await?;
    delete_topics(cluster, &[topic, &format!("{topic}-offsets")]).await?;
    Ok(ConnectorRun {
        // Acknowledged and committed within one look: timed at the commit.
        acknowledged: acknowledged.unwrap_or(committed),
        committed,
        startup: first.started - started,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Medians of measurements.
struct Summary {
    rate: f64,
    /// CPU per record of the process and the broker together, where the broker's is known.
    cpu: Option<f64>,
    /// Both, with the spread of the rates and the CPU apart.
    line: String,
}

fn summary(measured: &[Measured]) -> Summary {
    let mut rates: Vec<f64> = measured.iter().map(|m| m.rate).collect();
    let rate = median(&mut rates);
    let mut process: Vec<f64> = measured.iter().map(|m| m.cpu.process).collect();
    let process = median(&mut process);
    let mut broker: Vec<f64> = measured.iter().filter_map(|m| m.cpu.broker).collect();
    let broker = (!broker.is_empty()).then(|| median(&mut broker));
    let broker_part = broker.map_or(String::new(), |b| format!(" + broker {b:.2}"));
    Summary {
        rate,
        cpu: broker.map(|b| process + b),
        line: format!(
            "{rate:.0} records/s (spread {}), CPU per record {process:.2} µs{broker_part}",
            spread(&rates)
        ),
    }
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
    let rounds: usize = args
        .next()
        .map_or(Ok(15), |a| a.parse())
        .context("rounds")?;
    if records == 0 || rounds == 0 {
        bail!("records and rounds must each be at least 1");
    }
    let cluster = Cluster::from_environment()?;

    let pages: Vec<axum::body::Bytes> = (0..records.div_ceil(PAGE))
        .map(|index| {
            let first = index * PAGE + 1;
            let last = ((index + 1) * PAGE).min(records);
            let items: Vec<Value> = (first..=last).map(item).collect();
            let next = (last < records).then_some(index + 1);
            json!({"items": items, "next": next}).to_string().into()
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
    let mut connectors: Vec<ConnectorRun> = Vec::new();
    let tunings = tunings();
    let mut by_tuning: Vec<Vec<Measured>> = vec![Vec::new(); tunings.len()];
    for round in 0..rounds {
        let raw_topic = format!("bench-raw-{run}-{round}");
        let connector_topic = format!("bench-connector-{run}-{round}");
        create_topic(&cluster, &connector_topic).await?;
        // Alternate which goes first (each measurement's topics are deleted after it, so
        // none runs on a broker another filled).
        let (r, c) = if round % 2 == 0 {
            let r = best_raw(&cluster, &raw_topic, records, &mut by_tuning).await?;
            (
                r,
                connector(&cluster, &connector_topic, &source, &pages, records).await?,
            )
        } else {
            let c = connector(&cluster, &connector_topic, &source, &pages, records).await?;
            (
                best_raw(&cluster, &raw_topic, records, &mut by_tuning).await?,
                c,
            )
        };
        println!(
            "round {}: fastest raw producer {r:.0} records/s, connector {:.0} records/s to the last acknowledgement ({:.0}%), {:.0} to the last commit ({:.0}%), start-up {} ms",
            round + 1,
            c.acknowledged.rate,
            100.0 * c.acknowledged.rate / r,
            c.committed.rate,
            100.0 * c.committed.rate / r,
            c.startup.as_millis()
        );
        connectors.push(c);
    }
    println!("median of {rounds} rounds, {records} records of ~150 bytes, 3 partitions:");
    let mut reference: Option<(Summary, &str, &[Measured])> = None;
    for (tuning, measured) in tunings.iter().zip(&by_tuning) {
        let summary = summary(measured);
        println!("  raw producer, {}: {}", tuning.name, summary.line);
        if reference
            .as_ref()
            .is_none_or(|(best, _, _)| summary.rate > best.rate)
        {
            reference = Some((summary, tuning.name, measured));
        }
    }
    let (reference, tuning, reference_runs) = reference.context("no raw producer ran")?;
    println!(
        "  reference (the raw producer's fastest tuning by median): {tuning}, {:.0} records/s",
        reference.rate
    );
    let timed_to =
        |to: fn(&ConnectorRun) -> Measured| summary(&connectors.iter().map(to).collect::<Vec<_>>());
    let acknowledged = timed_to(|c| c.acknowledged);
    for (line, measured) in [
        (
            "(CPU with its source, in this process), from its first request to the broker's last acknowledgement (the event the raw producers are timed to)",
            &acknowledged,
        ),
        ("to the last offset committed", &timed_to(|c| c.committed)),
    ] {
        println!(
            "  http-source-connector {line}: {} = {:.0}% of the reference (target >= 80% to the last acknowledgement)",
            measured.line,
            100.0 * measured.rate / reference.rate
        );
    }
    // Each round's connector against the reference tuning's run in the same round: the
    // machine's speed drifts between rounds, and this ratio cancels what both runs share.
    let mut paired: Vec<f64> = connectors
        .iter()
        .zip(reference_runs)
        .map(|(c, r)| 100.0 * c.acknowledged.rate / r.rate)
        .collect();
    // Round by round, so that runs can be pooled.
    let by_round: Vec<String> = paired.iter().map(|p| format!("{p:.0}")).collect();
    println!("  paired by round, in order (%): {}", by_round.join(" "));
    println!(
        "  paired by round (the connector against the reference tuning's run in the same round): median {:.0}% (spread {}%)",
        median(&mut paired),
        spread(&paired)
    );
    if let (Some(by_reference), Some(by_connector)) = (reference.cpu, acknowledged.cpu) {
        println!(
            "  by CPU per record with the broker ({by_connector:.2} µs against {by_reference:.2}), the connector reaches at most {:.0}% of the reference where the broker shares the cores",
            100.0 * by_reference / by_connector
        );
    }
    let mut startups: Vec<f64> = connectors
        .iter()
        .map(|c| c.startup.as_secs_f64() * 1000.0)
        .collect();
    println!(
        "  http-source-connector start-up (topics, recovery) before the first request: {:.0} ms",
        median(&mut startups)
    );
    Ok(())
}
