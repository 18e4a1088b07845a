//! The platform's configuration: what an environment file (`stacks/envs/<env>.toml`) says.
//!
//! Unknown fields are refused (a typo must not silently fall back to a default), and every
//! load error names the file and, where TOML can tell, the field and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::ports::Ports;
use crate::role::Role;

/// An environment's whole configuration.
///
/// Where it runs is the [`Site`]: AWS (the `[aws]`, `[network]`, `[ssh]`, `[ami]` and
/// `[nodes]` tables) or this machine (`[local]`). The rest is the same for every site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConfigFile", into = "ConfigFile")]
pub struct PlatformConfig {
    /// Where the platform runs.
    pub site: Site,
    /// Kafka settings the policy checks need.
    pub kafka: KafkaConfig,
    /// Ports of every service.
    pub ports: Ports,
    /// Where Alertmanager sends alerts, and how soon.
    pub alerting: AlertingConfig,
    /// Prometheus: how often it scrapes, when a stalled source alerts.
    pub monitoring: MonitoringConfig,
    /// The HTTP source connector that polls the admin API.
    pub connector: ConnectorSettings,
    /// How Kafka's listeners and clients are secured.
    pub security: SecurityConfig,
}

/// Where a platform runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// EC2 instances in a VPC.
    Aws(Box<AwsSite>),
    /// Processes on 127.0.0.1 of this machine.
    Local(Box<LocalSite>),
}

/// An AWS environment's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSite {
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
    /// Configuring the nodes once they run (`[deploy]`).
    pub deploy: DeployConfig,
}

/// The deployment onto the nodes (`[deploy]`): the nodes playbook, cp-ansible, the platform
/// node's and the Connect nodes' playbooks, run by `apply` after the instances and files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Whether `apply` deploys (default true; false where the instances are not machines, as
    /// on the emulator: the preview then says what would run).
    pub enabled: bool,
    /// A shell command the CLI runs before planning, to build the services for the nodes
    /// (unset: the binaries are expected in `bin_dir`).
    pub build: Option<String>,
    /// Where the services' binaries for the nodes are (`${NAME:-default}` is replaced by
    /// environment variables; default `${CARGO_TARGET_DIR:-target}/release`).
    pub bin_dir: String,
    /// cp-ansible (the `confluent.platform` collection) as a tarball or folder on this
    /// machine; unset: `ansible-galaxy` fetches the pinned version from Ansible Galaxy.
    pub collection: Option<String>,
    /// The SSH private key Ansible logs in with (unset: ssh-agent and SSH's defaults).
    pub ssh_private_key: Option<String>,
    /// The platform node's address as this machine reaches it, where `apply` reads the
    /// cluster's health (the admin API) and the quorum (Prometheus) while it rolls the
    /// Kafka nodes (unset: the node's public IP; `127.0.0.1` through an SSH tunnel that
    /// forwards both ports).
    pub platform_host: Option<String>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            build: None,
            bin_dir: "${CARGO_TARGET_DIR:-target}/release".to_owned(),
            collection: None,
            ssh_private_key: None,
            platform_host: None,
        }
    }
}

