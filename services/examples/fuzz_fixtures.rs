//! What the admin API's fuzzing (`scripts/fuzz-admin-api.sh`) needs to find in the broker
//! beyond what it creates itself: the consumer group `fuzz-group`, lagging on the topic
//! `fuzz-lag` (3 partitions, 10 records on partition 0, offset 4 committed there, nothing on
//! the others), so that the group's detail is fuzzed with a real group and not only with a
//! 404. Reads `KAFKA_BOOTSTRAP_SERVERS`; where the topic is there already, an earlier run made
//! them, and it does nothing.

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

#[path = "../tests/support/lagging_group.rs"]
mod lagging_group;

const TOPIC: &str = "fuzz-lag";
const GROUP: &str = "fuzz-group";
const RECORDS: usize = 10;
const COMMITTED: i64 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").context("KAFKA_BOOTSTRAP_SERVERS")?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
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

    lagging_group::make(&bootstrap, TOPIC, GROUP, RECORDS, COMMITTED).await?;
    println!("{GROUP}: offset {COMMITTED} of {RECORDS} committed on {TOPIC} partition 0");
    Ok(())
}
