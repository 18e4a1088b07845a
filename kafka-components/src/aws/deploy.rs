//! The deployment onto the AWS nodes, as part of the graph: after the instances and the
//! rendered files, a `local:Command` per step runs the rendered `deploy/deploy.sh` — the nodes
//! playbook, cp-ansible, the platform node's playbook, the Connect nodes' playbook — and each
//! re-runs exactly when something it reads changes (the digests of its files, the versions,
//! the services' binaries, the credentials it copies). Beside them, a command per controller
//! and broker deploys onto that node alone when its instance is replaced (`deploy.sh node`):
//! the rolling group `kafka` waits for it before it asks its gate and touches the next.

use std::collections::BTreeMap;

use iac_core::{Output, ResourceOptions, Stack};
use iac_local::{Command, CommandArgs, Environment};

use super::Node;
use crate::config::{AwsSite, DeployConfig, PlatformConfig};
use crate::programs::{program_fingerprint, program_path};
use crate::render::{RenderedConfig, paths};
use crate::role::Role;
use crate::security::{self, Credentials};
use crate::triggers::{CREDENTIALS_DIGEST, digest};

pub use crate::render::playbooks::{ANSIBLE_CORE_VERSION, CP_ANSIBLE_VERSION};

/// The credentials a step copies to the nodes, on a SASL_SSL platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copies {
    /// Every one (cp-ansible reads the certificates, keys and SCRAM passwords).
    Every,
    /// These files of the credentials folder.
    Only(&'static [&'static str]),
}

/// A deployment step: its resource, what it runs and what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The `local:Command` resource's name.
    pub name: &'static str,
    /// The argument of `deploy/deploy.sh`.
    pub argument: &'static str,
    /// What it does, for people.
    pub does: &'static str,
    /// The rendered files it reads (path prefixes): a change to one re-runs it.
    pub reads: &'static [&'static str],
    /// The versions of what it runs, by name.
    pub versions: &'static [(&'static str, &'static str)],
    /// The services' binaries it copies.
    pub binaries: &'static [&'static str],
    /// The credentials it copies.
    pub credentials: Copies,
    /// Whether it deploys onto the Connect nodes what polls the platform node (a platform
    /// without either has no such step).
    pub needs_connect_and_platform: bool,
    /// The steps it runs after.
    pub after: &'static [&'static str],
    /// Whether its later runs roll: cp-ansible's rolling deployment, one node at a time,
    /// each checked before the next (`deploy.sh <argument> rolling`).
    pub rolls_later: bool,
}

/// What every step runs Ansible with.
const ANSIBLE: (&str, &str) = ("ansible-core", ANSIBLE_CORE_VERSION);

/// What every step reads: the inventory, Ansible's settings and the script.
const COMMON: [&str; 3] = [paths::INVENTORY, paths::ANSIBLE_CONFIG, paths::DEPLOY];

/// The steps, in the order they run.
pub const STEPS: [Step; 4] = [
    Step {
        name: "deploy-nodes",
        argument: "nodes",
        does: "host entries and node_exporter on every node (ansible/nodes.yml), once SSH answers",
        reads: &[paths::NODES_PLAYBOOK],
        versions: &[ANSIBLE],
        binaries: &[],
        credentials: Copies::Only(&[security::CA_FILE, security::CONNECT_SECRETS_FILE]),
        needs_connect_and_platform: false,
        after: &[],
        rolls_later: false,
    },
    Step {
        name: "deploy-kafka",
        argument: "kafka",
        does: "Kafka: cp-ansible's confluent.platform.all with the inventory",
        reads: &[paths::JMX],
        versions: &[ANSIBLE, ("cp-ansible", CP_ANSIBLE_VERSION)],
        binaries: &[],
        credentials: Copies::Every,
        needs_connect_and_platform: false,
        after: &["deploy-nodes"],
        rolls_later: true,
    },
    Step {
        name: "deploy-platform",
        argument: "platform",
        does: "Prometheus, Alertmanager, Grafana and the admin API on the platform node (ansible/platform.yml)",
        reads: &[
            paths::PLATFORM_PLAYBOOK,
            paths::PROMETHEUS,
            paths::ALERTMANAGER,
            paths::GRAFANA,
            paths::ADMIN_API_UNIT,
        ],
        versions: &[ANSIBLE],
        binaries: &["kafka-admin-api"],
        credentials: Copies::Only(&[
            security::CA_FILE,
            security::ADMIN_API_PASSWORD_FILE,
            security::SECRETS_FILE,
        ]),
        needs_connect_and_platform: false,
        after: &["deploy-kafka"],
        rolls_later: false,
    },
    Step {
        name: "deploy-connect",
        argument: "connect",
        does: "the HTTP source connector on the Connect nodes (ansible/connect.yml)",
        reads: &[
            paths::CONNECT_PLAYBOOK,
            paths::CONNECTOR,
            paths::CONNECTOR_UNIT,
        ],
        versions: &[ANSIBLE],
        binaries: &["http-source-connector"],
        credentials: Copies::Only(&[security::CA_FILE, security::CONNECTOR_PASSWORD_FILE]),
        needs_connect_and_platform: true,
        after: &["deploy-kafka"],
        rolls_later: false,
    },
];

