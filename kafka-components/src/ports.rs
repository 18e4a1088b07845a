//! Which service listens on which port, on which nodes, opened to whom: one table
//! ([`LISTENERS`]) that the policy's clash checks, the AWS security groups, the local
//! services and the scrape jobs all read, so a new service is one row (and a field of
//! [`Ports`]).

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// Ports of every service (the defaults are those of the platform this one replaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    /// Broker-to-broker listener.
    pub broker_internal: u16,
    /// Client listener.
    pub broker_client: u16,
    /// KRaft controller listener.
    pub controller: u16,
    /// Kafka Connect REST.
    pub connect_rest: u16,
    /// Native JMX (must differ from every JMX exporter port).
    pub jmx: u16,
    /// Brokers' JMX exporter.
    pub jmx_exporter_broker: u16,
    /// Controllers' JMX exporter.
    pub jmx_exporter_controller: u16,
    /// Connect's JMX exporter.
    pub jmx_exporter_connect: u16,
    /// node_exporter on every node.
    pub node_exporter: u16,
    /// Prometheus.
    pub prometheus: u16,
    /// Grafana.
    pub grafana: u16,
    /// Alertmanager.
    pub alertmanager: u16,
    /// The admin REST API.
    pub admin_api: u16,
    /// The HTTP source connector's REST surface and metrics (on the Connect nodes).
    pub http_source_connector: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            broker_internal: 9091,
            broker_client: 9092,
            controller: 9093,
            connect_rest: 8083,
            jmx: 9101,
            jmx_exporter_broker: 9999,
            jmx_exporter_controller: 9998,
            jmx_exporter_connect: 7071,
            node_exporter: 9100,
            prometheus: 9090,
            grafana: 3000,
            alertmanager: 9093,
            admin_api: 2020,
            http_source_connector: 8084,
        }
    }
}

/// On this machine every node shares 127.0.0.1: the n-th controller, broker or Connect
/// worker listens on each of its role's ports + `LOCAL_PORT_STEP` × (n − 1).
pub const LOCAL_PORT_STEP: u16 = 100;

/// Who may reach a port on AWS (the rule of the security group of the nodes it is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenTo {
    /// Every address of the VPC (Kafka's clients and the nodes among themselves).
    Vpc,
    /// The platform node's security group: its Prometheus scrapes the port, and SSH reaches
    /// the other nodes through it.
    PlatformNode,
    /// The operator's CIDR (`network.operator_cidr`).
    Operator,
    /// No one: the JVM's own (native JMX) port, read on the node only.
    NoOne,
}

/// How a port is opened on this machine, where every node shares 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnThisMachine {
    /// By every node of its roles, each on the port + its [`LOCAL_PORT_STEP`] shift.
    EveryNode,
    /// Once, by the one process that stands for all nodes (node_exporter).
    Once,
    /// Not at all (the native JMX port, Grafana, SSH).
    Never,
}

/// One service's port: the field that sets it, the nodes that listen on it, who may reach it.
#[derive(Debug)]
pub struct Listener {
    /// The environment file's field (`ports.broker_client`), or for a fixed port how it
    /// is named (`SSH`).
    pub field: &'static str,
    /// The service's part of the security-group rule's name (`kafka-<name>`,
    /// `platform-<name>`).
    pub name: &'static str,
    /// The port, read from `[ports]`.
    number: fn(&Ports) -> u16,
    /// The roles whose nodes listen on it.
    pub roles: &'static [Role],
    /// Who may reach it on AWS.
    pub open_to: OpenTo,
    /// How it is opened on this machine.
    pub on_this_machine: OnThisMachine,
}

impl Listener {
    /// Its port in `ports`.
    pub fn port(&self, ports: &Ports) -> u16 {
        (self.number)(ports)
    }

    /// Whether the environment file sets it (SSH's is fixed).
    pub fn is_setting(&self) -> bool {
        self.field.starts_with("ports.")
    }
}

const KAFKA_ROLES: &[Role] = &[Role::Controller, Role::Broker, Role::Connect];

