//! Rendered configuration: every file is a pure function of the environment's configuration
//! and the applied stack's outputs (the nodes with their addresses), so an address AWS
//! changes reaches every file at the next apply with no hand edit.
//!
//! Data is prepared here; templates (in the workspace's `templates/`) only loop and print.
//! [`write()`] replaces the output folder as a whole: a render never leaves half a set of files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iac_core::{Output, Stack};
use iac_local::{Folder, FolderArgs};

use crate::config::PlatformConfig;
use crate::nodes::{NodeFacts, NodesError};
use crate::policy::{self, PolicyErrors};
use crate::role::Role;

mod kafka;
pub(crate) use kafka::controller_id;
mod monitoring;
pub mod paths;
pub(crate) mod playbooks;

/// Why files could not be rendered or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The applied stack's nodes cannot be read (it was never applied, or is not the
    /// platform's).
    #[error(transparent)]
    Nodes(#[from] NodesError),
    /// The configuration breaks a policy: nothing is rendered.
    #[error("{0}")]
    Policy(#[from] PolicyErrors),
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

impl RenderError {
    /// Whether the user must act (apply first, fix the configuration), as opposed to a
    /// template or the file system having failed.
    pub fn is_user_error(&self) -> bool {
        match self {
            RenderError::Nodes(_) | RenderError::Policy(_) => true,
            RenderError::Template { .. } | RenderError::Io { .. } => false,
        }
    }
}

/// One rendered file: its path inside the output folder and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the output folder.
    pub path: String,
    /// Contents.
    pub contents: String,
}

/// Metric names the platform's services export on their `/metrics` and the rendered alerts
/// and dashboards use, by Prometheus job. The services' own tests check they export them.
pub const SERVICE_METRICS: &[(&str, &[&str])] = &[
    ("kafka-admin-api", &["kafka_consumergroup_lag"]),
    (
        "http-source-connector",
        &[
            "http_source_connector_status",
            "http_source_last_success_timestamp_seconds",
            "http_source_records_produced_total",
        ],
    ),
];

/// The Connect worker's own port for the `[ports]` port `port` (the first worker's: the
/// connector runs beside it).
pub(crate) fn connect_port(nodes: &[NodeFacts], port: u16) -> u16 {
    of_role(nodes, &[Role::Connect])
        .first()
        .map_or(port, |n| n.port(port))
}

pub(crate) fn of_role<'a>(nodes: &'a [NodeFacts], roles: &[Role]) -> Vec<&'a NodeFacts> {
    nodes.iter().filter(|n| roles.contains(&n.role)).collect()
}

/// A rendered template as the file at `path`.
fn file(path: &'static str, rendered: askama::Result<String>) -> Result<RenderedFile, RenderError> {
    file_at(path.to_owned(), path, rendered)
}

/// The template `template` rendered as the file at `path` (a template rendered once per node).
fn file_at(
    path: String,
    template: &'static str,
    rendered: askama::Result<String>,
) -> Result<RenderedFile, RenderError> {
    let contents = rendered.map_err(|e| RenderError::Template {
        template,
        reason: e.to_string(),
    })?;
    Ok(RenderedFile { path, contents })
}

/// Renders every file for `env` from its configuration and its applied nodes. A configuration
/// the policy checks refuse renders nothing.
pub fn render(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
) -> Result<Vec<RenderedFile>, RenderError> {
    policy::check(config)?;
    let mut files = kafka::files(env, config, nodes)?;
    files.extend(monitoring::files(env, config, nodes)?);
    files.extend(playbooks::files(env, config, nodes)?);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The name of the resource that holds the rendered configuration.
pub const CONFIG_RESOURCE: &str = "config";

/// The rendered configuration in a stack.
#[derive(Debug, Clone)]
pub struct RenderedConfig {
    /// The folder resource (named [`CONFIG_RESOURCE`]).
    pub folder: Folder,
    /// Its files by path, as rendered (known at preview when the nodes are): what a
    /// consumer of a file derives its triggers from.
    pub files: Output<BTreeMap<String, String>>,
}

/// Registers the rendered configuration as a resource: the folder `dir` holding every file
/// [`render`] makes from `nodes`, so a preview shows the files and lines a change reaches,
/// refresh notices a hand edit, and whatever reads a file can depend on it.
pub fn register(
    stack: &mut Stack,
    config: &PlatformConfig,
    nodes: Output<Vec<NodeFacts>>,
    dir: &str,
) -> RenderedConfig {
    let env = stack.name().to_owned();
    let config = config.clone();
    let files = nodes.try_map(move |nodes| {
        let files = render(&env, &config, &nodes).map_err(|e| e.to_string())?;
        Ok(files
            .into_iter()
            .map(|f| (f.path, f.contents))
            .collect::<BTreeMap<_, _>>())
    });
    let folder = stack.resource::<Folder>(
        CONFIG_RESOURCE,
        FolderArgs {
            path: dir.into(),
            files: files.clone(),
            mode: Output::known(None),
        },
    );
    RenderedConfig { folder, files }
}

/// Replaces `dir` with exactly `files`, as one: readers see the old set or the new one,
/// never a mix (`iac_local::write_folder`).
pub fn write(dir: &Path, files: &[RenderedFile]) -> Result<(), RenderError> {
    iac_local::write_folder(
        dir,
        files
            .iter()
            .map(|f| (f.path.as_str(), f.contents.as_bytes())),
        0o644,
    )
    .map_err(|e| RenderError::Io {
        path: e.path,
        source: e.source,
    })
}
