//! The rolling restart's gate: Kafka's nodes change one at a time, each only when the
//! cluster can lose it and the next only once the cluster is whole again, read through the
//! admin API's `GET /cluster/health` (cp-ansible's and Strimzi's checks), and the quorum's
//! leader as each controller's JMX exporter reports it (directly, or through Prometheus's
//! federation where the exporters are not reachable: on AWS).
//!
//! The gate's input is where it reads: `{"admin_api": "http://…", "prometheus": "http://…"}`
//! (Prometheus only for controllers read through it).
//!
//! - Before a broker: it is not live (stopping it costs nothing), or no partition would
//!   fall under its `min.insync.replicas` without it and none is offline.
//! - After a broker: it is live (registered and unfenced) and no partition is offline,
//!   under its min ISR or under-replicated.
//! - Before a controller: it is not serving (down, or it knows no quorum leader: stopping it
//!   costs nothing), or the quorum keeps a majority without it — the other controllers that
//!   know a leader are a majority of all. Partitions do not matter: they live on brokers.
//! - After a controller: it knows the quorum's leader again (it has rejoined).

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
    /// Each controller member by resource name.
    controllers: BTreeMap<String, Controller>,
}

/// A controller member: its KRaft node id and where its JMX exporter reports the quorum's
/// leader (`kafka_server_raft_metrics_current_leader`).
#[derive(Debug, Clone)]
struct Controller {
    id: i32,
    metrics: Metrics,
}

/// Where a controller's exporter page is read.
#[derive(Debug, Clone)]
enum Metrics {
    /// The exporter's own URL.
    Exporter(String),
    /// Prometheus's federation of the series of this scrape target (`host:port`).
    Federated(String),
}

/// Where the gate reads, as its input says.
#[derive(Debug, Deserialize)]
struct Sources {
    admin_api: String,
    #[serde(default)]
    prometheus: Option<String>,
}

impl Metrics {
    /// The page's URL, given where Prometheus is (`None`: it cannot be read).
    fn url(&self, prometheus: Option<&str>) -> Option<String> {
        match self {
            Metrics::Exporter(url) => Some(url.clone()),
            Metrics::Federated(instance) => Some(format!(
                "{}/federate?match%5B%5D=kafka_server_raft_metrics_current_leader%7Binstance%3D%22{instance}%22%7D",
                prometheus?.trim_end_matches('/')
            )),
        }
    }
}

impl KafkaGate {
    /// A gate for the brokers `brokers` (resource name, broker id); every other member is a
    /// controller.
    pub fn new(brokers: impl IntoIterator<Item = (String, i32)>) -> Self {
        Self {
            brokers: brokers.into_iter().collect(),
            controllers: BTreeMap::new(),
        }
    }

    /// The controllers (resource name, KRaft node id, the URL of its JMX exporter's
    /// metrics): the active controller (the quorum's leader) rolls last of them.
    pub fn with_controllers(
        self,
        controllers: impl IntoIterator<Item = (String, i32, String)>,
    ) -> Self {
        self.controllers_read(controllers, Metrics::Exporter)
    }

    /// The controllers (resource name, KRaft node id, the `host:port` Prometheus scrapes
    /// its JMX exporter at), read through Prometheus's federation (the input's
    /// `prometheus`).
    pub fn with_federated_controllers(
        self,
        controllers: impl IntoIterator<Item = (String, i32, String)>,
    ) -> Self {
        self.controllers_read(controllers, Metrics::Federated)
    }

    /// The controllers (resource name, node id, where), each read through `metrics(where)`.
    fn controllers_read(
        mut self,
        controllers: impl IntoIterator<Item = (String, i32, String)>,
        metrics: fn(String) -> Metrics,
    ) -> Self {
        self.controllers = controllers
            .into_iter()
            .map(|(name, id, at)| {
                (
                    name,
                    Controller {
                        id,
                        metrics: metrics(at),
                    },
                )
            })
            .collect();
        self
    }

    /// `members` with the controller of node id `leader` moved after the other controllers.
    fn leader_last(&self, members: &[String], leader: i32) -> Vec<String> {
        let mut order = members.to_vec();
        let Some(at) = order
            .iter()
            .position(|m| self.controllers.get(m).is_some_and(|c| c.id == leader))
        else {
            return order;
        };
        let active = order.remove(at);
        let after = order
            .iter()
            .rposition(|m| self.controllers.contains_key(m))
            .map_or(0, |last| last + 1);
        order.insert(after.max(at), active);
        order
    }

    /// The answer about controller `member` at `phase`, from the leader each controller
    /// knows (by resource name; `None`: it does not answer or knows none).
    fn judge_controller(
        &self,
        phase: GatePhase,
        member: &str,
        leaders: &BTreeMap<String, Option<i32>>,
    ) -> GateAnswer {
        let knows_leader = |name: &str| leaders.get(name).copied().flatten().is_some();
        match phase {
            GatePhase::After if knows_leader(member) => GateAnswer::Pass,
            GatePhase::After => GateAnswer::Wait(format!(
                "{member} has not rejoined the quorum (it knows no leader)"
            )),
            // Not serving: stopping it costs nothing, restarting it can only help.
            GatePhase::Before if !knows_leader(member) => GateAnswer::Pass,
            GatePhase::Before => {
                let others = self
                    .controllers
                    .keys()
                    .filter(|name| name.as_str() != member && knows_leader(name))
                    .count();
                let majority = self.controllers.len() / 2 + 1;
                if others >= majority {
                    GateAnswer::Pass
                } else {
                    GateAnswer::Wait(format!(
                        "only {others} other controller(s) of {} know the quorum's leader: without {member} the quorum would lose its majority",
                        self.controllers.len()
                    ))
                }
            }
        }
    }

