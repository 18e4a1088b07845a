//! Kafka's own files: the cp-ansible inventory, host entries, JMX exporter rules, the Connect
//! worker and the HTTP source connector.

use std::collections::BTreeMap;

use askama::Template;

use super::paths;
use super::{NodeFacts, RenderError, RenderedFile, connect_port, file, file_at, of_role};
use crate::config::{PlatformConfig, Site};
use crate::ports::Ports;
use crate::role::Role;
use crate::security;

/// cp-ansible numbers controllers from 9991 (`node_id`) and brokers from 1 (`broker_id`);
/// the inventory states both so the quorum voters cannot disagree with them.
const FIRST_CONTROLLER_ID: u32 = 9991;

/// The Connect worker's converters and plugin path, in the rendered worker file and in the
/// inventory's `kafka_connect_custom_properties` (without them cp-ansible would configure
/// Avro converters, which need a schema registry the platform does not run).
const CONNECT_WORKER_SETTINGS: [(&str, &str); 5] = [
    (
        "key.converter",
        "org.apache.kafka.connect.json.JsonConverter",
    ),
    (
        "value.converter",
        "org.apache.kafka.connect.json.JsonConverter",
    ),
    ("key.converter.schemas.enable", "false"),
    ("value.converter.schemas.enable", "false"),
    (
        "plugin.path",
        "/usr/share/java,/usr/share/confluent-hub-components",
    ),
];

enum HostId {
    Controller(u32),
    Broker(u32),
    None,
}

struct Host<'a> {
    /// The inventory's name of the host: its private DNS name on AWS, which Kafka
    /// advertises; on this machine, where every node is 127.0.0.1, its node name.
    key: &'a str,
    node: &'a NodeFacts,
    id: HostId,
    /// Where Ansible connects: on AWS, the platform node's public IP, and every other
    /// node's private IP through it ([`Host::jump`]); without a platform node, each public IP.
    address: &'a str,
    /// The SSH options that reach the host through the platform node: `ProxyJump`, and its
    /// host key kept under [`host_key_alias`] (a replaced node keeps its address, not its key).
    jump: Option<String>,
    /// Its certificate and key files, on a SASL_SSL platform.
    tls: Option<(String, String)>,
}

struct Group<'a> {
    name: &'static str,
    hosts: Vec<Host<'a>>,
}

#[derive(Template)]
#[template(path = "ansible/hosts.yml", escape = "none")]
struct Inventory<'a> {
    env: &'a str,
    ssh_user: &'a str,
    ports: &'a Ports,
    quorum_voters: String,
    replication_factor: u32,
    min_insync_replicas: u32,
    /// `[kafka_broker_custom_properties]`, on every broker beside the platform's own
    /// (values quoted for YAML).
    broker_properties: Vec<(&'a str, String)>,
    /// `[kafka_controller_custom_properties]` (values quoted for YAML).
    controller_properties: Vec<(&'a str, String)>,
    connect_group_id: String,
    /// cp-ansible's `kafka_connect_custom_properties`: storage replication and the worker
    /// settings.
    connect_properties: Vec<(String, String)>,
    groups: Vec<Group<'a>>,
    /// The credentials folder, on a SASL_SSL platform.
    credentials_dir: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "hosts/hosts", escape = "none")]
struct Hosts<'a> {
    env: &'a str,
    nodes: &'a [NodeFacts],
}

#[derive(Template)]
#[template(path = "jmx/kafka_broker.yml", escape = "none")]
struct BrokerJmx<'a> {
    env: &'a str,
}

#[derive(Template)]
#[template(path = "jmx/kafka_controller.yml", escape = "none")]
struct ControllerJmx<'a> {
    env: &'a str,
}

#[derive(Template)]
#[template(path = "jmx/kafka_connect.yml", escape = "none")]
struct ConnectJmx<'a> {
    env: &'a str,
}

#[derive(Template)]
#[template(path = "connect/connect-distributed.properties", escape = "none")]
struct ConnectWorker<'a> {
    env: &'a str,
    bootstrap_servers: &'a str,
    group_id: &'a str,
    replication_factor: u32,
    listen_host: &'a str,
    rest_port: u16,
    /// [`CONNECT_WORKER_SETTINGS`]; on this machine without `plugin.path` (its folders
    /// hold the packages of this machine's programs, not Connect plugins: scanning them takes
    /// minutes).
    settings: Vec<(&'static str, &'static str)>,
    /// The worker's and its clients' security settings (none for PLAINTEXT).
    security: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "kafka/server.properties", escape = "none")]
