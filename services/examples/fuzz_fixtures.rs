//! What the admin API's fuzzing (`scripts/fuzz-admin-api.sh`) needs to find in the broker
//! beyond what it creates itself: the consumer group `fuzz-group`, lagging on the topic
//! `fuzz-lag` (3 partitions, 10 records on partition 0, offset 4 committed there, nothing on
//! the others), so that the group's detail is fuzzed with a real group and not only with a
//! 404. Reads `KAFKA_BOOTSTRAP_SERVERS`; where the topic is there already, an earlier run made
//! them, and it does nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "fuzz-lag";
const GROUP: &str = "fuzz-group";
const RECORDS: usize = 10;
const COMMITTED: i64 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").context("KAFKA_BOOTSTRAP_SERVERS")?;
    let client = |group: Option<&str>| {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &bootstrap);
        if let Some(group) = group {
            config
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest");
        }
        config
    };

    let admin: AdminClient<DefaultClientContext> = client(None).create()?;
    let created = admin
        .create_topics(
            [&NewTopic::new(TOPIC, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for result in created {
        match result {
            Ok(_) => {}
            // A run before made it, records and group too.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Ok(()),
            Err((topic, code)) => bail!("creating {topic}: {code}"),
        }
    }

    let producer: FutureProducer = client(None).create()?;
    for i in 0..RECORDS {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(TOPIC).partition(0).key(&key).payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {TOPIC}: {e}"))?;
    }

    // The group joins and consumes before it commits, as a real consumer does.
    let consumer: BaseConsumer = client(Some(GROUP)).create()?;
    consumer.subscribe(&[TOPIC])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut consumed = 0;
    while consumed < COMMITTED {
        if Instant::now() > deadline {
            bail!("{GROUP} consumed {consumed} of {COMMITTED} records from {TOPIC} in 30 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            message?;
            consumed += 1;
        }
    }
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(TOPIC, 0, Offset::Offset(COMMITTED))?;
    consumer.commit(&commit, CommitMode::Sync)?;
    println!("{GROUP}: offset {COMMITTED} of {RECORDS} committed on {TOPIC} partition 0");
    Ok(())
}
