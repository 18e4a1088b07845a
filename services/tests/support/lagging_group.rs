//! A consumer group lagging on a topic, for the admin API's tests and its fuzzing: `records`
//! records on partition 0 of an existing topic, of which the group consumes `committed` and
//! commits that offset, joining the group first as a real consumer does.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

pub(crate) async fn make(
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: usize,
    committed: i64,
) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for i in 0..records {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(topic).partition(0).key(&key).payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut consumed = 0;
    while consumed < committed {
        if Instant::now() > deadline {
            bail!(
                "{group} consumed {consumed} of {committed} records from {topic} in 30 s: is the broker at {bootstrap} serving it?"
            );
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.with_context(|| format!("{group} consuming {topic}"))?;
            if message.partition() != 0 {
                bail!(
                    "{group} read partition {} of {topic}, which has records only on 0",
                    message.partition()
                );
            }
            consumed += 1;
        }
    }
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(topic, 0, Offset::Offset(committed))?;
    consumer.commit(&commit, CommitMode::Sync)?;
    Ok(())
}
