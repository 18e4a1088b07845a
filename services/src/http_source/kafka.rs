//! The connector's Kafka side: the idempotent producer, the two topics it needs, and recovery
//! at start — the committed offset, and the records produced after it that a restart must not
//! produce again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::config::ConnectorConfig;
use super::offset::{StoredOffset, offset_key};

/// A record as it sits in the topic: key and value bytes.
pub(crate) type RecordBytes = (Option<Vec<u8>>, Vec<u8>);

/// Why Kafka work at start did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// The broker did not answer (yet): wait and retry.
    #[error("waiting for the broker: {0}")]
    Unavailable(String),
    /// The broker refused something retrying will not change.
    #[error("{0}")]
    Refused(String),
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> StartError {
    StartError::Unavailable(format!("{what}: {error}"))
}

fn client_config(config: &ConnectorConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in &config.producer.0 {
        client.set(key, value);
    }
    client
}

/// The broker's answers for a group of records (a page's, an offset record): complete once
/// it is sealed with the number of records sent and every one of them is answered; the log
/// end each partition reached, or the first refusal. Sending a record only hands it the
/// group's handle; each answer takes the group's lock and counts down its one counter, and
/// copies no record.
pub(crate) struct Acks {
    /// Records sent (added once, at sealing) less records answered (subtracted as they are):
    /// below zero before sealing, zero exactly when the sealed group is complete.
    outstanding: AtomicIsize,
    answered: Mutex<Answered>,
    complete: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Answered {
    log_end: BTreeMap<i32, i64>,
    refused: Option<KafkaError>,
}

impl Acks {
    /// A group with nothing sent yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            outstanding: AtomicIsize::new(0),
            answered: Mutex::new(Answered::default()),
            complete: tokio::sync::watch::Sender::new(false),
        })
    }

    /// No more records join the group: `sent` of them were handed to the producer with it.
    pub(crate) fn seal(&self, sent: usize) {
        self.settled(isize::try_from(sent).unwrap_or(isize::MAX));
    }

    /// Adds `change` to the records outstanding; the change that leaves none completes it.
    fn settled(&self, change: isize) {
        if self.outstanding.fetch_add(change, Ordering::AcqRel) + change == 0 {
            self.complete.send_replace(true);
        }
    }

    fn answer(&self, result: &DeliveryResult<'_>) {
        {
            let mut answered = self.answered.lock().unwrap_or_else(PoisonError::into_inner);
            match result {
                Ok(message) => {
                    let end = answered.log_end.entry(message.partition()).or_default();
                    *end = (*end).max(message.offset() + 1);
                }
                Err((error, _)) => {
                    answered.refused.get_or_insert_with(|| error.clone());
                }
            }
        }
        self.settled(-1);
    }

    /// Waits until every record of the sealed group is answered: the log end per partition
    /// they reached, or the first refusal.
    pub(crate) async fn wait(&self) -> Result<BTreeMap<i32, i64>, KafkaError> {
        let mut complete = self.complete.subscribe();
        // The sender lives in `self`: the wait ends only with completion.
        let _ = complete.wait_for(|done| *done).await;
        let mut answered = self.answered.lock().unwrap_or_else(PoisonError::into_inner);
        match answered.refused.take() {
            Some(error) => Err(error),
            None => Ok(std::mem::take(&mut answered.log_end)),
        }
    }
}

/// The producer's context: each delivery answers the record's group.
pub(crate) struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<Acks>;

    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        acks.answer(result);
    }
}

/// The connector's producer.
pub(crate) type Producer = ThreadedProducer<AckContext>;

/// The producer settings the connector chooses where the file sets none of their names (each
/// setting with its aliases): no delivery timeout, so records wait in the producer while the
/// broker is away instead of failing; and a 20 ms linger, so a page's records go out in
/// batches a few pages large (a broker spends less per record on larger batches; librdkafka's
/// 5 ms sends each page in several) at the cost of 20 ms before a page's commit.
pub const PRODUCER_DEFAULTS: &[(&[&str], &str)] = &[
    (&["message.timeout.ms", "delivery.timeout.ms"], "0"),
    (&["linger.ms", "queue.buffering.max.ms"], "20"),
];

/// The producer: idempotent, acks=all, and [`PRODUCER_DEFAULTS`] unless the file says
/// otherwise.
pub(crate) fn producer(config: &ConnectorConfig) -> Result<Producer, KafkaError> {
    producer_config(config).create_with_context(AckContext)
}

fn producer_config(config: &ConnectorConfig) -> ClientConfig {
    let mut client = client_config(config);
    client.set("enable.idempotence", "true").set("acks", "all");
    for (names, value) in PRODUCER_DEFAULTS {
        if !names
            .iter()
            .any(|name| config.producer.0.contains_key(*name))
        {
            client.set(names[0], *value);
        }
    }
    client
}

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// The committed offset record, if any.
    pub(crate) stored: Option<StoredOffset>,
    /// The target topic's log end per partition now (where the next commit's positions
    /// start from).
    pub(crate) log_end: BTreeMap<i32, i64>,
    /// Records produced after the committed offset (by the run that stopped before
    /// committing them), with how often each occurs.
    pub(crate) produced_after_commit: HashMap<RecordBytes, usize>,
}

