//! A node's role: controller, broker, Connect worker or platform node — its name, where its
//! addresses start in a zone's /24, and the seed's count of it.

use serde::{Deserialize, Serialize};

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// KRaft controller.
    Controller,
    /// Broker.
    Broker,
    /// Kafka Connect worker.
    Connect,
    /// Monitoring and admin API.
    Platform,
}

impl Role {
    /// The name of its `index`-th node (1-based): `broker-2`.
    pub fn node_name(self, index: u32) -> String {
        format!("{}-{index}", self.name())
    }

    /// Every role, in the order nodes are registered.
    pub const ALL: [Role; 4] = [
        Role::Controller,
        Role::Broker,
        Role::Connect,
        Role::Platform,
    ];

    /// The role's name (`controller`, `broker`, …), as in resource names and TOML tables.
    pub fn name(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Broker => "broker",
            Role::Connect => "connect",
            Role::Platform => "platform",
        }
    }

    /// The first host number of the role's nodes in a zone's /24 on AWS: controllers from
    /// .10, brokers from .20, Connect from .30, platform nodes from .40.
    pub fn first_host(self) -> u32 {
        match self {
            Role::Controller => 10,
            Role::Broker => 20,
            Role::Connect => 30,
            Role::Platform => 40,
        }
    }

    /// How many nodes of the role a zone's /24 has addresses for: up to the next role's
    /// first host, the platform nodes' up to .250 (AWS keeps .255).
    pub fn hosts_per_zone(self) -> u32 {
        match self {
            Role::Platform => 211,
            _ => 10,
        }
    }

    /// The seed's count of the role: 3 controllers, 3 brokers, one Connect worker, one
    /// platform node.
    pub fn default_count(self) -> u32 {
        match self {
            Role::Controller | Role::Broker => 3,
            Role::Connect | Role::Platform => 1,
        }
    }
}