impl PlatformConfig {
    /// A platform on AWS in `region` with the platform's defaults — what `stacks/envs/prod.toml`
    /// says without its comments: a 10.0.0.0/16 VPC over the zones `<region>a`, `b` and `c`,
    /// Debian 12 (amd64), 3 KRaft controllers and 3 brokers on m7i-flex.large, a Connect
    /// worker and a t3.small platform node, replication 3 with min ISR 2, the default ports,
    /// PLAINTEXT. SSH and the monitoring ports are reachable from `operator_cidr`, with the
    /// operator's `ssh_public_key`. Change any field afterwards; `policy::check` (which
    /// `KafkaPlatform::register` runs) judges the result.
    pub fn on_aws(region: &str, operator_cidr: Ipv4Net, ssh_public_key: &str) -> Self {
        let group = |count: u32, instance_type: &str, root_volume_gib: u32| NodeGroup {
            count: Some(count),
            instance_type: instance_type.to_owned(),
            root_volume_gib: Some(root_volume_gib),
            memory_gib: None,
        };
        Self {
            site: Site::Aws(Box::new(AwsSite {
                aws: AwsConfig {
                    region: region.to_owned(),
                    endpoint_url: None,
                    consistency_window: None,
                },
                network: NetworkConfig {
                    vpc_cidr: Ipv4Net::new_assert(std::net::Ipv4Addr::new(10, 0, 0, 0), 16),
                    availability_zones: ["a", "b", "c"].map(|z| format!("{region}{z}")).to_vec(),
                    operator_cidr,
                    allow_open_operator_cidr: false,
                    allow_fewer_than_three_zones: false,
                },
                ssh: SshConfig {
                    public_key: ssh_public_key.to_owned(),
                    user: None,
                },
                ami: AmiConfig {
                    owners: vec!["136693071363".to_owned()],
                    name: "debian-12-amd64-*".to_owned(),
                    architecture: Some("x86_64".to_owned()),
                },
                nodes: Nodes {
                    controller: group(3, "m7i-flex.large", 50),
                    broker: group(3, "m7i-flex.large", 200),
                    connect: group(1, "m7i-flex.large", 50),
                    platform: group(1, "t3.small", 30),
                },
                deploy: DeployConfig::default(),
            })),
            kafka: KafkaConfig::default(),
            ports: Ports::default(),
            alerting: AlertingConfig::default(),
            monitoring: MonitoringConfig::default(),
            connector: ConnectorSettings::default(),
            security: SecurityConfig::default(),
        }
    }

    /// The AWS tables, when the platform runs on AWS.
    pub fn aws(&self) -> Option<&AwsSite> {
        match &self.site {
            Site::Aws(aws) => Some(aws),
            Site::Local(_) => None,
        }
    }

    /// The AWS tables to change, when the platform runs on AWS.
    pub fn aws_mut(&mut self) -> Option<&mut AwsSite> {
        match &mut self.site {
            Site::Aws(aws) => Some(aws),
            Site::Local(_) => None,
        }
    }

    /// How many nodes of `role` the platform has: the `[nodes]` table on AWS; the seed's
    /// topology on this machine (3 controllers, 3 brokers, a Connect worker, a platform node).
    pub fn count(&self, role: Role) -> u32 {
        match &self.site {
            Site::Aws(aws) => aws.nodes.count(role),
            Site::Local(_) => role.default_count(),
        }
    }

    /// Whether the platform runs the HTTP source connector: on the Connect nodes, polling the
    /// admin API on the platform node (so only with both).
    pub fn runs_connector(&self) -> bool {
        self.count(Role::Platform) > 0 && self.count(Role::Connect) > 0
    }

    /// The address services listen on: every interface of a node on AWS (its security
    /// groups decide who reaches it), only 127.0.0.1 on this machine.
    pub fn listen_host(&self) -> &'static str {
        match self.site {
            Site::Aws(_) => "0.0.0.0",
            Site::Local(_) => "127.0.0.1",
        }
    }

    /// The login user Ansible connects as (`admin` where nothing names one).
    pub fn ssh_user(&self) -> &str {
        self.aws().map_or("admin", |aws| aws.ssh.user())
    }
}

/// The platform on this machine: Apache Kafka as 3 KRaft controllers and 3 brokers in three
/// local zones, a Kafka Connect worker, the admin API, the HTTP source connector, Prometheus,
/// Alertmanager and node_exporter as processes on 127.0.0.1, on the ports of `[ports]` (the
/// second and third controller and broker on each port plus 100 and 200), each started with the
/// configuration rendered for the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSite {
    /// Where the processes keep their data and logs (default `.iac/local/<env>`).
    #[serde(default)]
    pub dir: Option<String>,
    /// A shell command the CLI runs before planning, to build the programs this workspace
    /// makes (the admin API and the connector); unset: they are expected to exist.
    #[serde(default)]
    pub build: Option<String>,
    /// The programs (a path, `~/` for the home folder, or a name on `PATH`; `${NAME}` and
    /// `${NAME:-default}` are replaced by environment variables).
    #[serde(default)]
    pub programs: LocalPrograms,
    /// The Kafka JVMs' heaps.
    #[serde(default)]
    pub heap: LocalHeap,
}