    /// The leader each controller's exporter reports now (`None`: no answer, or no leader).
    async fn leaders(&self, prometheus: Option<&str>) -> BTreeMap<String, Option<i32>> {
        let mut leaders = BTreeMap::new();
        for (name, controller) in &self.controllers {
            let page = match controller.metrics.url(prometheus) {
                Some(url) => iac_local::http_get_body(&url).await,
                None => None,
            };
            let leader = match page {
                Some((200, page)) => current_leader(&page),
                _ => None,
            };
            leaders.insert(name.clone(), leader);
        }
        leaders
    }

    /// The answer `health` gives about broker `member` at `phase`.
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

/// The quorum's leader a controller's JMX exporter page reports (or Prometheus's federation
/// of it: labels, then the value and a timestamp).
fn current_leader(page: &str) -> Option<i32> {
    let line = page
        .lines()
        .find(|l| l.starts_with("kafka_server_raft_metrics_current_leader"))?;
    let sample = match line.rfind('}') {
        Some(end) => &line[end + 1..],
        None => line.split_once(' ').map_or("", |(_, sample)| sample),
    };
    let value: f64 = sample.split_whitespace().next()?.parse().ok()?;
    // A node id, written as the exporter writes numbers (`9992.0`); -1 without a leader.
    (0.0..=f64::from(i32::MAX))
        .contains(&value)
        .then_some(value as i32)
}

impl Sources {
    /// The gate's input, read.
    fn of(input: &Value) -> Result<Self, String> {
        Self::deserialize(input)
            .map_err(|e| format!("where to read the cluster's health is not known ({input}): {e}"))
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
        "a broker only when no partition would fall under its min.insync.replicas, the next once it is back and no partition is under-replicated (the admin API's /cluster/health); a controller only when the quorum keeps a majority, the next once it has rejoined, the active controller last".to_owned()
    }

    async fn order(&self, members: &[String], input: &Value) -> Vec<String> {
        let prometheus = Sources::of(input).ok().and_then(|s| s.prometheus);
        let leaders = self.leaders(prometheus.as_deref()).await;
        match leaders.values().flatten().next() {
            Some(&leader) => self.leader_last(members, leader),
            None => members.to_vec(),
        }
    }

    async fn ask(&self, phase: GatePhase, member: &str, input: &Value) -> GateAnswer {
        let sources = match Sources::of(input) {
            Ok(sources) => sources,
            Err(why) => return GateAnswer::Wait(why),
        };
        if self.controllers.contains_key(member) {
            let leaders = self.leaders(sources.prometheus.as_deref()).await;
            return self.judge_controller(phase, member, &leaders);
        }
        let url = format!("{}/cluster/health", sources.admin_api.trim_end_matches('/'));
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

    #[test]
    fn the_active_controller_rolls_last_of_the_controllers() {
        let gate = KafkaGate::new([("broker-1".to_owned(), 1)]).with_controllers([
            ("controller-1".to_owned(), 9991, String::new()),
            ("controller-2".to_owned(), 9992, String::new()),
        ]);
        let members = ["controller-1", "controller-2", "broker-1"].map(String::from);
        let page = "# TYPE kafka_server_raft_metrics_current_leader untyped\nkafka_server_raft_metrics_current_leader 9991.0\n";
        assert_eq!(current_leader(page), Some(9991));
        let federated = "# TYPE kafka_server_raft_metrics_current_leader untyped\nkafka_server_raft_metrics_current_leader{instance=\"10.0.1.10:7771\",job=\"kafka-controller\"} 9992 1765000000000\n";
        assert_eq!(current_leader(federated), Some(9992));
        assert_eq!(
            gate.leader_last(&members, 9991),
            ["controller-2", "controller-1", "broker-1"]
        );
        assert_eq!(gate.leader_last(&members, 9992), members);
        // No leader (-1), or one that does not roll: the order as it was.
        assert_eq!(
            current_leader("kafka_server_raft_metrics_current_leader -1.0"),
            None
        );
        assert_eq!(gate.leader_last(&members, 9993), members);
    }

    #[test]
    fn a_controller_rolls_when_the_quorum_keeps_a_majority_or_it_is_not_serving() {
        let names = ["controller-1", "controller-2", "controller-3"];
        let gate = KafkaGate::new([])
            .with_controllers(names.map(|name| (name.to_owned(), 9990, String::new())));
        let leaders = |known: [Option<i32>; 3]| -> BTreeMap<String, Option<i32>> {
            names.into_iter().map(str::to_owned).zip(known).collect()
        };
        let whole = leaders([Some(9991); 3]);
        for phase in [GatePhase::Before, GatePhase::After] {
            assert_eq!(
                gate.judge_controller(phase, "controller-1", &whole),
                GateAnswer::Pass
            );
        }
        // One controller away: the other two may not go, but the one away may come back.
        let one_away = leaders([Some(9991), Some(9991), None]);
        assert!(matches!(
            gate.judge_controller(GatePhase::Before, "controller-1", &one_away),
            GateAnswer::Wait(why) if why.contains("only 1 other controller(s) of 3")
        ));
        assert_eq!(
            gate.judge_controller(GatePhase::Before, "controller-3", &one_away),
            GateAnswer::Pass
        );
        assert!(matches!(
            gate.judge_controller(GatePhase::After, "controller-3", &one_away),
            GateAnswer::Wait(why) if why.contains("has not rejoined")
        ));
        // Two away: the quorum has no leader, so none is serving; each may be restarted.
        let two_away = leaders([None, Some(9991), None]);
        assert_eq!(
            gate.judge_controller(GatePhase::Before, "controller-1", &two_away),
            GateAnswer::Pass
        );
    }
}