/// The steps of a platform: the Connect step only where the connector runs.
pub fn steps(config: &PlatformConfig) -> impl Iterator<Item = &'static Step> {
    let connector = config.runs_connector();
    STEPS
        .iter()
        .filter(move |step| connector || !step.needs_connect_and_platform)
}

/// The name of the command that deploys onto the node `node` alone (`deploy-broker-2`).
fn onto_node(node: &str) -> String {
    format!("deploy-{node}")
}

/// Every command of a platform's deployment, by name: its steps, then one per controller and
/// broker (what `--skip-deploy` leaves as recorded).
pub fn command_names(config: &PlatformConfig) -> Vec<String> {
    let onto_nodes = [Role::Controller, Role::Broker]
        .into_iter()
        .flat_map(|role| (1..=config.count(role)).map(move |n| onto_node(&role.node_name(n))));
    steps(config)
        .map(|step| step.name.to_owned())
        .chain(onto_nodes)
        .collect()
}

/// The triggers of `step`: what it reads with their digest, the versions it runs, and its
/// binaries' fingerprints.
fn triggers(
    step: &Step,
    files: &BTreeMap<String, String>,
    bin_dir: &str,
) -> Result<Vec<String>, String> {
    let reads: Vec<&str> = COMMON.iter().chain(step.reads).copied().collect();
    let mut triggers = vec![format!(
        "files {}: {}",
        reads.join(" "),
        digest(files, &reads)?
    )];
    triggers.extend(
        step.versions
            .iter()
            .map(|(name, version)| format!("{name} {version}")),
    );
    triggers.extend(
        step.binaries
            .iter()
            .map(|b| program_fingerprint(&format!("{bin_dir}/{b}"))),
    );
    Ok(triggers)
}

/// The deployment's commands.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// The steps, in [`STEPS`]' order.
    pub steps: Vec<Command>,
    /// The command that deploys onto one controller or broker once its instance is replaced,
    /// by the node's name in the component (`broker-2`).
    pub onto_node: BTreeMap<String, Command>,
}

impl Deployment {
    /// Every command: the steps, then those onto one node.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.steps.iter().chain(self.onto_node.values())
    }
}