/// The programs of a local platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPrograms {
    /// Java 17 or later, which runs Kafka and Connect.
    pub java: String,
    /// The Kafka folder scripts/setup.sh fetches with Maven: the jars in `libs/`, the JMX
    /// exporter agent in `agent/`, the logging configuration in `config/log4j2.yaml`.
    pub kafka: String,
    /// Prometheus (Debian package `prometheus`).
    pub prometheus: String,
    /// Alertmanager (Debian package `prometheus-alertmanager`).
    pub alertmanager: String,
    /// node_exporter (Debian package `prometheus-node-exporter`).
    pub node_exporter: String,
    /// This workspace's `kafka-admin-api`.
    pub admin_api: String,
    /// This workspace's `http-source-connector`.
    pub connector: String,
}

impl Default for LocalPrograms {
    fn default() -> Self {
        Self {
            java: "java".into(),
            kafka: "~/.cache/kafka-platform/kafka".into(),
            prometheus: "prometheus".into(),
            alertmanager: "prometheus-alertmanager".into(),
            node_exporter: "prometheus-node-exporter".into(),
            admin_api: "target/debug/kafka-admin-api".into(),
            connector: "target/debug/http-source-connector".into(),
        }
    }
}

/// The heap of each local Kafka JVM, in MiB (`-Xms` = `-Xmx`): seven JVMs share one
/// machine, so far below Kafka's default of 1 GiB each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalHeap {
    /// Each KRaft controller (default 256).
    pub controller_mib: u32,
    /// Each broker (default 512).
    pub broker_mib: u32,
    /// The Connect worker (default 384).
    pub connect_mib: u32,
}

impl Default for LocalHeap {
    fn default() -> Self {
        Self {
            controller_mib: 256,
            broker_mib: 512,
            connect_mib: 384,
        }
    }
}

impl LocalHeap {
    /// The heap of a node of `role` (none for the platform node: no JVM).
    pub fn of(&self, role: Role) -> Option<u32> {
        match role {
            Role::Controller => Some(self.controller_mib),
            Role::Broker => Some(self.broker_mib),
            Role::Connect => Some(self.connect_mib),
            Role::Platform => None,
        }
    }
}

/// An environment file as written: the tables of either site.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aws: Option<AwsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<NetworkConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssh: Option<SshConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ami: Option<AmiConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes: Option<Nodes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deploy: Option<DeployConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local: Option<LocalSite>,
    #[serde(default)]
    kafka: KafkaConfig,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    kafka_broker_custom_properties: BTreeMap<String, PropertyValue>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    kafka_controller_custom_properties: BTreeMap<String, PropertyValue>,
    #[serde(default)]
    ports: Ports,
    #[serde(default)]
    alerting: AlertingConfig,
    #[serde(default)]
    monitoring: MonitoringConfig,
    #[serde(default)]
    connector: ConnectorSettings,
    #[serde(default)]
    security: SecurityConfig,
}

impl TryFrom<ConfigFile> for PlatformConfig {
    type Error = String;