struct ServerProperties<'a> {
    env: &'a str,
    role: &'static str,
    node: &'a str,
    settings: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "ansible/ansible.cfg", escape = "none")]
struct AnsibleConfig<'a> {
    env: &'a str,
}

#[derive(Template)]
#[template(path = "connect/http-source-connector.json", escape = "none")]
struct HttpSourceConnector {
    name: String,
    config: BTreeMap<&'static str, String>,
}

/// Properties with their values as YAML double-quoted strings (a JSON string is one).
fn yaml_strings(properties: &BTreeMap<String, String>) -> Vec<(&str, String)> {
    properties
        .iter()
        .map(|(key, value)| {
            (
                key.as_str(),
                serde_json::Value::from(value.as_str()).to_string(),
            )
        })
        .collect()
}

/// The KRaft node id of the controller of 1-based `index`, as `node_id` and in the quorum
/// voters.
pub(crate) fn controller_id(index: u32) -> u32 {
    FIRST_CONTROLLER_ID + index - 1
}

fn host_id(node: &NodeFacts) -> HostId {
    match node.role {
        Role::Controller => HostId::Controller(controller_id(node.index)),
        Role::Broker => HostId::Broker(node.index),
        Role::Connect | Role::Platform => HostId::None,
    }
}

/// The brokers' client listeners, as Kafka clients on the nodes are given them.
pub(super) fn bootstrap_servers(ports: &Ports, nodes: &[NodeFacts]) -> String {
    of_role(nodes, &[Role::Broker])
        .into_iter()
        .map(|n| n.endpoint(ports.broker_client))
        .collect::<Vec<_>>()
        .join(",")
}

