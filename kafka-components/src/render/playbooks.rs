//! The deployment's own files on AWS: the playbooks for every node, the platform node and
//! the Connect nodes (cp-ansible deploys Kafka itself from the inventory), and the systemd
//! units of the platform's services.

use askama::Template;

use super::kafka::bootstrap_servers;
use super::monitoring::GRAFANA_DASHBOARDS;
use super::paths;
use super::{NodeFacts, RenderError, RenderedFile, file};
use crate::config::PlatformConfig;
use crate::ports::Ports;
use crate::security::{self, CA_ON_NODES, CONNECT_SECRETS_ON_NODES};

/// The ansible-core the deployment runs: the newest cp-ansible supports (2.16 to 2.18).
pub const ANSIBLE_CORE_VERSION: &str = "2.18.19";

/// The cp-ansible (`confluent.platform` collection) release the inventory is written for.
pub const CP_ANSIBLE_VERSION: &str = "8.3.0";

/// Where a service's files live on the nodes.
const ON_NODES: &str = "/etc/kafka-platform";

/// Where a file a service needs comes from.
enum Source {
    /// A file of the rendered folder (its path there).
    Rendered(String),
    /// A file of the credentials folder (its full path on the machine that deploys).
    Credential(String),
    /// Text, which may look a secret up with Ansible's `lookup`.
    Content(String),
}

/// A file a service needs on its node.
struct NodeFile {
    source: Source,
    dest: String,
    group: &'static str,
    mode: &'static str,
    /// Holds a secret: Ansible logs nothing of the task.
    secret: bool,
}

impl NodeFile {
    fn public(source: Source, dest: String) -> Self {
        Self {
            source,
            dest,
            group: "root",
            mode: "0644",
            secret: false,
        }
    }

    /// Readable by the services' user only.
    fn secret(source: Source, dest: String) -> Self {
        Self {
            source,
            dest,
            group: "kafka-platform",
            mode: "0640",
            secret: true,
        }
    }
}

/// A service installed as a systemd unit: its binary (named as the unit), its files and its
/// unit file, which the playbooks copy; a change to any restarts it.
struct ServiceDeploy {
    unit: &'static str,
    files: Vec<NodeFile>,
}

#[derive(Template)]
#[template(path = "ansible/nodes.yml", escape = "none")]
struct NodesPlaybook<'a> {
    env: &'a str,
    ports: &'a Ports,
    nodes: &'a [NodeFacts],
    /// The CA and Connect's JAAS settings to put on the Connect nodes, on a SASL_SSL
    /// platform.
    connect_files: Vec<NodeFile>,
}

#[derive(Template)]
#[template(path = "ansible/platform.yml", escape = "none")]
struct PlatformPlaybook<'a> {
    env: &'a str,
    ports: &'a Ports,
    listen_host: &'a str,
    sasl_ssl: bool,
    grafana_dashboards: &'a str,
    services: Vec<ServiceDeploy>,
}

#[derive(Template)]
#[template(path = "ansible/connect.yml", escape = "none")]
struct ConnectPlaybook<'a> {
    env: &'a str,
    services: Vec<ServiceDeploy>,
}

#[derive(Template)]
#[template(path = "deploy/deploy.sh", escape = "none")]
struct DeployScript<'a> {
    env: &'a str,
    ansible_core: &'a str,
    cp_ansible: &'a str,
    /// Where the steps' whole output goes (shell text).
    logs: String,
    /// The variables file with the secrets, on a SASL_SSL platform.
    secrets: Option<String>,
    /// Where a controller keeps its cluster id (cp-ansible's data folder).
    controller_meta: &'static str,
}

/// The KRaft metadata properties of a controller cp-ansible installed, with the cluster's id.
const CONTROLLER_META: &str = "/var/lib/controller/data/meta.properties";

#[derive(Template)]
#[template(path = "systemd/unit.service", escape = "none")]
struct Unit<'a> {
    env: &'a str,
    description: &'a str,
    exec_start: String,
    environment_file: Option<String>,
}

/// The unit file of `unit`, in the rendered folder.
fn unit_path(unit: &str) -> String {
    format!("systemd/{unit}.service")
}

/// The unit file as the service's last file: copied after its configuration.
fn unit_file(unit: &str) -> NodeFile {
    NodeFile::public(
        Source::Rendered(unit_path(unit)),
        format!("/etc/systemd/system/{unit}.service"),
    )
}

/// The CA certificate on a node, from the credentials folder.
fn ca(credentials_dir: &str) -> NodeFile {
    NodeFile::public(
        Source::Credential(format!("{credentials_dir}/{}", security::CA_FILE)),
        CA_ON_NODES.to_owned(),
    )
}

const ADMIN_API: &str = "kafka-admin-api";
const CONNECTOR: &str = "http-source-connector";

/// The Connect node's playbook and the connector's unit.
fn connector_deploy_files(
    env: &str,
    files: Vec<NodeFile>,
    environment_file: Option<String>,
) -> Result<[RenderedFile; 2], RenderError> {
    Ok([
        file(
            paths::CONNECT_PLAYBOOK,
            ConnectPlaybook {
                env,
                services: vec![ServiceDeploy {
                    unit: CONNECTOR,
                    files,
                }],
            }
            .render(),
        )?,
        file(
            paths::CONNECTOR_UNIT,
            Unit {
                env,
                description: "HTTP source connector",
                exec_start: format!("/usr/local/bin/{CONNECTOR} {ON_NODES}/{CONNECTOR}.json"),
                environment_file,
            }
            .render(),
        )?,
    ])
}

