//! The Kafka side: one admin client, a short-lived metadata snapshot cache, and every broker
//! call bounded by the configured timeout so an unreachable broker becomes a 503, never a hang.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication, TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;

use crate::kafka_security::ClientSecurity;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use super::StartupError;
use super::error::ApiError;
use super::ffi;

/// A broker as the cluster metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Broker {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Partition {
    /// Partition id.
    pub id: i32,
    /// Leader's broker id (-1 without a leader).
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// A topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Partitions, by id.
    pub partitions: Vec<Partition>,
}

impl Topic {
    /// Replicas per partition (of the first partition; Kafka keeps them equal).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    /// Kafka's own topics (`__consumer_offsets`, …) and Confluent's (`_confluent-…`).
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__") || self.name.starts_with("_confluent")
    }
}

/// Brokers and topics at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Live brokers.
    pub brokers: Vec<Broker>,
    /// Topics by name.
    pub topics: BTreeMap<String, Topic>,
}

/// A consumer group as ListGroups/DescribeGroups report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group id.
    pub id: String,
    /// State (`Stable`, `Empty`, …).
    pub state: String,
    /// Protocol type (`consumer` for consumer groups).
    pub protocol_type: String,
    /// Members.
    pub members: Vec<Member>,
}

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// Member id.
    #[serde(rename = "member_id")]
    pub id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// A group's position on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (`None`: the group has committed nothing on this
    /// partition of a topic it consumes).
    pub committed: Option<i64>,
    /// The partition's log-end offset (high watermark).
    pub log_end: i64,
}

impl GroupOffset {
    /// Messages the group has still to consume (`None` without a committed offset, as
    /// `kafka-consumer-groups --describe` shows `-`).
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

struct Cached {
    snapshot: Arc<Snapshot>,
    at: Instant,
}

/// The cluster, as the API talks to it.
pub struct Cluster {
    admin: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
    security: ClientSecurity,
    timeout: Duration,
    max_age: Duration,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.bootstrap)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How long to wait before asking again after a broker went away mid-request.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Admin options timing a request out after `timeout`.
fn options(timeout: Duration) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout))
}

/// Runs a blocking librdkafka call on the blocking pool.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))?
}