    fn try_from(file: ConfigFile) -> Result<Self, String> {
        let site = match (
            file.local,
            file.aws,
            file.network,
            file.ssh,
            file.ami,
            file.nodes,
        ) {
            (Some(local), None, None, None, None, None) if file.deploy.is_none() => {
                Site::Local(Box::new(local))
            }
            (Some(_), ..) => {
                return Err("a local environment ([local]) has no [aws], [network], [ssh], [ami], [nodes] or [deploy] table: remove them, or remove [local]".into());
            }
            (None, Some(aws), Some(network), Some(ssh), Some(ami), Some(nodes)) => {
                Site::Aws(Box::new(AwsSite {
                    aws,
                    network,
                    ssh,
                    ami,
                    nodes,
                    deploy: file.deploy.unwrap_or_default(),
                }))
            }
            (None, aws, network, ssh, ami, nodes) => {
                let missing: Vec<&str> = [
                    ("[aws]", aws.is_none()),
                    ("[network]", network.is_none()),
                    ("[ssh]", ssh.is_none()),
                    ("[ami]", ami.is_none()),
                    ("[nodes]", nodes.is_none()),
                ]
                .into_iter()
                .filter_map(|(table, absent)| absent.then_some(table))
                .collect();
                return Err(format!(
                    "missing {}: an AWS environment needs [aws], [network], [ssh], [ami] and [nodes]; one on this machine needs [local] instead",
                    missing.join(", ")
                ));
            }
        };
        let text = |table: BTreeMap<String, PropertyValue>| {
            table.into_iter().map(|(k, v)| (k, v.0)).collect()
        };
        Ok(Self {
            site,
            kafka: KafkaConfig {
                broker_properties: text(file.kafka_broker_custom_properties),
                controller_properties: text(file.kafka_controller_custom_properties),
                ..file.kafka
            },
            ports: file.ports,
            alerting: file.alerting,
            monitoring: file.monitoring,
            connector: file.connector,
            security: file.security,
        })
    }
}

impl From<PlatformConfig> for ConfigFile {
    fn from(config: PlatformConfig) -> Self {
        let (aws, local) = match config.site {
            Site::Aws(aws) => (Some(*aws), None),
            Site::Local(local) => (None, Some(*local)),
        };
        Self {
            network: aws.as_ref().map(|a| a.network.clone()),
            ssh: aws.as_ref().map(|a| a.ssh.clone()),
            ami: aws.as_ref().map(|a| a.ami.clone()),
            nodes: aws.as_ref().map(|a| a.nodes.clone()),
            deploy: aws.as_ref().map(|a| a.deploy.clone()),
            aws: aws.map(|a| a.aws),
            local,
            kafka_broker_custom_properties: property_values(&config.kafka.broker_properties),
            kafka_controller_custom_properties: property_values(
                &config.kafka.controller_properties,
            ),
            kafka: config.kafka,
            ports: config.ports,
            alerting: config.alerting,
            monitoring: config.monitoring,
            connector: config.connector,
            security: config.security,
        }
    }
}

/// A Kafka property's value as the environment file may write it: text, a number or a
/// boolean, kept as the text Kafka reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PropertyValue(String);

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) => Ok(Self(text)),
            toml::Value::Integer(n) => Ok(Self(n.to_string())),
            toml::Value::Float(x) => Ok(Self(x.to_string())),
            toml::Value::Boolean(b) => Ok(Self(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "a Kafka property is text, a number or a boolean, not {}",
                other.type_str()
            ))),
        }
    }
}

impl Serialize for PropertyValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

fn property_values(properties: &BTreeMap<String, String>) -> BTreeMap<String, PropertyValue> {
    properties
        .iter()
        .map(|(k, v)| (k.clone(), PropertyValue(v.clone())))
        .collect()
}

/// How Kafka's listeners and clients are secured (`[security]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `"plaintext"` (the default) or `"sasl_ssl"`: TLS on every Kafka listener with
    /// certificates the stack generates, SCRAM-SHA-512 for every client and broker, mutual TLS
    /// between brokers and controllers.
    pub protocol: SecurityProtocol,
    /// Where the files holding secrets (keys, passwords) are written, mode 0600: an absolute
    /// path outside the repository. The `stacks` CLI defaults it to
    /// `~/.local/state/kafka-platform/<env>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_dir: Option<String>,
    /// How long the environment's CA certificate is valid, in days (default 1825).
    pub ca_validity_days: u32,
    /// How long each node's certificate is valid, in days (default 397); a plan renews one
    /// in its last third.
    pub certificate_validity_days: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            credentials_dir: None,
            ca_validity_days: 1825,
            certificate_validity_days: 397,
        }
    }
}

