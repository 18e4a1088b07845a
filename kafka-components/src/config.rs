//! The platform's configuration: what an environment file (`stacks/envs/<env>.toml`) says.
//!
//! Unknown fields are refused (a typo must not silently fall back to a default), and every
//! load error names the file and, where TOML can tell, the field and line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An environment's whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Where the platform runs.
    pub aws: AwsConfig,
    /// Network layout and who may reach it.
    pub network: NetworkConfig,
    /// The operator's SSH key.
    pub ssh: SshConfig,
    /// Which machine image the nodes boot.
    pub ami: AmiConfig,
    /// Node groups.
    pub nodes: Nodes,
    /// Kafka settings the policy checks need.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Ports of every service.
    #[serde(default)]
    pub ports: Ports,
    /// Where Alertmanager sends alerts.
    #[serde(default)]
    pub alerting: AlertingConfig,
}

/// Alert delivery. Without receivers, alerts are only shown in Alertmanager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Webhook receivers; the first receives every alert, critical ones go to every receiver.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
}

/// A webhook receiver (a chat bridge, an incident tool …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Unique name.
    pub name: String,
    /// `http://` or `https://` URL that receives Alertmanager's webhook payload.
    pub webhook_url: String,
}

/// Region and (for the local emulator) endpoint. `AWS_REGION` and `AWS_ENDPOINT_URL` win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region, e.g. `eu-central-1`.
    pub region: String,
    /// API endpoint (the local emulator in `dev`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// How long AWS may take to show a new object (`"30s"`, the default): a create whose
    /// answer was lost is looked for this long before it is sent again. The emulator shows
    /// objects at once; a shorter window only shortens recovery there.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub consistency_window: Option<std::time::Duration>,
}

/// An optional duration written as text (`"2s"`, `"1m 30s"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&humantime::format_duration(*d).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}): write it like \"30s\" or \"1m 30s\""
            ))
        })
    }
}

/// Network layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The VPC's CIDR block (/22 or larger: each zone gets a /24).
    pub vpc_cidr: String,
    /// Availability zones, one subnet each; nodes are spread round-robin.
    pub availability_zones: Vec<String>,
    /// Who may reach SSH, Prometheus, Grafana, Alertmanager and the admin API.
    pub operator_cidr: String,
    /// Allow `operator_cidr = "0.0.0.0/0"` (the whole internet).
    #[serde(default)]
    pub allow_open_operator_cidr: bool,
    /// Allow fewer than three zones (a sandbox; the quorum then shares a zone).
    #[serde(default)]
    pub allow_fewer_than_three_zones: bool,
}

/// SSH access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// OpenSSH public key imported as the nodes' key pair.
    pub public_key: String,
    /// The image's login user (default `admin`, as on Debian images).
    #[serde(default)]
    pub user: Option<String>,
}

impl SshConfig {
    /// The login user Ansible connects as.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("admin")
    }
}

/// Machine image lookup: the most recent image of `owners` whose name matches `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiConfig {
    /// Owner accounts or aliases.
    pub owners: Vec<String>,
    /// Name pattern (`*` wildcards).
    pub name: String,
    /// Architecture (`x86_64`, `arm64`).
    #[serde(default)]
    pub architecture: Option<String>,
}

/// The node groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nodes {
    /// KRaft controllers (default 3).
    pub controller: NodeGroup,
    /// Brokers (default 3).
    pub broker: NodeGroup,
    /// Kafka Connect workers (default 1).
    pub connect: NodeGroup,
    /// The platform node: Prometheus, Grafana, Alertmanager, admin API (default 1).
    pub platform: NodeGroup,
}

/// One node group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// How many nodes (the role's default when unset).
    #[serde(default)]
    pub count: Option<u32>,
    /// EC2 instance type.
    pub instance_type: String,
    /// Root volume size in GiB.
    #[serde(default)]
    pub root_volume_gib: Option<u32>,
}

/// Kafka settings checked at preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Default replication factor.
    pub replication_factor: u32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            replication_factor: 3,
            min_insync_replicas: 2,
        }
    }
}

/// Ports of every service (the platform we replace: ORIGIN.md).
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

impl Ports {
    /// The ports one node of `role` listens on, each with its field name: two of them
    /// equal is a clash on that host.
    pub fn on_host(&self, role: Role) -> Vec<(&'static str, u16)> {
        let mut ports = vec![("ports.node_exporter", self.node_exporter)];
        match role {
            Role::Controller => ports.extend([
                ("ports.controller", self.controller),
                ("ports.jmx", self.jmx),
                (
                    "ports.jmx_exporter_controller",
                    self.jmx_exporter_controller,
                ),
            ]),
            Role::Broker => ports.extend([
                ("ports.broker_internal", self.broker_internal),
                ("ports.broker_client", self.broker_client),
                ("ports.jmx", self.jmx),
                ("ports.jmx_exporter_broker", self.jmx_exporter_broker),
            ]),
            Role::Connect => ports.extend([
                ("ports.connect_rest", self.connect_rest),
                ("ports.jmx", self.jmx),
                ("ports.jmx_exporter_connect", self.jmx_exporter_connect),
                ("ports.http_source_connector", self.http_source_connector),
            ]),
            Role::Platform => ports.extend([
                ("ports.prometheus", self.prometheus),
                ("ports.grafana", self.grafana),
                ("ports.alertmanager", self.alertmanager),
                ("ports.admin_api", self.admin_api),
            ]),
        }
        ports
    }
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

    fn default_count(self) -> u32 {
        match self {
            Role::Controller | Role::Broker => 3,
            Role::Connect | Role::Platform => 1,
        }
    }
}

impl Nodes {
    /// The group of `role`.
    pub fn group(&self, role: Role) -> &NodeGroup {
        match role {
            Role::Controller => &self.controller,
            Role::Broker => &self.broker,
            Role::Connect => &self.connect,
            Role::Platform => &self.platform,
        }
    }

    /// How many nodes of `role` (its default when the file leaves it out).
    pub fn count(&self, role: Role) -> u32 {
        self.group(role).count.unwrap_or(role.default_count())
    }
}

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No file for the environment.
    #[error("unknown environment `{env}`: there is no {} (environments: {})", path.display(), if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    UnknownEnv {
        /// The environment asked for.
        env: String,
        /// The file looked for.
        path: PathBuf,
        /// Environments that exist.
        available: Vec<String>,
    },
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a platform configuration.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What TOML said, with the field and line.
        message: String,
    },
}

impl PlatformConfig {
    /// Parses a configuration; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })
    }

    /// Loads `<dir>/<env>.toml`.
    pub fn load(dir: &Path, env: &str) -> Result<Self, ConfigError> {
        let path = dir.join(format!("{env}.toml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut available: Vec<String> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_suffix(".toml").map(str::to_owned)
                    })
                    .collect();
                available.sort();
                return Err(ConfigError::UnknownEnv {
                    env: env.to_owned(),
                    path,
                    available,
                });
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text, &path)
    }
}