/// Creates the target topic and the compacted offset topic if they are missing.
pub(crate) async fn ensure_topics(
    config: &ConnectorConfig,
    timeout: Duration,
) -> Result<(), StartError> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(
        client_config(config)
            .create()
            .map_err(|e| StartError::Refused(format!("Kafka client: {e}")))?,
    );
    let wanted = [
        (
            config.topic.as_str(),
            config.topic_partitions,
            config.topic_replication_factor,
            None,
        ),
        (
            config.offset_topic.as_str(),
            1,
            config.offset_topic_replication_factor,
            Some("compact"),
        ),
    ];
    // librdkafka's metadata call blocks: off the async workers.
    let existing: Vec<String> = tokio::task::spawn_blocking({
        let admin = Arc::clone(&admin);
        move || {
            admin.inner().fetch_metadata(None, timeout).map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| t.name().to_owned())
                    .collect()
            })
        }
    })
    .await
    .map_err(|e| StartError::Refused(format!("reading metadata: {e}")))?
    .map_err(|e| unavailable("reading metadata", e))?;
    let missing: Vec<NewTopic<'_>> = wanted
        .iter()
        .filter(|(name, ..)| !existing.iter().any(|e| e == name))
        .map(|(name, partitions, replication, cleanup)| {
            let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(*replication));
            match cleanup {
                Some(policy) => topic.set("cleanup.policy", policy),
                None => topic,
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let results = admin
        .create_topics(
            missing.iter(),
            &AdminOptions::new().operation_timeout(Some(timeout)),
        )
        .await
        .map_err(|e| unavailable("creating topics", e))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StartError::Refused(format!(
                    "cannot create topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}

/// The recovery consumer's client context: reaching the end of a partition is what recovery
/// reads for, not an error (librdkafka reports it through the error callback too).
struct RecoveryContext;

impl ClientContext for RecoveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(partition) => {
                tracing::debug!(partition, "recovery read to the end of a partition");
            }
            error => tracing::warn!(%error, reason, "recovery consumer"),
        }
    }
}

impl ConsumerContext for RecoveryContext {}

/// Reads the committed offset and the records produced after it. Blocking: run it on a
/// blocking thread.
pub(crate) fn recover(
    config: &ConnectorConfig,
    timeout: Duration,
) -> Result<Recovered, StartError> {
    let consumer: BaseConsumer<RecoveryContext> = client_config(config)
        .set("group.id", format!("{}-recovery", config.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // An empty or fully read partition answers at once instead of after the default
        // half second: recovery reads to the end and stops.
        .set("fetch.wait.max.ms", "10")
        // A start before the log's beginning (retention) reads from the beginning.
        .set("auto.offset.reset", "earliest")
        .create_with_context(RecoveryContext)
        .map_err(|e| StartError::Refused(format!("Kafka client: {e}")))?;
    let offset_partitions = partitions(&consumer, &config.offset_topic, timeout)?;
    let stored = stored_offset(&consumer, config, offset_partitions, timeout)?;
    // After a commit: from the committed positions. Before the first: from the end (the
    // high watermark is where to start looking for it; the log end is where reading stops).
    let starts: Vec<(i32, i64)> = partitions(&consumer, &config.topic, timeout)?
        .into_iter()
        .map(|(partition, low, high)| {
            let start = match &stored {
                Some(stored) => stored.positions.get(&partition).copied().unwrap_or(low),
                None => high,
            };
            (partition, start.max(low))
        })
        .collect();
    let mut produced_after_commit: HashMap<RecordBytes, usize> = HashMap::new();
    let starts_of: BTreeMap<i32, i64> = starts.iter().copied().collect();
    let log_end = read_to_end(
        &consumer,
        &config.topic,
        &starts,
        batch_records(config),
        timeout,
        |partition, offset, k, v| {
            let after_commit = starts_of
                .get(&partition)
                .is_some_and(|start| offset >= *start);
            if stored.is_some() && after_commit {
                *produced_after_commit
                    .entry((
                        k.map(<[u8]>::to_vec),
                        v.map(<[u8]>::to_vec).unwrap_or_default(),
                    ))
                    .or_default() += 1;
            }
        },
    )?;
    Ok(Recovered {
        stored,
        log_end,
        produced_after_commit,
    })
}

/// (partition, low watermark, high watermark) of each partition of `topic`.
fn partitions(
    consumer: &BaseConsumer<RecoveryContext>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>, StartError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| unavailable("reading metadata", e))?;
    let mut out = Vec::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), timeout)
            .map_err(|e| unavailable("reading watermarks", e))?;
        out.push((partition.id(), low, high));
    }
    Ok(out)
}