impl SecurityConfig {
    /// Whether listeners and clients use SASL_SSL.
    pub fn is_sasl_ssl(&self) -> bool {
        self.protocol == SecurityProtocol::SaslSsl
    }

    /// The credentials folder of a SASL_SSL platform (none for PLAINTEXT, or when it is not
    /// set: the policy refuses that).
    pub fn sasl_ssl_credentials(&self) -> Option<&str> {
        self.credentials_dir
            .as_deref()
            .filter(|_| self.is_sasl_ssl())
    }

    /// Resolves `credentials_dir` against the user's `home`: a leading `~/` is the home, and
    /// a SASL_SSL platform without one gets `<home>/.local/state/kafka-platform/<env>`.
    pub fn resolve_credentials_dir(&mut self, env: &str, home: &Path) {
        match self.credentials_dir.as_deref() {
            Some(dir) => {
                if let Some(rest) = dir.strip_prefix("~/") {
                    self.credentials_dir = Some(home.join(rest).to_string_lossy().into_owned());
                }
            }
            None if self.is_sasl_ssl() => {
                let dir = home.join(".local/state/kafka-platform").join(env);
                self.credentials_dir = Some(dir.to_string_lossy().into_owned());
            }
            None => {}
        }
    }
}

/// Kafka's security protocol for the platform's listeners and clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    Plaintext,
    /// TLS and SCRAM-SHA-512.
    SaslSsl,
}

/// Prometheus settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// How often Prometheus scrapes and evaluates rules (default `"15s"`).
    #[serde(with = "duration_text")]
    pub scrape_interval: std::time::Duration,
    /// A connector whose source has not answered for this long raises
    /// `ConnectorSourceStalled` (default `"10m"`); the alert waits half as long again
    /// before it fires.
    #[serde(with = "duration_text")]
    pub source_stalled_after: std::time::Duration,
    /// The longest an alert waits pending before it fires (its `for:`): unset, each alert
    /// waits its own production time (1 to 15 minutes); a local platform, watched as things
    /// happen, sets seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text::optional"
    )]
    pub alerts_pending_at_most: Option<std::time::Duration>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            scrape_interval: std::time::Duration::from_secs(15),
            source_stalled_after: std::time::Duration::from_secs(600),
            alerts_pending_at_most: None,
        }
    }
}

/// The HTTP source connector's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorSettings {
    /// How often it polls the admin API's `/topics` (default `"30s"`).
    #[serde(with = "duration_text")]
    pub poll_interval: std::time::Duration,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        Self {
            poll_interval: std::time::Duration::from_secs(30),
        }
    }
}

/// Alert delivery. Without receivers, alerts are only shown in Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Webhook receivers; the first receives every alert, critical ones go to every receiver.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    /// How long Alertmanager waits to group a new alert's first notification (default
    /// `"30s"`).
    #[serde(default = "AlertingConfig::default_group_wait", with = "duration_text")]
    pub group_wait: std::time::Duration,
    /// How long it waits before notifying a group's changes, resolutions included (default
    /// `"5m"`).
    #[serde(
        default = "AlertingConfig::default_group_interval",
        with = "duration_text"
    )]
    pub group_interval: std::time::Duration,
}

impl AlertingConfig {
    fn default_group_wait() -> std::time::Duration {
        std::time::Duration::from_secs(30)
    }

    fn default_group_interval() -> std::time::Duration {
        std::time::Duration::from_secs(300)
    }
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            receivers: Vec::new(),
            group_wait: Self::default_group_wait(),
            group_interval: Self::default_group_interval(),
        }
    }
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
        with = "duration_text::optional"
    )]
    pub consistency_window: Option<std::time::Duration>,
}