/// The inventory, host entries, JMX exporter rules and Connect files.
pub(super) fn files(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
) -> Result<Vec<RenderedFile>, RenderError> {
    let ports = &config.ports;
    let quorum_voters = of_role(nodes, &[Role::Controller])
        .into_iter()
        .map(|n| {
            format!(
                "{}@{}",
                controller_id(n.index),
                n.endpoint(ports.controller)
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let bootstrap_servers = bootstrap_servers(ports, nodes);
    let connect_group_id = format!("{env}-connect");
    let inventory = inventory(env, config, nodes, &quorum_voters, &connect_group_id);
    let worker = ConnectWorker {
        env,
        bootstrap_servers: &bootstrap_servers,
        group_id: &connect_group_id,
        replication_factor: config.kafka.replication_factor,
        listen_host: config.listen_host(),
        rest_port: connect_port(nodes, ports.connect_rest),
        settings: CONNECT_WORKER_SETTINGS
            .into_iter()
            .filter(|(key, _)| matches!(config.site, Site::Aws(_)) || *key != "plugin.path")
            .collect(),
        security: if config.security.sasl_ssl_credentials().is_some() {
            connect_security(config)
        } else {
            Vec::new()
        },
    };
    let mut files = vec![
        file(paths::ANSIBLE_CONFIG, AnsibleConfig { env }.render())?,
        file(paths::INVENTORY, inventory.render())?,
        file(paths::HOSTS, Hosts { env, nodes }.render())?,
        file(paths::JMX_BROKER, BrokerJmx { env }.render())?,
        file(paths::JMX_CONTROLLER, ControllerJmx { env }.render())?,
        file(paths::JMX_CONNECT, ConnectJmx { env }.render())?,
        file(paths::CONNECT_WORKER, worker.render())?,
    ];
    // The connector polls the admin API (on the platform node) into a topic, as the
    // platform we replace did; without a platform node there is nothing to poll.
    if let Some(platform) = of_role(nodes, &[Role::Platform]).first() {
        let connector = connector(env, config, nodes, platform, &bootstrap_servers);
        files.push(file(paths::CONNECTOR, connector.render())?);
    }
    if let Site::Local(_) = config.site {
        for node in of_role(nodes, &[Role::Controller, Role::Broker]) {
            let properties = ServerProperties {
                env,
                role: node.role.name(),
                node: &node.name,
                settings: server_settings(config, nodes, node, &quorum_voters),
            };
            files.push(file_at(
                paths::server_properties(&node.name),
                "kafka/server.properties",
                properties.render(),
            )?);
        }
    }
    Ok(files)
}

/// The cp-ansible inventory: its host groups and the cluster's settings.
fn inventory<'a>(
    env: &'a str,
    config: &'a PlatformConfig,
    nodes: &'a [NodeFacts],
    quorum_voters: &str,
    connect_group_id: &str,
) -> Inventory<'a> {
    let kafka = &config.kafka;
    let credentials_dir = config.security.sasl_ssl_credentials();
    Inventory {
        env,
        ssh_user: config.ssh_user(),
        ports: &config.ports,
        quorum_voters: quorum_voters.to_owned(),
        replication_factor: kafka.replication_factor,
        min_insync_replicas: kafka.min_insync_replicas,
        broker_properties: yaml_strings(&kafka.broker_properties),
        controller_properties: yaml_strings(&kafka.controller_properties),
        connect_properties: ["config", "offset", "status"]
            .into_iter()
            .map(|t| {
                (
                    format!("{t}.storage.replication.factor"),
                    kafka.replication_factor.to_string(),
                )
            })
            .chain(
                CONNECT_WORKER_SETTINGS
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
            )
            .collect(),
        connect_group_id: connect_group_id.to_owned(),
        groups: groups(config, nodes),
        credentials_dir,
    }
}

/// The name a node's SSH host key is kept under. A controller or broker: its name, which its
/// own deployment step forgets when it deploys onto a replacement (its instance is not known
/// to the files: a roll replaces it). Any other node: its name and instance id, so a
/// replacement is a new name, learned at first contact.
fn host_key_alias(node: &NodeFacts) -> String {
    match node.role {
        Role::Controller | Role::Broker => node.name.clone(),
        Role::Connect | Role::Platform => format!("{}-{}", node.name, node.id),
    }
}

/// The inventory's host groups, one per role that has nodes.
fn groups<'a>(config: &'a PlatformConfig, nodes: &'a [NodeFacts]) -> Vec<Group<'a>> {
    let credentials_dir = config.security.sasl_ssl_credentials();
    let jump_host = match config.site {
        Site::Aws(_) => of_role(nodes, &[Role::Platform]).first().copied(),
        Site::Local(_) => None,
    };
    [
        ("kafka_controller", Role::Controller),
        ("kafka_broker", Role::Broker),
        ("kafka_connect", Role::Connect),
        ("platform", Role::Platform),
    ]
    .into_iter()
    .map(|(name, role)| Group {
        name,
        hosts: of_role(nodes, &[role])
            .into_iter()
            .map(|node| Host {
                key: match config.site {
                    Site::Aws(_) => &node.private_dns,
                    Site::Local(_) => &node.name,
                },
                node,
                id: host_id(node),
                address: if jump_host.is_some() && node.role != Role::Platform {
                    &node.private_ip
                } else {
                    node.address()
                },
                jump: jump_host
                    .filter(|_| node.role != Role::Platform)
                    .map(|jump| {
                        format!(
                            "-o ProxyJump={}@{} -o HostKeyAlias={}",
                            config.ssh_user(),
                            jump.address(),
                            host_key_alias(node)
                        )
                    }),
                tls: credentials_dir
                    .filter(|_| security::has_certificate(node.role))
                    .map(|dir| {
                        let (crt, key) = security::node_files(&node.name);
                        (format!("{dir}/{crt}"), format!("{dir}/{key}"))
                    }),
            })
            .collect(),
    })
    .filter(|g| !g.hosts.is_empty())
    .collect()
}

/// The HTTP source connector's configuration: it polls the admin API on `platform`.
fn connector(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
    platform: &NodeFacts,
    bootstrap_servers: &str,
) -> HttpSourceConnector {
    let ports = &config.ports;
    let mut connector = HttpSourceConnector {
        name: format!("{env}-admin-api-topics"),
        config: BTreeMap::from([
            (
                "http.request.url",
                format!("http://{}/topics", platform.endpoint(ports.admin_api)),
            ),
            ("http.request.method", "GET".to_owned()),
            (
                "http.timer.interval.millis",
                config.connector.poll_interval.as_millis().to_string(),
            ),
            ("http.response.list.pointer", "/topics".to_owned()),
            ("http.response.record.key.pointer", "/name".to_owned()),
            ("kafka.topic", format!("{env}.admin-api.topics")),
            ("offset.storage.topic", format!("{env}-http-source-offsets")),
            ("producer.bootstrap.servers", bootstrap_servers.to_owned()),
            (
                "listeners",
                format!(
                    "http://{}:{}",
                    config.listen_host(),
                    connect_port(nodes, ports.http_source_connector)
                ),
            ),
        ]),
    };
    if config.security.sasl_ssl_credentials().is_some() {
        connector.config.extend([
            ("producer.security.protocol", "SASL_SSL".to_owned()),
            ("producer.sasl.mechanism", "SCRAM-SHA-512".to_owned()),
            (
                "producer.sasl.username",
                security::CONNECTOR.principal.to_owned(),
            ),
            (
                "producer.sasl.password.env",
                security::CONNECTOR_PASSWORD_VARIABLE.to_owned(),
            ),
            ("producer.ssl.ca.location", security::ca_location(config)),
        ]);
    }
    connector
}

/// Settings sized for Kafka JVMs sharing one small machine: few threads, a small log
/// cleaner buffer, no wait before a new group's first rebalance.
const SMALL_MACHINE_SETTINGS: [(&str, &str); 6] = [
    ("num.network.threads", "2"),
    ("num.io.threads", "2"),
    ("num.recovery.threads.per.data.dir", "1"),
    ("background.threads", "2"),
    ("log.cleaner.dedupe.buffer.size", "33554432"),
    ("group.initial.rebalance.delay.ms", "0"),
];

/// One KRaft node's `server.properties` settings, in order: its identity and quorum, its
/// listeners, its data, the replication the platform asks for, security, then sizing. The
/// node id, voters, listener ports and rack are the inventory's (`controller_id`,
/// `quorum_voters`, the node's ports, its zone); data lives in `data` under the process's
/// working directory.
fn server_settings(
    config: &PlatformConfig,
    nodes: &[NodeFacts],
    node: &NodeFacts,
    quorum_voters: &str,
) -> Vec<(String, String)> {
    let kafka = &config.kafka;
    let secured = config.security.sasl_ssl_credentials();
    let mut settings = role_settings(config, node, quorum_voters);
    let brokers = of_role(nodes, &[Role::Broker]).len().to_string();
    let replicas = kafka.replication_factor.to_string();
    let min_isr = kafka.min_insync_replicas.to_string();
    settings.extend([
        ("log.dirs", "data".to_owned()),
        // The controllers apply these to topics created without them.
        ("num.partitions", brokers),
        ("default.replication.factor", replicas.clone()),
        ("min.insync.replicas", min_isr.clone()),
        ("offsets.topic.replication.factor", replicas.clone()),
        ("offsets.topic.num.partitions", "10".to_owned()),
        ("transaction.state.log.replication.factor", replicas.clone()),
        ("transaction.state.log.min.isr", min_isr.clone()),
        ("share.coordinator.state.topic.replication.factor", replicas),
        ("share.coordinator.state.topic.min.isr", min_isr),
    ]);
    if let Some(dir) = secured {
        settings.extend(security_settings(node, dir));
    }
    settings.extend(SMALL_MACHINE_SETTINGS.map(|(k, v)| (k, v.to_owned())));
    let mut settings: Vec<(String, String)> = settings
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    // The user's own, last: one of the platform's defaults is replaced where it stands.
    let custom = match node.role {
        Role::Controller => &kafka.controller_properties,
        _ => &kafka.broker_properties,
    };
    for (key, value) in custom {
        match settings.iter_mut().find(|(k, _)| k == key) {
            Some((_, set)) => set.clone_from(value),
            None => settings.push((key.clone(), value.clone())),
        }
    }
    settings
}

/// A controller's or a broker's own settings: its roles, id, quorum and listeners.
fn role_settings(
    config: &PlatformConfig,
    node: &NodeFacts,
    quorum_voters: &str,
) -> Vec<(&'static str, String)> {
    let ports = &config.ports;
    let (controller_protocol, broker_protocol) = match config.security.sasl_ssl_credentials() {
        Some(_) => ("SSL", "SASL_SSL"),
        None => ("PLAINTEXT", "PLAINTEXT"),
    };
    if node.role == Role::Controller {
        return vec![
            ("process.roles", "controller".to_owned()),
            ("node.id", controller_id(node.index).to_string()),
            ("controller.quorum.voters", quorum_voters.to_owned()),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            (
                "listeners",
                format!("CONTROLLER://{}", node.endpoint(ports.controller)),
            ),
            (
                "listener.security.protocol.map",
                format!("CONTROLLER:{controller_protocol}"),
            ),
        ];
    }
    let listeners = format!(
        "BROKER://{},INTERNAL://{}",
        node.endpoint(ports.broker_internal),
        node.endpoint(ports.broker_client)
    );
    vec![
        ("process.roles", "broker".to_owned()),
        ("node.id", node.index.to_string()),
        ("controller.quorum.voters", quorum_voters.to_owned()),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("listeners", listeners.clone()),
        ("advertised.listeners", listeners),
        ("inter.broker.listener.name", "BROKER".to_owned()),
        (
            "listener.security.protocol.map",
            format!(
                "BROKER:{broker_protocol},INTERNAL:{broker_protocol},CONTROLLER:{controller_protocol}"
            ),
        ),
        ("broker.rack", node.zone.clone()),
    ]
}

/// TLS for every node (the credentials in `dir`), and SCRAM for a broker's listeners.
fn security_settings(node: &NodeFacts, dir: &str) -> Vec<(&'static str, String)> {
    let (_, _, keystore) = security::node_files_with_keystore(&node.name);
    let mut settings = vec![
        ("ssl.keystore.type", "PEM".to_owned()),
        ("ssl.keystore.location", format!("{dir}/{keystore}")),
        ("ssl.truststore.type", "PEM".to_owned()),
        (
            "ssl.truststore.location",
            format!("{dir}/{}", security::CA_FILE),
        ),
        // Brokers and controllers prove who they are to the controllers by certificate.
        (
            "listener.name.controller.ssl.client.auth",
            "required".to_owned(),
        ),
    ];
    if node.role == Role::Broker {
        settings.extend([
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512".to_owned()),
            (
                "sasl.mechanism.inter.broker.protocol",
                "SCRAM-SHA-512".to_owned(),
            ),
            ("config.providers", "file".to_owned()),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider".to_owned(),
            ),
            // The brokers' own user and password, read from the credentials folder.
            (
                "listener.name.broker.scram-sha-512.sasl.jaas.config",
                format!(
                    "${{file:{dir}/{}:sasl.jaas.config}}",
                    security::BROKER_SECRETS_FILE
                ),
            ),
            (
                "listener.name.internal.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned(),
            ),
        ]);
    }
    settings
}

