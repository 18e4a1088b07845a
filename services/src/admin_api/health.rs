//! `GET /cluster/health`: what an operator (or a rolling restart's gate) asks before touching a
//! node — the live brokers, and the partitions that are offline, under their
//! `min.insync.replicas` or under-replicated, counted as the brokers' and controllers' own
//! metrics count them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::kafka::Snapshot;

/// The most unhealthy partitions one answer lists (the counts are always whole).
pub const LISTED_AT_MOST: usize = 100;

/// What is wrong with a partition, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// No leader: it can be neither written nor read.
    Offline,
    /// Fewer in-sync replicas than the topic's `min.insync.replicas`: `acks=all` writes are
    /// refused.
    UnderMinIsr,
    /// Fewer in-sync replicas than replicas.
    UnderReplicated,
}

/// A partition that is not whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnhealthyPartition {
    /// Topic.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Its worst problem.
    pub problem: Problem,
    /// Leader's broker id (-1 without a leader).
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// `GET /cluster/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterHealth {
    /// At least one live broker, and no partition offline, under its min ISR or
    /// under-replicated.
    pub healthy: bool,
    /// Live brokers (registered and unfenced), by id.
    pub brokers: Vec<i32>,
    /// Partitions of every topic, Kafka's own included.
    pub partitions: usize,
    /// Partitions without a leader.
    pub offline_partitions: usize,
    /// Partitions with a leader and fewer in-sync replicas than their topic's
    /// `min.insync.replicas` (as Kafka's `UnderMinIsrPartitionCount` counts them).
    pub under_min_isr_partitions: usize,
    /// Partitions with fewer in-sync replicas than replicas.
    pub under_replicated_partitions: usize,
    /// The partitions counted above, worst first, at most 100.
    pub unhealthy: Vec<UnhealthyPartition>,
    /// For each live broker (by id), how many partitions would fall under their
    /// `min.insync.replicas` were it to stop now: a broker may be restarted when it is 0.
    pub under_min_isr_without_broker: BTreeMap<String, usize>,
}