/// The connector's last committed offset: the last record under its key in the offset
/// topic (whose `partitions` are read from their start).
fn stored_offset(
    consumer: &BaseConsumer<RecoveryContext>,
    config: &ConnectorConfig,
    partitions: Vec<(i32, i64, i64)>,
    timeout: Duration,
) -> Result<Option<StoredOffset>, StartError> {
    let key = offset_key(&config.name, &config.topic);
    let mut stored: Option<StoredOffset> = None;
    let starts: Vec<(i32, i64)> = partitions
        .into_iter()
        .map(|(partition, low, _)| (partition, low))
        .collect();
    read_to_end(
        consumer,
        &config.offset_topic,
        &starts,
        0,
        timeout,
        |_, _, k, v| {
            if k == Some(key.as_slice()) {
                // A record that is not ours to parse (or a tombstone) resets to "no offset".
                stored = v.and_then(|v| serde_json::from_slice(v).ok());
            }
        },
    )?;
    Ok(stored)
}

/// The most records librdkafka puts in one batch (`batch.num.messages`).
fn batch_records(config: &ConnectorConfig) -> i64 {
    config
        .producer
        .0
        .get("batch.num.messages")
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Reads each partition of `topic` from its start to its end (until the broker says
/// end-of-partition: some brokers' high watermarks lag the log end), in order per
/// partition, and returns the log end of each. Reading begins up to `lead` records before
/// each start, because some brokers answer a fetch from inside a record batch with the
/// batches after it; `each` sees every record read, with its partition and offset.
fn read_to_end(
    consumer: &BaseConsumer<RecoveryContext>,
    topic: &str,
    starts: &[(i32, i64)],
    lead: i64,
    timeout: Duration,
    mut each: impl FnMut(i32, i64, Option<&[u8]>, Option<&[u8]>),
) -> Result<BTreeMap<i32, i64>, StartError> {
    let mut assignment = TopicPartitionList::new();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for &(partition, start) in starts {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset((start - lead).max(0)))
            .map_err(|e| StartError::Refused(format!("reading {topic}: {e}")))?;
        ends.insert(partition, start);
    }
    if ends.is_empty() {
        return Ok(ends);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| unavailable(&format!("reading {topic}"), e))?;
    let mut open: BTreeSet<i32> = ends.keys().copied().collect();
    let mut deadline = Instant::now() + timeout;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(StartError::Unavailable(format!(
                "reading {topic}: no progress within {}",
                humantime::format_duration(timeout)
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(e)) => return Err(unavailable(&format!("reading {topic}"), e)),
            Some(Ok(message)) => {
                deadline = Instant::now() + timeout;
                if let Some(end) = ends.get_mut(&message.partition()) {
                    each(
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.payload(),
                    );
                    *end = (*end).max(message.offset() + 1);
                }
            }
        }
    }
    consumer
        .unassign()
        .map_err(|e| unavailable(&format!("reading {topic}"), e))?;
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::{Acks, producer_config};
    use crate::http_source::source::tests::config;

    #[test]
    fn the_connector_s_producer_settings_give_way_to_the_file_s() {
        let chosen = producer_config(&config(json!({})));
        assert_eq!(chosen.get("linger.ms"), Some("20"));
        assert_eq!(chosen.get("message.timeout.ms"), Some("0"));
        assert_eq!(chosen.get("enable.idempotence"), Some("true"));
        assert_eq!(chosen.get("acks"), Some("all"));

        let file = producer_config(&config(json!({
            "producer.queue.buffering.max.ms": "0",
            "producer.delivery.timeout.ms": "60000",
        })));
        assert_eq!(file.get("linger.ms"), None, "an alias set in the file wins");
        assert_eq!(file.get("queue.buffering.max.ms"), Some("0"));
        assert_eq!(file.get("message.timeout.ms"), None);
        assert_eq!(file.get("delivery.timeout.ms"), Some("60000"));
    }

    #[tokio::test]
    async fn a_group_completes_once_sealed_and_every_record_is_answered() {
        let acks = Acks::new();
        // One of two records answered before the group is sealed.
        acks.settled(-1);
        acks.seal(2);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), acks.wait())
                .await
                .is_err(),
            "one record is still unanswered"
        );
        acks.settled(-1);
        let answered = tokio::time::timeout(Duration::from_secs(5), acks.wait()).await;
        assert!(
            matches!(answered, Ok(Ok(ref ends)) if ends.is_empty()),
            "{answered:?}"
        );

        let early = Acks::new();
        early.settled(-1);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), early.wait())
                .await
                .is_err(),
            "an unsealed group is not complete, however many records are answered"
        );
        early.seal(1);
        assert!(early.wait().await.is_ok(), "sealed after its one answer");

        let empty = Acks::new();
        empty.seal(0);
        assert!(
            empty.wait().await.is_ok(),
            "a sealed group of nothing is complete"
        );
    }
}