/// The Connect worker's security settings and its producer's, consumer's and admin
/// client's: SASL_SSL with SCRAM-SHA-512, the CA as a PEM truststore, and the JAAS settings
/// (which hold the password) read through Kafka's file config provider from a file outside
/// this folder (on the nodes, or in the credentials folder on this machine).
fn connect_security(config: &PlatformConfig) -> Vec<(String, String)> {
    let ca = security::ca_location(config);
    let secrets = security::connect_secrets_location(config);
    let mut lines = vec![
        ("config.providers".to_owned(), "file".to_owned()),
        (
            "config.providers.file.class".to_owned(),
            "org.apache.kafka.common.config.provider.FileConfigProvider".to_owned(),
        ),
    ];
    for prefix in security::CONNECT_CLIENT_PREFIXES {
        lines.extend([
            (format!("{prefix}security.protocol"), "SASL_SSL".to_owned()),
            (
                format!("{prefix}sasl.mechanism"),
                "SCRAM-SHA-512".to_owned(),
            ),
            (format!("{prefix}ssl.truststore.type"), "PEM".to_owned()),
            (format!("{prefix}ssl.truststore.location"), ca.clone()),
            (
                format!("{prefix}sasl.jaas.config"),
                format!("${{file:{secrets}:{prefix}sasl.jaas.config}}"),
            ),
        ]);
    }
    lines
}