/// The health of the cluster `snapshot` shows, with each topic's `min.insync.replicas`
/// (a topic missing from `min_isr` counts with 1: only an empty ISR is under it).
pub fn assess(snapshot: &Snapshot, min_isr: &BTreeMap<String, usize>) -> ClusterHealth {
    let mut brokers: Vec<i32> = snapshot.brokers.iter().map(|b| b.id).collect();
    brokers.sort_unstable();
    let (mut partitions, mut offline, mut under_min_isr, mut under_replicated) = (0, 0, 0, 0);
    let mut unhealthy = Vec::new();
    let mut without: BTreeMap<String, usize> =
        brokers.iter().map(|id| (id.to_string(), 0)).collect();
    for topic in snapshot.topics.values() {
        let least = min_isr.get(&topic.name).copied().unwrap_or(1);
        for partition in &topic.partitions {
            partitions += 1;
            let has_leader = partition.leader >= 0;
            let short = partition.isr.len() < partition.replicas.len();
            let below_min = has_leader && partition.isr.len() < least;
            offline += usize::from(!has_leader);
            under_min_isr += usize::from(below_min);
            under_replicated += usize::from(short);
            // Stopping a broker of its ISR leaves one in-sync replica fewer.
            if partition.isr.len() <= least {
                for id in &partition.isr {
                    if let Some(count) = without.get_mut(&id.to_string()) {
                        *count += 1;
                    }
                }
            }
            let problem = if !has_leader {
                Problem::Offline
            } else if below_min {
                Problem::UnderMinIsr
            } else if short {
                Problem::UnderReplicated
            } else {
                continue;
            };
            unhealthy.push(UnhealthyPartition {
                topic: topic.name.clone(),
                partition: partition.id,
                problem,
                leader: partition.leader,
                replicas: partition.replicas.clone(),
                isr: partition.isr.clone(),
            });
        }
    }
    unhealthy.sort_by(|a, b| {
        (a.problem, &a.topic, a.partition).cmp(&(b.problem, &b.topic, b.partition))
    });
    unhealthy.truncate(LISTED_AT_MOST);
    ClusterHealth {
        healthy: !brokers.is_empty() && unhealthy.is_empty(),
        brokers,
        partitions,
        offline_partitions: offline,
        under_min_isr_partitions: under_min_isr,
        under_replicated_partitions: under_replicated,
        unhealthy,
        under_min_isr_without_broker: without,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_api::kafka::{Broker, Partition, Topic};

    fn partition(id: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> Partition {
        Partition {
            id,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn snapshot(brokers: &[i32], topics: Vec<(&str, Vec<Partition>)>) -> Snapshot {
        Snapshot {
            brokers: brokers
                .iter()
                .map(|&id| Broker {
                    id,
                    host: "127.0.0.1".to_owned(),
                    port: 9092,
                })
                .collect(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| {
                    (
                        name.to_owned(),
                        Topic {
                            name: name.to_owned(),
                            partitions,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_whole_cluster_is_healthy() {
        let whole = snapshot(
            &[3, 1, 2],
            vec![("orders", vec![partition(0, 1, &[1, 2, 3], &[1, 2, 3])])],
        );
        let health = assess(&whole, &BTreeMap::from([("orders".to_owned(), 2)]));
        assert!(health.healthy);
        assert_eq!(health.brokers, [1, 2, 3]);
        assert_eq!(health.partitions, 1);
        assert_eq!(health.unhealthy, []);
        // Any one broker may stop: two in-sync replicas stay.
        let without: Vec<(&str, usize)> = health
            .under_min_isr_without_broker
            .iter()
            .map(|(id, n)| (id.as_str(), *n))
            .collect();
        assert_eq!(without, [("1", 0), ("2", 0), ("3", 0)]);
    }

    #[test]
    fn each_partition_is_counted_as_kafka_counts_it_and_listed_worst_first() {
        // One broker of three away: one partition short of a replica, one under its min ISR
        // of 2, one without a leader; a partition of a topic without a known min ISR.
        let degraded = snapshot(
            &[1, 3],
            vec![
                (
                    "orders",
                    vec![
                        partition(0, 1, &[1, 2, 3], &[1, 3]),
                        partition(1, 3, &[2, 3, 1], &[3]),
                        partition(2, -1, &[2], &[2]),
                    ],
                ),
                ("audit", vec![partition(0, 1, &[1, 2], &[1])]),
            ],
        );
        let health = assess(&degraded, &BTreeMap::from([("orders".to_owned(), 2)]));
        assert!(!health.healthy);
        assert_eq!(health.partitions, 4);
        assert_eq!(health.offline_partitions, 1);
        // Kafka's UnderMinIsrPartitionCount is the leaders' count: an offline partition has
        // none, and audit's min ISR is unknown here (1).
        assert_eq!(health.under_min_isr_partitions, 1);
        assert_eq!(health.under_replicated_partitions, 3);
        let listed: Vec<(&str, i32, Problem)> = health
            .unhealthy
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.problem))
            .collect();
        assert_eq!(
            listed,
            [
                ("orders", 2, Problem::Offline),
                ("orders", 1, Problem::UnderMinIsr),
                ("audit", 0, Problem::UnderReplicated),
                ("orders", 0, Problem::UnderReplicated),
            ]
        );
        // Broker 1 holds orders-0 at its min ISR and audit's last replica; broker 3
        // orders-0 and orders-1: neither may stop. Broker 2 is not live.
        let without: Vec<(&str, usize)> = health
            .under_min_isr_without_broker
            .iter()
            .map(|(id, n)| (id.as_str(), *n))
            .collect();
        assert_eq!(without, [("1", 2), ("3", 2)]);
    }

    #[test]
    fn no_broker_is_never_healthy_and_the_list_is_bounded() {
        assert!(!assess(&Snapshot::default(), &BTreeMap::new()).healthy);
        let many = (0..150).map(|id| partition(id, -1, &[1], &[])).collect();
        let health = assess(&snapshot(&[1], vec![("t", many)]), &BTreeMap::new());
        assert_eq!(health.offline_partitions, 150);
        assert_eq!(health.unhealthy.len(), LISTED_AT_MOST);
    }
}
