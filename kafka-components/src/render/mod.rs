//! Rendered configuration: every file is a pure function of the environment's configuration
//! and the applied stack's outputs (the nodes with their addresses), so an address AWS
//! changes reaches every file at the next apply with no hand edit.
//!
//! Data is prepared here; templates (in the workspace's `templates/`) only loop and print.
//! [`write`] replaces the output folder as a whole: a render never leaves half a set of files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{PlatformConfig, Ports, Receiver, Role};

/// One node as the applied stack reports it (the `nodes` stack output).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeFacts {
    /// `<stack>-<role>-<n>`.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// 1-based index within the role.
    pub index: u32,
    /// Availability zone.
    pub zone: String,
    /// Private IP.
    pub private_ip: String,
    /// Public IP (empty when it has none).
    pub public_ip: String,
    /// Private DNS name (the name Kafka advertises).
    pub private_dns: String,
}

impl NodeFacts {
    /// The nodes of an applied stack, in a stable order (role, then index).
    pub fn from_outputs(
        stack: &str,
        outputs: &BTreeMap<String, Value>,
    ) -> Result<Vec<Self>, RenderError> {
        let nodes = outputs
            .get("nodes")
            .ok_or_else(|| RenderError::NotApplied {
                stack: stack.to_owned(),
            })?;
        let mut nodes: Vec<Self> =
            serde_json::from_value(nodes.clone()).map_err(|e| RenderError::BadOutputs {
                stack: stack.to_owned(),
                reason: e.to_string(),
            })?;
        nodes.sort_by_key(|n| (n.role, n.index));
        Ok(nodes)
    }

    /// The address Ansible connects to: the public IP, or the private one without it.
    pub fn address(&self) -> &str {
        if self.public_ip.is_empty() {
            &self.private_ip
        } else {
            &self.public_ip
        }
    }
}

/// Why files could not be rendered or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The stack has no node outputs yet.
    #[error("stack `{stack}` has no `nodes` output: apply it first")]
    NotApplied {
        /// The stack.
        stack: String,
    },
    /// The outputs are not what the platform exports.
    #[error("the `nodes` output of stack `{stack}` is not the platform's: {reason}")]
    BadOutputs {
        /// The stack.
        stack: String,
        /// What is wrong.
        reason: String,
    },
    /// A template failed.
    #[error("template {template}: {reason}")]
    Template {
        /// The template.
        template: &'static str,
        /// What askama said.
        reason: String,
    },
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One rendered file: its path inside the output folder and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the output folder.
    pub path: &'static str,
    /// Contents.
    pub contents: String,
}

struct Group<'a> {
    name: &'static str,
    nodes: Vec<&'a NodeFacts>,
}

#[derive(Template)]
#[template(path = "ansible/hosts.yml", escape = "none")]
struct Inventory<'a> {
    env: &'a str,
    ssh_user: &'a str,
    ports: &'a Ports,
    replication_factor: u32,
    min_insync_replicas: u32,
    nodes: &'a [NodeFacts],
    groups: Vec<Group<'a>>,
}

#[derive(Template)]
#[template(path = "hosts/hosts", escape = "none")]
struct Hosts<'a> {
    env: &'a str,
    nodes: &'a [NodeFacts],
}

struct Target {
    address: String,
    node: String,
    role: &'static str,
    zone: String,
}

struct Job {
    name: &'static str,
    targets: Vec<Target>,
}

#[derive(Template)]
#[template(path = "prometheus/prometheus.yml", escape = "none")]
struct Prometheus<'a> {
    env: &'a str,
    ports: &'a Ports,
    jobs: Vec<Job>,
}

#[derive(Template)]
#[template(path = "alertmanager/alertmanager.yml", escape = "none")]
struct Alertmanager<'a> {
    env: &'a str,
    default_receiver: &'a str,
    receivers: &'a [Receiver],
}

fn of_role<'a>(nodes: &'a [NodeFacts], roles: &[Role]) -> Vec<&'a NodeFacts> {
    nodes.iter().filter(|n| roles.contains(&n.role)).collect()
}

