//! Kafka's own files: the cp-ansible inventory, host entries, JMX exporter rules, the Connect
//! worker and the HTTP source connector.

use std::collections::BTreeMap;

use askama::Template;

use super::{NodeFacts, RenderError, RenderedFile, file, of_role};
use crate::config::{PlatformConfig, Ports, Role};
use crate::security::{self, CA_ON_NODES, CONNECT_SECRETS_ON_NODES};

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
    node: &'a NodeFacts,
    id: HostId,
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
    rest_port: u16,
    /// [`CONNECT_WORKER_SETTINGS`].
    settings: &'static [(&'static str, &'static str)],
    /// The worker's and its clients' security settings (none for PLAINTEXT).
    security: Vec<(String, String)>,
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

/// A controller's KRaft node id, as `node_id` and in the quorum voters.
fn controller_id(node: &NodeFacts) -> u32 {
    FIRST_CONTROLLER_ID + node.index - 1
}

fn host_id(node: &NodeFacts) -> HostId {
    match node.role {
        Role::Controller => HostId::Controller(controller_id(node)),
        Role::Broker => HostId::Broker(node.index),
        Role::Connect | Role::Platform => HostId::None,
    }
}

/// The brokers' client listeners, as Kafka clients on the nodes are given them.
pub(super) fn bootstrap_servers(ports: &Ports, nodes: &[NodeFacts]) -> String {
    of_role(nodes, &[Role::Broker])
        .into_iter()
        .map(|n| format!("{}:{}", n.private_dns, ports.broker_client))
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
    let kafka = &config.kafka;
    let quorum_voters = of_role(nodes, &[Role::Controller])
        .into_iter()
        .map(|n| {
            format!(
                "{}@{}:{}",
                controller_id(n),
                n.private_dns,
                ports.controller
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let bootstrap_servers = bootstrap_servers(ports, nodes);
    let connect_group_id = format!("{env}-connect");
    let credentials_dir = config.security.sasl_ssl_credentials();
    let groups = [
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
                node,
                id: host_id(node),
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
    .collect();
    let inventory = Inventory {
        env,
        ssh_user: config.ssh_user(),
        ports,
        quorum_voters,
        replication_factor: kafka.replication_factor,
        min_insync_replicas: kafka.min_insync_replicas,
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
        connect_group_id: connect_group_id.clone(),
        groups,
        credentials_dir,
    };
    let worker = ConnectWorker {
        env,
        bootstrap_servers: &bootstrap_servers,
        group_id: &connect_group_id,
        replication_factor: kafka.replication_factor,
        rest_port: ports.connect_rest,
        settings: &CONNECT_WORKER_SETTINGS,
        security: if credentials_dir.is_some() {
            connect_security()
        } else {
            Vec::new()
        },
    };
    let mut files = vec![
        file("ansible/ansible.cfg", AnsibleConfig { env }.render())?,
        file("ansible/hosts.yml", inventory.render())?,
        file("hosts/hosts", Hosts { env, nodes }.render())?,
        file("jmx/kafka_broker.yml", BrokerJmx { env }.render())?,
        file("jmx/kafka_controller.yml", ControllerJmx { env }.render())?,
        file("jmx/kafka_connect.yml", ConnectJmx { env }.render())?,
        file("connect/connect-distributed.properties", worker.render())?,
    ];
    // The connector polls the admin API (on the platform node) into a topic, as the
    // platform we replace did; without a platform node there is nothing to poll.
    if let Some(platform) = of_role(nodes, &[Role::Platform]).first() {
        let mut connector = HttpSourceConnector {
            name: format!("{env}-admin-api-topics"),
            config: BTreeMap::from([
                (
                    "http.request.url",
                    format!("http://{}:{}/topics", platform.private_dns, ports.admin_api),
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
                ("producer.bootstrap.servers", bootstrap_servers.clone()),
                (
                    "listeners",
                    format!(
                        "http://{}:{}",
                        config.listen_host(),
                        ports.http_source_connector
                    ),
                ),
            ]),
        };
        if credentials_dir.is_some() {
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
        files.push(file(
            "connect/http-source-connector.json",
            connector.render(),
        )?);
    }
    Ok(files)
}

/// The Connect worker's security settings and its producer's, consumer's and admin
/// client's: SASL_SSL with SCRAM-SHA-512, the CA as a PEM truststore, and the JAAS settings
/// (which hold the password) read through Kafka's file config provider from a file outside
/// this folder.
fn connect_security() -> Vec<(String, String)> {
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
            (
                format!("{prefix}ssl.truststore.location"),
                CA_ON_NODES.to_owned(),
            ),
            (
                format!("{prefix}sasl.jaas.config"),
                format!("${{file:{CONNECT_SECRETS_ON_NODES}:{prefix}sasl.jaas.config}}"),
            ),
        ]);
    }
    lines
}