impl Cluster {
    /// A client for `bootstrap` (no connection is made until the first call). Every call
    /// gives up after `timeout`; metadata snapshots are reused for `max_age` (zero: never).
    pub fn new(
        bootstrap: &str,
        security: &ClientSecurity,
        timeout: Duration,
        max_age: Duration,
    ) -> Result<Self, StartupError> {
        let admin: AdminClient<DefaultClientContext> = security
            .apply(&mut ClientConfig::new())
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "kafka-admin-api")
            .set("socket.timeout.ms", timeout.as_millis().max(10).to_string())
            .set("log_level", "3")
            .create()
            .map_err(|e| StartupError::KafkaClient {
                bootstrap: bootstrap.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            admin: Arc::new(admin),
            bootstrap: bootstrap.to_owned(),
            security: security.clone(),
            timeout,
            max_age,
            cache: Mutex::new(None),
        })
    }

    fn options(&self) -> AdminOptions {
        options(self.timeout)
    }

    /// Runs `attempt` with what is left of the Kafka timeout, and again while it fails as
    /// unavailable at once — the broker it asked went away mid-request, as in a rolling
    /// restart, and the next attempt asks another — until no time is left. A broker that does
    /// not answer at all uses the whole timeout in one attempt: still a 503 after it.
    async fn retrying<T, Fut>(&self, attempt: impl Fn(Duration) -> Fut) -> Result<T, ApiError>
    where
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let result = attempt(deadline.saturating_duration_since(Instant::now())).await;
            match result {
                Err(e)
                    if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE
                        && deadline.saturating_duration_since(Instant::now()) > RETRY_PAUSE * 2 =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// Fetches metadata from the broker, bypassing the cache (the readiness probe, and the
    /// floor the benchmark compares against).
    pub async fn fetch_snapshot(&self) -> Result<Snapshot, ApiError> {
        self.retrying(|timeout| self.fetch_snapshot_within(timeout))
            .await
    }

    async fn fetch_snapshot_within(&self, timeout: Duration) -> Result<Snapshot, ApiError> {
        let admin = Arc::clone(&self.admin);
        blocking("metadata", move || {
            let metadata = admin
                .inner()
                .fetch_metadata(None, timeout)
                .map_err(|e| ApiError::from_kafka("metadata", &e))?;
            let brokers = metadata
                .brokers()
                .iter()
                .map(|b| Broker {
                    id: b.id(),
                    host: b.host().to_owned(),
                    port: b.port(),
                })
                .collect();
            let topics = metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| {
                    let mut partitions: Vec<Partition> = t
                        .partitions()
                        .iter()
                        .map(|p| Partition {
                            id: p.id(),
                            leader: p.leader(),
                            replicas: p.replicas().to_vec(),
                            isr: p.isr().to_vec(),
                        })
                        .collect();
                    partitions.sort_by_key(|p| p.id);
                    (
                        t.name().to_owned(),
                        Topic {
                            name: t.name().to_owned(),
                            partitions,
                        },
                    )
                })
                .collect();
            Ok(Snapshot { brokers, topics })
        })
        .await
    }

    /// The cluster's metadata, at most `max_age` old. One fetch serves every request that
    /// waits for it.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.at.elapsed() < self.max_age
        {
            return Ok(Arc::clone(&cached.snapshot));
        }
        let snapshot = Arc::new(self.fetch_snapshot().await?);
        *cache = Some(Cached {
            snapshot: Arc::clone(&snapshot),
            at: Instant::now(),
        });
        Ok(snapshot)
    }

    /// One topic. A name the cached snapshot lacks is looked up afresh before it counts as
    /// missing, so a topic created elsewhere within `max_age` is never a false 404.
    pub async fn topic(&self, name: &str) -> Result<Option<Topic>, ApiError> {
        if let Some(topic) = self.snapshot().await?.topics.get(name) {
            return Ok(Some(topic.clone()));
        }
        self.invalidate().await;
        Ok(self.snapshot().await?.topics.get(name).cloned())
    }

    /// Forgets the cached metadata (after this API changed it).
    async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// Creates a topic.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let mut topic = NewTopic::new(
            name,
            partitions,
            TopicReplication::Fixed(replication_factor),
        );
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let results = self.admin.create_topics([&topic], &self.options()).await;
        self.changed_topics("create topic", results).await?;
        self.await_metadata(name, true).await;
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ApiError> {
        let results = self.admin.delete_topics(&[name], &self.options()).await;
        self.changed_topics("delete topic", results).await?;
        self.await_metadata(name, false).await;
        Ok(())
    }

    /// Waits (at most the Kafka timeout) until the brokers' metadata shows the topic `name`
    /// with a leader for every partition (`present`), or no longer shows it: the controllers
    /// commit a change before the brokers learn it, and a client of this API reads its own
    /// writes. The change is made either way; a wait that runs out only means a read may
    /// briefly not show it.
    async fn await_metadata(&self, name: &str, present: bool) {
        self.read_own_write(|| async {
            self.fetch_snapshot()
                .await
                .is_ok_and(|snapshot| match snapshot.topics.get(name) {
                    Some(topic) => present && topic.partitions.iter().all(|p| p.leader >= 0),
                    None => !present,
                })
        })
        .await;
    }

    /// Polls `shown` every 50 ms until it holds, for at most the Kafka timeout.
    async fn read_own_write<F, Fut>(&self, mut shown: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline && !shown().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// After a change to topics (`what`): drops the metadata snapshot, then turns the
    /// per-topic results into the API's error, if any.
    async fn changed_topics(
        &self,
        what: &str,
        results: KafkaResult<Vec<TopicResult>>,
    ) -> Result<(), ApiError> {
        let results = results.map_err(|e| ApiError::from_kafka(what, &e));
        self.invalidate().await;
        for result in results? {
            result.map_err(|(topic, code)| {
                ApiError::from_kafka_code(&format!("{what} `{topic}`"), code, "")
            })?;
        }
        Ok(())
    }

    /// A topic's configuration (sensitive values hidden).
    pub async fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        Ok(self
            .configs_of(std::iter::once(name))
            .await?
            .remove(name)
            .unwrap_or_default())
    }

    /// Each topic's `min.insync.replicas`, asked of the brokers in one request.
    pub async fn min_insync_replicas(
        &self,
        topics: impl Iterator<Item = &str>,
    ) -> Result<BTreeMap<String, usize>, ApiError> {
        Ok(self
            .configs_of(topics)
            .await?
            .into_iter()
            .filter_map(|(topic, configs)| {
                Some((topic, configs.get("min.insync.replicas")?.parse().ok()?))
            })
            .collect())
    }

    /// The configuration of each of `topics` by topic, asked of the brokers in one request
    /// (sensitive values hidden).
    async fn configs_of(
        &self,
        topics: impl Iterator<Item = &str>,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, ApiError> {
        let resources: Vec<ResourceSpecifier<'_>> = topics.map(ResourceSpecifier::Topic).collect();
        // librdkafka refuses a request for nothing (a cluster without topics).
        if resources.is_empty() {
            return Ok(BTreeMap::new());
        }
        let resources = &resources;
        let results = self
            .retrying(|timeout| async move {
                self.admin
                    .describe_configs(resources, &options(timeout))
                    .await
                    .map_err(|e| ApiError::from_kafka("describe configs", &e))
            })
            .await?;
        let mut found = BTreeMap::new();
        for result in results {
            let resource =
                result.map_err(|code| ApiError::from_kafka_code("describe configs", code, ""))?;
            let OwnedResourceSpecifier::Topic(name) = resource.specifier else {
                continue;
            };
            let configs = resource
                .entries
                .into_iter()
                .filter_map(|entry| {
                    let value = if entry.is_sensitive {
                        Some("[hidden]".to_owned())
                    } else {
                        entry.value
                    };
                    Some((entry.name, value?))
                })
                .collect();
            found.insert(name, configs);
        }
        Ok(found)
    }

    /// Sets the given keys of a topic's configuration, leaving the others as they are.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        let topic = name.to_owned();
        let entries: Vec<(String, String)> = configs.clone().into_iter().collect();
        blocking("alter configs", move || {
            ffi::incremental_alter_topic_configs(admin.inner(), &topic, &entries, timeout).map_err(
                |f| {
                    ApiError::from_kafka_code(
                        &format!("alter configs of `{topic}`"),
                        f.code,
                        &f.message,
                    )
                },
            )
        })
        .await?;
        // The brokers learn the change after the controllers commit it: a client of this API
        // reads its own write (at most the Kafka timeout is waited; the change is made either
        // way).
        self.read_own_write(|| async {
            self.topic_configs(name).await.is_ok_and(|now| {
                configs
                    .iter()
                    .all(|(key, value)| now.get(key).is_none_or(|v| v == value || v == "[hidden]"))
            })
        })
        .await;
        Ok(())
    }

    /// Every consumer group, or only `id`.
    pub async fn groups(&self, id: Option<&str>) -> Result<Vec<GroupSummary>, ApiError> {
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        let id = id.map(str::to_owned);
        blocking("list groups", move || {
            let list = admin
                .inner()
                .fetch_group_list(id.as_deref(), timeout)
                .map_err(|e| ApiError::from_kafka("list groups", &e))?;
            let mut groups: Vec<GroupSummary> = list
                .groups()
                .iter()
                .map(|g| GroupSummary {
                    id: g.name().to_owned(),
                    state: g.state().to_owned(),
                    protocol_type: g.protocol_type().to_owned(),
                    members: g
                        .members()
                        .iter()
                        .map(|m| Member {
                            id: m.id().to_owned(),
                            client_id: m.client_id().to_owned(),
                            client_host: m.client_host().to_owned(),
                        })
                        .collect(),
                })
                .collect();
            groups.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(groups)
        })
        .await
    }

    /// A group's committed offsets on every partition it has committed to, with each
    /// partition's log-end offset.
    pub async fn group_offsets(&self, id: &str) -> Result<Vec<GroupOffset>, ApiError> {
        let snapshot = self.snapshot().await?;
        let bootstrap = self.bootstrap.clone();
        let security = self.security.clone();
        let timeout = self.timeout;
        let group = id.to_owned();
        blocking("group offsets", move || {
            let consumer: BaseConsumer = security
                .apply(&mut ClientConfig::new())
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("client.id", "kafka-admin-api")
                .set("log_level", "3")
                .create()
                .map_err(|e| ApiError::internal(format!("cannot create the Kafka client: {e}")))?;
            let mut all = TopicPartitionList::new();
            for topic in snapshot.topics.values().filter(|t| !t.is_internal()) {
                for p in &topic.partitions {
                    all.add_partition(&topic.name, p.id);
                }
            }
            if all.count() == 0 {
                return Ok(Vec::new());
            }
            let committed = consumer
                .committed_offsets(all, timeout)
                .map_err(|e| ApiError::from_kafka("committed offsets", &e))?;
            // Every partition of each topic the group has committed on, committed or not.
            let committed_at: BTreeMap<(String, i32), i64> = committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) => Some(((e.topic().to_owned(), e.partition()), offset)),
                    _ => None,
                })
                .collect();
            let topics: BTreeSet<&str> = committed_at.keys().map(|(t, _)| t.as_str()).collect();
            if topics.is_empty() {
                return Ok(Vec::new());
            }
            let mut ends = TopicPartitionList::new();
            for topic in snapshot
                .topics
                .values()
                .filter(|t| topics.contains(t.name.as_str()))
            {
                for p in &topic.partitions {
                    ends.add_partition_offset(&topic.name, p.id, Offset::End)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                }
            }
            let ends = consumer
                .offsets_for_times(ends, timeout)
                .map_err(|e| ApiError::from_kafka("log-end offsets", &e))?;
            Ok(ends
                .elements()
                .iter()
                .map(|e| {
                    let key = (e.topic().to_owned(), e.partition());
                    let committed = committed_at.get(&key).copied();
                    let log_end = match e.offset() {
                        Offset::Offset(o) => o,
                        _ => committed.unwrap_or(0),
                    };
                    GroupOffset {
                        topic: key.0,
                        partition: key.1,
                        committed,
                        log_end,
                    }
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_configs_of_no_topic_are_none_without_asking_a_broker() {
        // Nothing listens on port 9: a request would fail; none is made.
        let cluster = Cluster::new(
            "127.0.0.1:9",
            &ClientSecurity::default(),
            Duration::from_millis(200),
            Duration::ZERO,
        )
        .map_err(|e| e.to_string());
        let Ok(cluster) = cluster else {
            panic!("{cluster:?}")
        };
        let min_isr = cluster.min_insync_replicas(std::iter::empty()).await;
        assert_eq!(min_isr.map_err(|e| e.to_string()), Ok(BTreeMap::new()));
    }
}