fn job(name: &'static str, nodes: &[NodeFacts], roles: &[Role], port: u16) -> Job {
    Job {
        name,
        targets: of_role(nodes, roles)
            .into_iter()
            .map(|n| Target {
                address: format!("{}:{port}", n.private_ip),
                node: n.name.clone(),
                role: n.role.name(),
                zone: n.zone.clone(),
            })
            .collect(),
    }
}

fn run(template: &'static str, rendered: askama::Result<String>) -> Result<String, RenderError> {
    rendered.map_err(|e| RenderError::Template {
        template,
        reason: e.to_string(),
    })
}

/// Renders every file for `env` from its configuration and its applied nodes.
pub fn render(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
) -> Result<Vec<RenderedFile>, RenderError> {
    let p = &config.ports;
    let groups = [
        ("kafka_controller", Role::Controller),
        ("kafka_broker", Role::Broker),
        ("kafka_connect", Role::Connect),
        ("platform", Role::Platform),
    ]
    .into_iter()
    .map(|(name, role)| Group {
        name,
        nodes: of_role(nodes, &[role]),
    })
    .filter(|g| !g.nodes.is_empty())
    .collect();
    let inventory = Inventory {
        env,
        ssh_user: config.ssh.user(),
        ports: p,
        replication_factor: config.kafka.replication_factor,
        min_insync_replicas: config.kafka.min_insync_replicas,
        nodes,
        groups,
    };
    let prometheus = Prometheus {
        env,
        ports: p,
        jobs: [
            job(
                "kafka-controller",
                nodes,
                &[Role::Controller],
                p.jmx_exporter_controller,
            ),
            job(
                "kafka-broker",
                nodes,
                &[Role::Broker],
                p.jmx_exporter_broker,
            ),
            job(
                "kafka-connect",
                nodes,
                &[Role::Connect],
                p.jmx_exporter_connect,
            ),
            job("node", nodes, &Role::ALL, p.node_exporter),
            job("kafka-admin-api", nodes, &[Role::Platform], p.admin_api),
        ]
        .into_iter()
        .filter(|j| !j.targets.is_empty())
        .collect(),
    };
    let receivers = &config.alerting.receivers;
    let alertmanager = Alertmanager {
        env,
        default_receiver: receivers.first().map_or("default", |r| r.name.as_str()),
        receivers,
    };
    Ok(vec![
        RenderedFile {
            path: "ansible/hosts.yml",
            contents: run("ansible/hosts.yml", inventory.render())?,
        },
        RenderedFile {
            path: "hosts/hosts",
            contents: run("hosts/hosts", Hosts { env, nodes }.render())?,
        },
        RenderedFile {
            path: "prometheus/prometheus.yml",
            contents: run("prometheus/prometheus.yml", prometheus.render())?,
        },
        RenderedFile {
            path: "alertmanager/alertmanager.yml",
            contents: run("alertmanager/alertmanager.yml", alertmanager.render())?,
        },
    ])
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `dir` with exactly `files`: written to a sibling temporary folder first, then
/// swapped in by rename, so readers see the old set or the new one, never a mix.
pub fn write(dir: &Path, files: &[RenderedFile]) -> Result<(), RenderError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rendered".to_owned());
    fs::create_dir_all(parent).map_err(io(parent))?;
    let pid = std::process::id();
    let staging = parent.join(format!(".{name}.tmp-{pid}"));
    let previous = parent.join(format!(".{name}.old-{pid}"));
    let _ = fs::remove_dir_all(&staging);
    for file in files {
        let path = staging.join(file.path);
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder).map_err(io(folder))?;
        }
        fs::write(&path, &file.contents).map_err(io(&path))?;
    }
    let had_previous = dir.exists();
    if had_previous {
        fs::rename(dir, &previous).map_err(io(dir))?;
    }
    if let Err(e) = fs::rename(&staging, dir) {
        if had_previous {
            let _ = fs::rename(&previous, dir);
        }
        return Err(io(dir)(e));
    }
    let _ = fs::remove_dir_all(&previous);
    Ok(())
}