/// What the services' deployments copy to the nodes, and the admin API's command line.
struct ServiceFiles {
    admin_api_start: String,
    admin_api: Vec<NodeFile>,
    connector: Vec<NodeFile>,
    /// The connector's environment file (its SASL password), on a SASL_SSL platform.
    connector_environment: Option<String>,
    connect: Vec<NodeFile>,
}

impl ServiceFiles {
    fn of(config: &PlatformConfig, nodes: &[NodeFacts]) -> Self {
        let ports = &config.ports;
        let bootstrap_servers = bootstrap_servers(ports, nodes);

        let mut admin_api_start = format!(
            "/usr/local/bin/{ADMIN_API} --bootstrap-servers {bootstrap_servers} --listen {}:{}",
            config.listen_host(),
            ports.admin_api
        );
        let mut admin_api_files = Vec::new();
        let mut connector_files = vec![NodeFile::public(
            Source::Rendered(paths::CONNECTOR.to_owned()),
            format!("{ON_NODES}/{CONNECTOR}.json"),
        )];
        let mut connector_environment = None;
        let mut connect_files = Vec::new();
        if let Some(dir) = config.security.sasl_ssl_credentials() {
            let password = format!("{ON_NODES}/{}", security::ADMIN_API_PASSWORD_FILE);
            for arg in security::admin_api_sasl_args(&password, CA_ON_NODES) {
                admin_api_start.push(' ');
                admin_api_start.push_str(&arg);
            }
            admin_api_files.extend([
                ca(dir),
                NodeFile::secret(
                    Source::Credential(format!("{dir}/{}", security::ADMIN_API_PASSWORD_FILE)),
                    password,
                ),
            ]);
            let environment = format!("{ON_NODES}/{CONNECTOR}.env");
            connector_files.extend([
                ca(dir),
                NodeFile {
                    // systemd reads it as root before it starts the service.
                    group: "root",
                    mode: "0600",
                    ..NodeFile::secret(
                        Source::Content(format!(
                            "{}={{{{ lookup('ansible.builtin.file', '{dir}/{}') }}}}\\n",
                            security::CONNECTOR_PASSWORD_VARIABLE,
                            security::CONNECTOR_PASSWORD_FILE
                        )),
                        environment.clone(),
                    )
                },
            ]);
            connector_environment = Some(environment);
            connect_files.extend([
                ca(dir),
                NodeFile {
                    // cp-ansible's group for the Connect worker.
                    group: "confluent",
                    ..NodeFile::secret(
                        Source::Credential(format!("{dir}/{}", security::CONNECT_SECRETS_FILE)),
                        CONNECT_SECRETS_ON_NODES.to_owned(),
                    )
                },
            ]);
        }
        admin_api_files.push(unit_file(ADMIN_API));
        connector_files.push(unit_file(CONNECTOR));
        Self {
            admin_api_start,
            admin_api: admin_api_files,
            connector: connector_files,
            connector_environment,
            connect: connect_files,
        }
    }
}

/// The playbooks and units, on AWS (the local platform runs its processes itself).
pub(super) fn files(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
) -> Result<Vec<RenderedFile>, RenderError> {
    if config.aws().is_none() {
        return Ok(Vec::new());
    }
    let ports = &config.ports;
    let credentials_dir = config.security.sasl_ssl_credentials();
    let ServiceFiles {
        admin_api_start,
        admin_api: admin_api_files,
        connector: connector_files,
        connector_environment,
        connect: connect_files,
    } = ServiceFiles::of(config, nodes);

    let mut files = vec![
        file(
            paths::DEPLOY_SCRIPT,
            DeployScript {
                env,
                ansible_core: ANSIBLE_CORE_VERSION,
                cp_ansible: CP_ANSIBLE_VERSION,
                logs: format!("${{XDG_STATE_HOME:-$HOME/.local/state}}/kafka-platform/{env}"),
                secrets: credentials_dir.map(|dir| format!("{dir}/{}", security::SECRETS_FILE)),
                controller_meta: CONTROLLER_META,
            }
            .render(),
        )?,
        file(
            paths::NODES_PLAYBOOK,
            NodesPlaybook {
                env,
                ports,
                nodes,
                connect_files,
            }
            .render(),
        )?,
        file(
            paths::PLATFORM_PLAYBOOK,
            PlatformPlaybook {
                env,
                ports,
                listen_host: config.listen_host(),
                sasl_ssl: credentials_dir.is_some(),
                grafana_dashboards: GRAFANA_DASHBOARDS,
                services: vec![ServiceDeploy {
                    unit: ADMIN_API,
                    files: admin_api_files,
                }],
            }
            .render(),
        )?,
        file(
            paths::ADMIN_API_UNIT,
            Unit {
                env,
                description: "Kafka admin REST API",
                exec_start: admin_api_start,
                environment_file: None,
            }
            .render(),
        )?,
    ];
    if config.runs_connector() {
        files.extend(connector_deploy_files(
            env,
            connector_files,
            connector_environment,
        )?);
    }
    Ok(files)
}