/// A security group of the platform on AWS: the nodes of its roles share its rules.
#[derive(Debug)]
pub struct SecurityGroup {
    /// The first part of its rules' names (`kafka-broker-client`).
    pub name: &'static str,
    /// Its nodes, for people.
    pub holds: &'static str,
    /// The roles of its nodes.
    pub roles: &'static [Role],
}

/// The Kafka nodes' group and the platform node's (whose Prometheus scrapes the others).
pub const SECURITY_GROUPS: [SecurityGroup; 2] = [
    SecurityGroup {
        name: "kafka",
        holds: "the Kafka nodes",
        roles: KAFKA_ROLES,
    },
    SecurityGroup {
        name: "platform",
        holds: "the platform node",
        roles: &[Role::Platform],
    },
];

impl SecurityGroup {
    /// The listeners its rules open, in [`LISTENERS`]' order: every one of its nodes' that
    /// someone may reach, but the monitoring ports of the platform node's own group (its
    /// Prometheus reads its own node over loopback).
    pub fn opens(&self) -> impl Iterator<Item = &'static Listener> {
        let monitoring_node = self.roles.contains(&Role::Platform);
        LISTENERS.into_iter().filter(move |l| {
            l.roles.iter().any(|role| self.roles.contains(role))
                && match l.open_to {
                    OpenTo::NoOne => false,
                    OpenTo::PlatformNode => !monitoring_node,
                    OpenTo::Vpc | OpenTo::Operator => true,
                }
        })
    }
}

macro_rules! listener {
    ($const:ident, $field:ident, $name:literal, $roles:expr, $open:ident, $local:ident) => {
        #[doc = concat!("`ports.", stringify!($field), "`.")]
        pub const $const: Listener = Listener {
            field: concat!("ports.", stringify!($field)),
            name: $name,
            number: |p| p.$field,
            roles: $roles,
            open_to: OpenTo::$open,
            on_this_machine: OnThisMachine::$local,
        };
    };
}

listener!(
    BROKER_INTERNAL,
    broker_internal,
    "broker-internal",
    &[Role::Broker],
    Vpc,
    EveryNode
);
listener!(
    BROKER_CLIENT,
    broker_client,
    "broker-client",
    &[Role::Broker],
    Vpc,
    EveryNode
);
listener!(
    CONTROLLER,
    controller,
    "controller",
    &[Role::Controller],
    Vpc,
    EveryNode
);
listener!(
    CONNECT_REST,
    connect_rest,
    "connect-rest",
    &[Role::Connect],
    Vpc,
    EveryNode
);
listener!(
    JMX_EXPORTER_BROKER,
    jmx_exporter_broker,
    "jmx-exporter-broker",
    &[Role::Broker],
    PlatformNode,
    EveryNode
);
listener!(
    JMX_EXPORTER_CONTROLLER,
    jmx_exporter_controller,
    "jmx-exporter-controller",
    &[Role::Controller],
    PlatformNode,
    EveryNode
);
listener!(
    JMX_EXPORTER_CONNECT,
    jmx_exporter_connect,
    "jmx-exporter-connect",
    &[Role::Connect],
    PlatformNode,
    EveryNode
);
listener!(
    NODE_EXPORTER,
    node_exporter,
    "node-exporter",
    &Role::ALL,
    PlatformNode,
    Once
);
listener!(
    HTTP_SOURCE_CONNECTOR,
    http_source_connector,
    "http-source-connector",
    &[Role::Connect],
    PlatformNode,
    EveryNode
);
listener!(
    PROMETHEUS,
    prometheus,
    "prometheus",
    &[Role::Platform],
    Operator,
    EveryNode
);
listener!(
    GRAFANA,
    grafana,
    "grafana",
    &[Role::Platform],
    Operator,
    Never
);
listener!(
    ALERTMANAGER,
    alertmanager,
    "alertmanager",
    &[Role::Platform],
    Operator,
    EveryNode
);
listener!(
    ADMIN_API,
    admin_api,
    "admin-api",
    &[Role::Platform],
    Operator,
    EveryNode
);
listener!(JMX, jmx, "jmx", KAFKA_ROLES, NoOne, Never);