impl AwsConfig {
    /// The AWS provider's settings for this environment (the rest left at their defaults).
    pub fn settings(&self) -> iac_aws::AwsSettings {
        let defaults = iac_aws::AwsSettings::default();
        iac_aws::AwsSettings {
            region: Some(self.region.clone()),
            endpoint_url: self.endpoint_url.clone(),
            consistency_window: self
                .consistency_window
                .unwrap_or(defaults.consistency_window),
            ..defaults
        }
    }
}

/// An IPv4 network written in CIDR notation (`"10.0.0.0/16"`), without host bits.
mod cidr_text {
    use ipnet::Ipv4Net;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Ipv4Net,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Ipv4Net, D::Error> {
        let text = String::deserialize(deserializer)?;
        let net: Ipv4Net = text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an IPv4 network in CIDR notation (like 10.0.0.0/16)"
            ))
        })?;
        if net.trunc() != net {
            return Err(serde::de::Error::custom(format!(
                "`{text}` has host bits set: did you mean {}?",
                net.trunc()
            )));
        }
        Ok(net)
    }
}

/// A duration written as text (`"2s"`, `"1m 30s"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}): write it like \"30s\" or \"1m 30s\""
            ))
        })
    }

    /// The same, optional.
    pub(super) mod optional {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(in crate::config) fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(d) => super::serialize(d, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}

/// Network layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The VPC's CIDR block (/22 or larger: each zone gets a /24).
    #[serde(with = "cidr_text")]
    pub vpc_cidr: Ipv4Net,
    /// Availability zones, one subnet each; nodes are spread round-robin.
    pub availability_zones: Vec<String>,
    /// Who may reach SSH, Prometheus, Grafana, Alertmanager and the admin API.
    #[serde(with = "cidr_text")]
    pub operator_cidr: Ipv4Net,
    /// Allow `operator_cidr = "0.0.0.0/0"` (the whole internet).
    #[serde(default)]
    pub allow_open_operator_cidr: bool,
    /// Allow fewer than three zones (a sandbox; the quorum then shares a zone).
    #[serde(default)]
    pub allow_fewer_than_three_zones: bool,
}

impl NetworkConfig {
    /// Each zone's /24, in the order of `availability_zones`: the n-th zone's is the VPC's
    /// n-th /24 after its first. `None` where the VPC has no room for them.
    pub fn zone_subnets(&self) -> Option<Vec<(String, Ipv4Net)>> {
        let mut blocks = self.vpc_cidr.subnets(24).ok()?.skip(1);
        self.availability_zones
            .iter()
            .map(|zone| Some((zone.clone(), blocks.next()?)))
            .collect()
    }
}

/// The fixed private address of the `n`-th node (0-based) of `role` in a zone's `subnet`:
/// the role's first host + `n` (the policy keeps it inside the role's hosts).
pub fn node_address(subnet: Ipv4Net, role: Role, n: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(subnet.network()).saturating_add(role.first_host() + n))
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
    /// The instance type's memory in GiB, for a type the policy's memory table does not list
    /// (it then wins over the table).
    #[serde(default)]
    pub memory_gib: Option<u32>,
}

/// Kafka settings checked at preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Default replication factor.
    pub replication_factor: u32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: u32,
    /// Every broker's own properties (the table `[kafka_broker_custom_properties]`, as
    /// cp-ansible names it): added to what the platform sets; a change rolls the brokers.
    #[serde(skip)]
    pub broker_properties: BTreeMap<String, String>,
    /// Every controller's own properties (`[kafka_controller_custom_properties]`).
    #[serde(skip)]
    pub controller_properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            replication_factor: 3,
            min_insync_replicas: 2,
            broker_properties: BTreeMap::new(),
            controller_properties: BTreeMap::new(),
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
