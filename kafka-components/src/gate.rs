//! The rolling restart's gate: Kafka's nodes change one at a time, each only when the
//! cluster can lose it and the next only once the cluster is whole again, read through the
//! admin API's `GET /cluster/health` (cp-ansible's and Strimzi's checks).
//!
//! - Before a broker: it is not live (stopping it costs nothing), or no partition would
//!   fall under its `min.insync.replicas` without it and none is offline.
//! - After a broker: it is live (registered and unfenced) and no partition is offline,
//!   under its min ISR or under-replicated.
//! - Before and after a controller: no partition is offline or under-replicated (its own
//!   probe already waited for the quorum to have a leader).

use std::collections::BTreeMap;

use async_trait::async_trait;
use iac_core::{Gate, GateAnswer, GatePhase};
use serde::Deserialize;
use serde_json::Value;

/// The parts of the admin API's `GET /cluster/health` the gate reads.
#[derive(Debug, Deserialize)]
struct Health {
    brokers: Vec<i32>,
    offline_partitions: usize,
    under_min_isr_partitions: usize,
    under_replicated_partitions: usize,
    #[serde(default)]
    unhealthy: Vec<Unhealthy>,
    under_min_isr_without_broker: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
struct Unhealthy {
    topic: String,
    partition: i32,
    isr: Vec<i32>,
}

/// The gate of a Kafka cluster's rolling group: its input is the admin API's base URL.
#[derive(Debug, Clone)]
pub struct KafkaGate {
    /// Each broker member's resource name with its broker id.
    brokers: BTreeMap<String, i32>,
}

impl KafkaGate {
    /// A gate for the brokers `brokers` (resource name, broker id); every other member is a
    /// controller.
    pub fn new(brokers: impl IntoIterator<Item = (String, i32)>) -> Self {
        Self {
            brokers: brokers.into_iter().collect(),
        }
    }

    /// The answer `health` gives about `member` at `phase`.
    fn judge(&self, phase: GatePhase, member: &str, health: &Health) -> GateAnswer {
        let broker = self.brokers.get(member).copied();
        let live = broker.is_some_and(|id| health.brokers.contains(&id));
        if phase == GatePhase::Before && broker.is_some() && !live {
            // Down already (a configuration it could not start with): restarting it can
            // only help.
            return GateAnswer::Pass;
        }
        if health.offline_partitions > 0 {
            return wait(
                health,
                format!("{} offline partition(s)", health.offline_partitions),
            );
        }
        match (phase, broker) {
            (GatePhase::Before, Some(id)) => {
                match health.under_min_isr_without_broker.get(&id.to_string()) {
                    Some(0) => GateAnswer::Pass,
                    Some(n) => wait(
                        health,
                        format!(
                            "{n} partition(s) would fall under their min.insync.replicas without broker {id}"
                        ),
                    ),
                    None => GateAnswer::Wait(format!("the admin API does not report broker {id}")),
                }
            }
            (GatePhase::After, Some(id)) if !live => GateAnswer::Wait(format!(
                "broker {id} is not back in the cluster yet (live: {:?})",
                health.brokers
            )),
            _ if health.under_min_isr_partitions + health.under_replicated_partitions > 0 => wait(
                health,
                format!(
                    "{} under-replicated partition(s), {} under their min.insync.replicas",
                    health.under_replicated_partitions, health.under_min_isr_partitions
                ),
            ),
            _ => GateAnswer::Pass,
        }
    }
}

/// Waiting, with the first unhealthy partitions named.
fn wait(health: &Health, why: String) -> GateAnswer {
    let named: Vec<String> = health
        .unhealthy
        .iter()
        .take(3)
        .map(|p| format!("{}-{} (in sync: {:?})", p.topic, p.partition, p.isr))
        .collect();
    if named.is_empty() {
        GateAnswer::Wait(why)
    } else {
        GateAnswer::Wait(format!("{why}: {}", named.join(", ")))
    }
}

#[async_trait]
impl Gate for KafkaGate {
    fn describe(&self) -> String {
        "each node only when no partition would fall under its min.insync.replicas, the next once it is back and no partition is under-replicated (the admin API's /cluster/health)".to_owned()
    }

    async fn ask(&self, phase: GatePhase, member: &str, input: &Value) -> GateAnswer {
        let Some(base) = input.as_str() else {
            return GateAnswer::Wait(format!("the admin API's address is not known: {input}"));
        };
        let url = format!("{}/cluster/health", base.trim_end_matches('/'));
        match iac_local::http_get_body(&url).await {
            None => GateAnswer::Wait(format!("{url} does not answer: is the admin API running?")),
            Some((200, body)) => match serde_json::from_str::<Health>(&body) {
                Ok(health) => self.judge(phase, member, &health),
                Err(e) => GateAnswer::Wait(format!("{url} answered what is not its health: {e}")),
            },
            Some((status, body)) => GateAnswer::Wait(format!(
                "{url} answers {status}: {}",
                body.chars().take(200).collect::<String>()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(text: &str) -> Health {
        match serde_json::from_str(text) {
            Ok(health) => health,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_broker_rolls_only_when_the_cluster_can_lose_it_and_the_next_once_it_is_back() {
        let gate = KafkaGate::new([("broker-1".to_owned(), 1), ("broker-2".to_owned(), 2)]);
        let whole = health(
            r#"{"brokers":[1,2,3],"offline_partitions":0,"under_min_isr_partitions":0,"under_replicated_partitions":0,"unhealthy":[],"under_min_isr_without_broker":{"1":0,"2":0,"3":0}}"#,
        );
        for phase in [GatePhase::Before, GatePhase::After] {
            assert_eq!(gate.judge(phase, "broker-2", &whole), GateAnswer::Pass);
            assert_eq!(gate.judge(phase, "controller-1", &whole), GateAnswer::Pass);
        }
        // Broker 2 restarting: not back yet, then back but catching up.
        let away = health(
            r#"{"brokers":[1,3],"offline_partitions":0,"under_min_isr_partitions":0,"under_replicated_partitions":1,"unhealthy":[{"topic":"orders","partition":0,"isr":[1,3]}],"under_min_isr_without_broker":{"1":1,"3":1}}"#,
        );
        assert_eq!(
            gate.judge(GatePhase::After, "broker-2", &away),
            GateAnswer::Wait("broker 2 is not back in the cluster yet (live: [1, 3])".to_owned())
        );
        let catching_up = health(
            r#"{"brokers":[1,2,3],"offline_partitions":0,"under_min_isr_partitions":0,"under_replicated_partitions":1,"unhealthy":[{"topic":"orders","partition":0,"isr":[1,3]}],"under_min_isr_without_broker":{"1":1,"2":0,"3":1}}"#,
        );
        assert_eq!(
            gate.judge(GatePhase::After, "broker-2", &catching_up),
            GateAnswer::Wait("1 under-replicated partition(s), 0 under their min.insync.replicas: orders-0 (in sync: [1, 3])".to_owned())
        );
        // Broker 1 may not stop while orders-0 has only two in-sync replicas.
        assert_eq!(
            gate.judge(GatePhase::Before, "broker-1", &catching_up),
            GateAnswer::Wait("1 partition(s) would fall under their min.insync.replicas without broker 1: orders-0 (in sync: [1, 3])".to_owned())
        );
        // A broker that is down already may be restarted (a fixed configuration).
        assert_eq!(
            gate.judge(GatePhase::Before, "broker-2", &away),
            GateAnswer::Pass
        );
    }
}