/// SSH on the platform node, from the operator's CIDR.
pub const SSH: Listener = Listener {
    field: "SSH",
    name: "ssh",
    number: |_| 22,
    roles: &[Role::Platform],
    open_to: OpenTo::Operator,
    on_this_machine: OnThisMachine::Never,
};

/// SSH on the other nodes, from the platform node (Ansible jumps through it): their
/// addresses and host keys are known before any of them is made or replaced.
pub const SSH_THROUGH_PLATFORM: Listener = Listener {
    field: "SSH",
    name: "ssh",
    number: |_| 22,
    roles: KAFKA_ROLES,
    open_to: OpenTo::PlatformNode,
    on_this_machine: OnThisMachine::Never,
};

/// Every port of the platform, in the order the security groups' rules are registered.
pub const LISTENERS: [&Listener; 16] = [
    &BROKER_INTERNAL,
    &BROKER_CLIENT,
    &CONTROLLER,
    &CONNECT_REST,
    &JMX_EXPORTER_BROKER,
    &JMX_EXPORTER_CONTROLLER,
    &JMX_EXPORTER_CONNECT,
    &NODE_EXPORTER,
    &HTTP_SOURCE_CONNECTOR,
    &PROMETHEUS,
    &GRAFANA,
    &ALERTMANAGER,
    &ADMIN_API,
    &JMX,
    &SSH,
    &SSH_THROUGH_PLATFORM,
];

/// The listeners of `role`'s nodes, in [`LISTENERS`]' order.
pub fn of_role(role: Role) -> impl Iterator<Item = &'static Listener> {
    LISTENERS
        .into_iter()
        .filter(move |listener| listener.roles.contains(&role))
}

impl Ports {
    /// The ports one node of `role` listens on, each with its listener: two of them equal is
    /// a clash on that host.
    pub fn on_host(&self, role: Role) -> Vec<(&'static Listener, u32)> {
        of_role(role)
            .map(|listener| (listener, u32::from(listener.port(self))))
            .collect()
    }

    /// The ports the local platform listens on, each with its listener: every node's ports
    /// that open on this machine, shifted by the node's place ([`LOCAL_PORT_STEP`]),
    /// node_exporter's once.
    pub fn on_this_machine(&self, count: impl Fn(Role) -> u32) -> Vec<(&'static Listener, u32)> {
        let once = LISTENERS
            .into_iter()
            .filter(|l| l.on_this_machine == OnThisMachine::Once)
            .map(|l| (l, u32::from(l.port(self))));
        let per_node = Role::ALL.into_iter().flat_map(|role| {
            (0..count(role)).flat_map(move |index| {
                let shift = u32::from(LOCAL_PORT_STEP) * index;
                of_role(role)
                    .filter(|l| l.on_this_machine == OnThisMachine::EveryNode)
                    .map(move |l| (l, u32::from(l.port(self)) + shift))
            })
        });
        once.chain(per_node).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_of_the_environment_file_is_one_listener_that_reads_it() {
        // Every field of `[ports]` set to a port of its own: each is read by one row.
        let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Ports::default()) else {
            panic!("[ports] is not a table");
        };
        let distinct: toml::Table = defaults
            .keys()
            .zip(1000..)
            .map(|(field, port)| (field.clone(), toml::Value::Integer(port)))
            .collect();
        let ports: Ports = match distinct.clone().try_into() {
            Ok(ports) => ports,
            Err(e) => panic!("{e}"),
        };
        for (field, port) in &distinct {
            let field = format!("ports.{field}");
            let rows: Vec<_> = LISTENERS.iter().filter(|l| l.field == field).collect();
            assert_eq!(
                rows.len(),
                1,
                "{field} has {} rows in LISTENERS",
                rows.len()
            );
            assert_eq!(
                Some(i64::from(rows[0].port(&ports))),
                port.as_integer(),
                "{field}"
            );
        }
        assert_eq!(
            LISTENERS.iter().filter(|l| l.is_setting()).count(),
            distinct.len()
        );
        assert_eq!(SSH.port(&ports), 22);
    }
}