/// Registers the deployment after `rendered` (and, on a SASL_SSL platform, the
/// credentials) and `nodes`, when `[deploy]` enables it; `rendered_dir` is the rendered
/// folder.
pub(crate) fn register(
    stack: &mut Stack,
    config: &PlatformConfig,
    site: &AwsSite,
    rendered: &RenderedConfig,
    credentials: Option<&Credentials>,
    nodes: &[Node],
    rendered_dir: &str,
) -> Deployment {
    let deploy = &site.deploy;
    if !deploy.enabled {
        return Deployment::default();
    }
    let dir = absolute(rendered_dir);
    let bin_dir = absolute(&deploy.bin_dir);
    let environment = environment(deploy);
    let mut after_files = ResourceOptions::new().depends_on(&rendered.folder);
    if let Some(credentials) = credentials {
        after_files = after_files.depends_on(&credentials.folder);
    }
    let onto_node: BTreeMap<String, Command> = nodes
        .iter()
        .filter(|node| matches!(node.role, Role::Controller | Role::Broker))
        .map(|node| {
            let command = register_onto_node(stack, node, &dir, &environment, after_files.clone());
            (node.name.clone(), command)
        })
        .collect();
    let mut after_nodes = after_files;
    for node in nodes {
        after_nodes = after_nodes.depends_on(&node.instance);
    }
    for command in onto_node.values() {
        after_nodes = after_nodes.depends_on(command);
    }
    let mut registered: Vec<(&'static str, Command)> = Vec::new();
    let files = rendered.files.clone();
    for step in steps(config) {
        let bin_dir = bin_dir.clone();
        let step_triggers = files
            .clone()
            .try_map(move |files| triggers(step, &files, &bin_dir));
        let mut options = after_nodes.clone();
        let mut step_environment = Output::known(environment.clone());
        if let Some(credentials) = credentials {
            let read: Vec<String> = match step.credentials {
                Copies::Every => credentials.files.clone(),
                Copies::Only(files) => files.iter().map(|f| (*f).to_owned()).collect(),
            };
            step_environment = step_environment.zip(credentials.contents.clone()).try_map(
                move |(mut environment, contents)| {
                    environment.insert(CREDENTIALS_DIGEST.to_owned(), digest(&contents, &read)?);
                    Ok(environment)
                },
            );
        }
        for (name, earlier) in &registered {
            if step.after.contains(name) {
                options = options.depends_on(earlier);
            }
        }
        let command = stack.resource_with::<Command>(
            step.name,
            CommandArgs {
                create: format!("sh deploy/deploy.sh {}", step.argument).into(),
                update: Some(format!("sh deploy/deploy.sh {} rolling", step.argument))
                    .filter(|_| step.rolls_later)
                    .into(),
                delete: Output::known(None),
                dir: Some(dir.clone()).into(),
                environment: step_environment,
                triggers: step_triggers,
            },
            options,
        );
        registered.push((step.name, command));
    }
    Deployment {
        steps: registered.into_iter().map(|(_, command)| command).collect(),
        onto_node,
    }
}

/// `path` absolute: the state means the same folders whatever the working directory.
fn absolute(path: &str) -> String {
    let path = program_path(path);
    std::path::absolute(&path).map_or(path.clone(), |p| p.to_string_lossy().into_owned())
}

/// What every command of the deployment runs with: the services' folder, cp-ansible's
/// collection and the SSH key `[deploy]` names.
fn environment(deploy: &DeployConfig) -> Environment {
    let mut environment = Environment::from([(
        "KAFKA_PLATFORM_BIN_DIR".to_owned(),
        absolute(&deploy.bin_dir),
    )]);
    if let Some(collection) = &deploy.collection {
        environment.insert("KAFKA_PLATFORM_COLLECTION".to_owned(), absolute(collection));
    }
    if let Some(key) = &deploy.ssh_private_key {
        environment.insert("ANSIBLE_PRIVATE_KEY_FILE".to_owned(), absolute(key));
    }
    environment
}

/// The command that deploys onto `node` alone once its instance is replaced (its one
/// trigger is the instance's id): nothing at its create, since the `deploy-kafka` step
/// deploys onto every node made with it. It reads nothing that changes with the platform's
/// other steps, so it never runs beside them.
fn register_onto_node(
    stack: &mut Stack,
    node: &Node,
    dir: &str,
    environment: &Environment,
    options: ResourceOptions,
) -> Command {
    let name = format!("{}-{}", stack.name(), node.instance.resource_name());
    let role = node.role.name();
    stack.resource_with::<Command>(
        &onto_node(&node.name),
        CommandArgs {
            create: format!("echo '{name} is deployed onto by deploy-kafka'").into(),
            update: Some(format!(
                "sh deploy/deploy.sh node {} {name} {role}",
                node.private_dns
            ))
            .into(),
            delete: Output::known(None),
            dir: Some(dir.to_owned()).into(),
            environment: Output::known(environment.clone()),
            triggers: node.instance.id().map(|id| vec![format!("instance {id}")]),
        },
        options,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use std::sync::Arc;

    use iac_core::testing::TestProvider;
    use iac_core::{ApplyOptions, Engine, FileBackend, Operation, Providers};
    use iac_local::{Folder, FolderArgs};

    use super::*;

    /// One file of each kind the steps read.
    fn files() -> BTreeMap<String, String> {
        [
            "ansible/ansible.cfg",
            "ansible/hosts.yml",
            "ansible/nodes.yml",
            "ansible/platform.yml",
            "ansible/connect.yml",
            "deploy/deploy.sh",
            "jmx/kafka_broker.yml",
            "prometheus/prometheus.yml",
            "alertmanager/alertmanager.yml",
            "grafana/dashboards/kafka-broker.json",
            "grafana/dashboards/kafka-connect.json",
            "systemd/kafka-admin-api.service",
            "systemd/http-source-connector.service",
            "connect/http-source-connector.json",
            "connect/connect-distributed.properties",
        ]
        .into_iter()
        .map(|path| (path.to_owned(), format!("{path} as rendered")))
        .collect()
    }

    fn program(files: BTreeMap<String, String>, bin_dir: &str) -> iac_core::Program {
        let mut config = PlatformConfig::on_aws(
            "eu-central-1",
            "203.0.113.10/32".parse().unwrap(),
            "ssh-ed25519 AAAA",
        );
        let mut stack = Stack::new("prod");
        let files = Output::known(files);
        let folder = stack.resource::<Folder>(
            "config",
            FolderArgs {
                path: "rendered/prod".into(),
                files: files.clone(),
                mode: Output::known(None),
            },
        );
        let rendered = RenderedConfig { folder, files };
        let site = config.aws_mut().map(|site| {
            site.deploy.bin_dir = bin_dir.to_owned();
            site.clone()
        });
        let deployment = register(
            &mut stack,
            &config,
            &site.unwrap(),
            &rendered,
            None,
            &[],
            "rendered/prod",
        );
        assert_eq!(deployment.steps.len(), 4);
        stack.build().unwrap()
    }

    /// What a plan of `changed` does to each step, after an apply of [`files`].
    async fn planned(
        changed: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Vec<(String, Operation)> {
        planned_with(changed, |_| {}).await
    }

    /// [`planned`], with `rebuilt` changing the binaries' folder before the plan.
    async fn planned_with(
        changed: impl FnOnce(&mut BTreeMap<String, String>),
        rebuilt: impl FnOnce(&std::path::Path),
    ) -> Vec<(String, Operation)> {
        let bin = tempfile::tempdir().unwrap();
        let bin_dir = bin.path().to_string_lossy().into_owned();
        let state = tempfile::tempdir().unwrap();
        let mut providers = Providers::new();
        providers.register(
            Arc::new(TestProvider::new()),
            ["local:Folder", "local:Command"],
        );
        let engine = Engine::new(providers, FileBackend::new(state.path()));
        let first = program(files(), &bin_dir);
        let plan = engine.preview(&first).await.unwrap();
        let applied = engine
            .apply(&first, &plan, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(applied.failed.is_empty());
        let mut next = files();
        changed(&mut next);
        rebuilt(bin.path());
        let plan = engine.preview(&program(next, &bin_dir)).await.unwrap();
        plan.record()
            .steps
            .iter()
            .filter(|s| s.name.starts_with("deploy-"))
            .map(|s| (s.name.clone(), s.op))
            .collect()
    }

    fn updated(plan: &[(String, Operation)]) -> Vec<&str> {
        plan.iter()
            .filter(|(_, op)| *op == Operation::Update)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    #[tokio::test]
    async fn a_changed_dashboard_re_runs_only_the_platform_step() {
        let plan = planned(|files| {
            files.insert(
                "grafana/dashboards/kafka-broker.json".to_owned(),
                "another panel".to_owned(),
            );
        })
        .await;
        assert_eq!(plan.len(), 4);
        assert_eq!(updated(&plan), ["deploy-platform"]);
    }

    #[tokio::test]
    async fn a_rebuilt_service_re_runs_the_step_that_copies_it() {
        let plan = planned_with(
            |_| {},
            |bin| std::fs::write(bin.join("http-source-connector"), "rebuilt").unwrap(),
        )
        .await;
        assert_eq!(updated(&plan), ["deploy-connect"]);
    }

    #[tokio::test]
    async fn each_file_re_runs_the_steps_that_read_it() {
        for (path, steps) in [
            (
                "ansible/hosts.yml",
                &[
                    "deploy-nodes",
                    "deploy-kafka",
                    "deploy-platform",
                    "deploy-connect",
                ][..],
            ),
            ("jmx/kafka_broker.yml", &["deploy-kafka"]),
            ("prometheus/prometheus.yml", &["deploy-platform"]),
            ("connect/http-source-connector.json", &["deploy-connect"]),
            ("ansible/nodes.yml", &["deploy-nodes"]),
            ("connect/connect-distributed.properties", &[]),
        ] {
            let plan = planned(|files| {
                files.insert(path.to_owned(), "changed".to_owned());
            })
            .await;
            let mut expected = steps.to_vec();
            expected.sort_unstable();
            let mut found = updated(&plan);
            found.sort_unstable();
            assert_eq!(found, expected, "a change to {path}");
        }
    }

    #[tokio::test]
    async fn only_the_kafka_step_runs_cp_ansible_s_rolling_deployment_on_later_runs() {
        let provider = Arc::new(TestProvider::new());
        let mut providers = Providers::new();
        providers.register(provider.clone(), ["local:Folder", "local:Command"]);
        let state = tempfile::tempdir().unwrap();
        let engine = Engine::new(providers, FileBackend::new(state.path()));
        let program = program(files(), "bin");
        let plan = engine.preview(&program).await.unwrap();
        let applied = engine
            .apply(&program, &plan, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(applied.failed.is_empty());
        for step in STEPS {
            let inputs = provider.inputs_of(step.name).unwrap();
            let expected = match step.name {
                "deploy-kafka" => serde_json::json!("sh deploy/deploy.sh kafka rolling"),
                _ => serde_json::Value::Null,
            };
            assert_eq!(
                inputs.get("update").cloned().unwrap_or_default(),
                expected,
                "{}",
                step.name
            );
            assert_eq!(
                inputs["create"],
                format!("sh deploy/deploy.sh {}", step.argument)
            );
        }
    }
}
