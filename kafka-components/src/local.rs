//! The `LocalPlatform` component: the platform as processes on 127.0.0.1 of this machine,
//! from the same configuration, policies and rendered files as on AWS.
//!
//! The broker (tansu), the admin API, the HTTP source connector polling the admin API's
//! `/topics` into a topic, node_exporter, Alertmanager and Prometheus, each a
//! `local:Service` on the port `[ports]` gives it. Prometheus, Alertmanager and the connector
//! read the rendered configuration (the `config` folder); a digest of the files each reads is
//! one of its triggers, so a changed line restarts exactly the services that read it.

use std::collections::BTreeMap;

use iac_core::{Output, ResourceOptions, Stack};
use iac_local::{Folder, Service, ServiceArgs};
use sha2::{Digest, Sha256};

use crate::config::{LocalSite, PlatformConfig, Role};
use crate::nodes::{NODES_OUTPUT, NodeFacts};
use crate::policy::{self, PolicyErrors, Violation};

/// The local platform's nodes: one broker, one Connect worker and one platform node, all
/// on 127.0.0.1 (no KRaft controllers: tansu needs none).
pub fn local_nodes(env: &str) -> Vec<NodeFacts> {
    [Role::Broker, Role::Connect, Role::Platform]
        .into_iter()
        .map(|role| NodeFacts {
            name: format!("{env}-{}-1", role.name()),
            role,
            index: 1,
            zone: "local".to_owned(),
            id: "local".to_owned(),
            private_ip: "127.0.0.1".to_owned(),
            public_ip: String::new(),
            private_dns: "127.0.0.1".to_owned(),
        })
        .collect()
}

/// A service of the local platform: its resource and the URL to open.
#[derive(Debug, Clone)]
pub struct LocalService {
    /// The resource name (`prometheus`).
    pub name: &'static str,
    /// The process.
    pub service: Service,
    /// What a person opens (`http://127.0.0.1:9090/targets`), or for the broker the
    /// address clients bootstrap from.
    pub url: String,
}

/// The registered local platform.
#[derive(Debug, Clone)]
pub struct LocalPlatform {
    /// The rendered configuration.
    pub config: Folder,
    /// Every service, in start order.
    pub services: Vec<LocalService>,
}

/// What one service needs beyond its name.
struct Spec {
    name: &'static str,
    program: String,
    args: Vec<String>,
    /// The `ready_http` path (else ready when its port accepts).
    ready_path: Option<&'static str>,
    port: u16,
    port_field: &'static str,
    /// Rendered files it reads (a change restarts it).
    reads: &'static [&'static str],
    /// What to open, after `http://127.0.0.1:<port>` (none: not HTTP).
    open: Option<String>,
    after: &'static [&'static str],
    /// Its working directory (made when missing), else the CLI's.
    workdir: Option<String>,
}

/// `${NAME}` and `${NAME:-default}` replaced by the variable (or the default when it is
/// unset or empty); anything else is left as written.
fn expand_variables(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + end];
        let (name, default) = inner.split_once(":-").unwrap_or((inner, ""));
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => out.push_str(&value),
            _ => out.push_str(default),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A program as the environment file names it: variables expanded, `~/…` in the home
/// folder, a relative path made absolute (the state means the same file from any working
/// directory), a bare name left to `PATH`.
fn program_path(program: &str) -> String {
    let program = expand_variables(program);
    let path = match (program.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => program.clone(),
    };
    if !path.contains('/') {
        return path;
    }
    std::path::absolute(&path).map_or(path, |p| p.to_string_lossy().into_owned())
}

/// A digest of the files of `files` under the paths `reads` (prefixes).
fn digest(files: &BTreeMap<String, String>, reads: &[&str]) -> String {
    let mut hash = Sha256::new();
    for (path, contents) in files {
        if reads.iter().any(|r| path.starts_with(r)) {
            hash.update(path.as_bytes());
            hash.update([0]);
            hash.update(contents.as_bytes());
            hash.update([0]);
        }
    }
    format!("sha256:{:x}", hash.finalize())
}

impl LocalPlatform {
    /// Checks the policies, then registers the rendered configuration in the folder
    /// `rendered` and every service of the platform on `stack`. `env_file` names the
    /// environment file in errors (a taken port names its field there).
    pub fn register(
        stack: &mut Stack,
        config: &PlatformConfig,
        rendered: &str,
        env_file: &str,
    ) -> Result<Self, PolicyErrors> {
        let crate::config::Site::Local(site) = &config.site else {
            return Err(PolicyErrors(vec![Violation {
                field: "local".to_owned(),
                message: "this environment runs on AWS: register it with KafkaPlatform".to_owned(),
            }]));
        };
        let mut refused = policy::check(config).err().map(|e| e.0).unwrap_or_default();
        refused.extend(missing_programs(site));
        if !refused.is_empty() {
            return Err(PolicyErrors(refused));
        }
        let env = stack.name().to_owned();
        let nodes = local_nodes(&env);
        let rendered_config =
            crate::render::register(stack, config, Output::known(nodes.clone()), rendered);
        stack.export(NODES_OUTPUT, Output::known(nodes));
        let dir = site
            .dir
            .clone()
            .unwrap_or_else(|| format!(".iac/local/{env}"));
        // Absolute: the state means the same folder whatever the working directory.
        let dir = std::path::absolute(&dir).map_or(dir, |d| d.to_string_lossy().into_owned());
        let mut services = Vec::new();
        for spec in specs(&env, config, site, rendered, &dir) {
            let fingerprint = program_fingerprint(&spec.program);
            let reads = spec.reads;
            let triggers = if reads.is_empty() {
                Output::known(vec![fingerprint])
            } else {
                rendered_config
                    .files
                    .clone()
                    .map(move |files| vec![fingerprint.clone(), digest(&files, reads)])
            };
            let address = format!("127.0.0.1:{}", spec.port);
            let args = ServiceArgs {
                program: spec.program.clone().into(),
                args: Output::known(spec.args),
                log_file: format!("{dir}/logs/{}.log", spec.name).into(),
                ready_tcp: Output::known(spec.ready_path.is_none().then(|| address.clone())),
                ready_http: Output::known(spec.ready_path.map(|p| format!("http://{address}{p}"))),
                ready_timeout_secs: 60.into(),
                stop_grace_secs: 10.into(),
                triggers,
                port_setting: Some(format!("{} in {env_file}", spec.port_field)).into(),
                dir: spec.workdir.clone().into(),
                ..Default::default()
            };
            let mut options = ResourceOptions::new();
            if !reads.is_empty() {
                options = options.depends_on(&rendered_config.folder);
            }
            for earlier in services
                .iter()
                .filter(|s: &&LocalService| spec.after.contains(&s.name))
            {
                options = options.depends_on(&earlier.service);
            }
            let service = stack.resource_with::<Service>(spec.name, args, options);
            services.push(LocalService {
                name: spec.name,
                service,
                url: match &spec.open {
                    Some(path) => format!("http://{address}{path}"),
                    None => format!("{address} (Kafka bootstrap servers)"),
                },
            });
        }
        Ok(Self {
            config: rendered_config.folder,
            services,
        })
    }
}

/// Every program of `[local.programs]` that is not there, with where to get it.
fn missing_programs(site: &LocalSite) -> Vec<Violation> {
    let p = &site.programs;
    [
        (
            "tansu",
            &p.tansu,
            "scripts/setup.sh builds it (`cargo install tansu --features dynostore`)",
        ),
        (
            "prometheus",
            &p.prometheus,
            "install the Debian package prometheus",
        ),
        (
            "alertmanager",
            &p.alertmanager,
            "install the Debian package prometheus-alertmanager",
        ),
        (
            "node_exporter",
            &p.node_exporter,
            "install the Debian package prometheus-node-exporter",
        ),
        (
            "admin_api",
            &p.admin_api,
            "`cargo build -p services --bins` builds it (local.build runs that before every plan)",
        ),
        (
            "connector",
            &p.connector,
            "`cargo build -p services --bins` builds it (local.build runs that before every plan)",
        ),
    ]
    .into_iter()
    .filter(|(_, program, _)| iac_local::locate(&program_path(program)).is_none())
    .map(|(field, program, remedy)| Violation {
        field: format!("local.programs.{field}"),
        message: format!("`{program}` is not there: {remedy}, or name where it is"),
    })
    .collect()
}

/// The program's size and modification time: a rebuilt binary restarts its service.
fn program_fingerprint(program: &str) -> String {
    let meta = iac_local::locate(program).and_then(|p| std::fs::metadata(p).ok());
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "program {program}: {} bytes, modified {modified}",
        meta.map_or(0, |m| m.len())
    )
}

fn specs(
    env: &str,
    config: &PlatformConfig,
    site: &LocalSite,
    rendered: &str,
    dir: &str,
) -> Vec<Spec> {
    let p = &config.ports;
    let programs = &site.programs;
    let broker = format!("tcp://127.0.0.1:{}", p.broker_client);
    vec![
        Spec {
            name: "tansu",
            program: program_path(&programs.tansu),
            args: vec![
                "broker".into(),
                "--listener-url".into(),
                broker.clone(),
                "--advertised-listener-url".into(),
                broker,
                // SQLite in its own folder: topics, offsets and users outlive a restart.
                "--storage-engine".into(),
                "sqlite://tansu.db".into(),
            ],
            ready_path: None,
            port: p.broker_client,
            port_field: "ports.broker_client",
            reads: &[],
            open: None,
            after: &[],
            workdir: Some(format!("{dir}/tansu")),
        },
        Spec {
            name: "admin-api",
            program: program_path(&programs.admin_api),
            args: vec![
                "--bootstrap-servers".into(),
                format!("127.0.0.1:{}", p.broker_client),
                "--listen".into(),
                format!("127.0.0.1:{}", p.admin_api),
            ],
            ready_path: Some("/ready"),
            port: p.admin_api,
            port_field: "ports.admin_api",
            reads: &[],
            open: Some("/topics".into()),
            after: &["tansu"],
            workdir: None,
        },
        Spec {
            name: "http-source-connector",
            program: program_path(&programs.connector),
            args: vec![format!("{rendered}/connect/http-source-connector.json")],
            ready_path: Some("/metrics"),
            port: p.http_source_connector,
            port_field: "ports.http_source_connector",
            reads: &["connect/http-source-connector.json"],
            open: Some(format!("/connectors/{}-admin-api-topics/status", env)),
            after: &["tansu", "admin-api"],
            workdir: None,
        },
        Spec {
            name: "node-exporter",
            program: program_path(&programs.node_exporter),
            args: vec![format!(
                "--web.listen-address=127.0.0.1:{}",
                p.node_exporter
            )],
            ready_path: Some("/metrics"),
            port: p.node_exporter,
            port_field: "ports.node_exporter",
            reads: &[],
            open: Some("/metrics".into()),
            after: &[],
            workdir: None,
        },
        Spec {
            name: "alertmanager",
            program: program_path(&programs.alertmanager),
            args: vec![
                format!("--config.file={rendered}/alertmanager/alertmanager.yml"),
                format!("--storage.path={dir}/alertmanager"),
                format!("--web.listen-address=127.0.0.1:{}", p.alertmanager),
                // One instance: no cluster port (it would listen on every interface).
                "--cluster.listen-address=".into(),
            ],
            ready_path: Some("/-/ready"),
            port: p.alertmanager,
            port_field: "ports.alertmanager",
            reads: &["alertmanager/"],
            open: Some("/".into()),
            after: &[],
            workdir: None,
        },
        Spec {
            name: "prometheus",
            program: program_path(&programs.prometheus),
            args: vec![
                format!("--config.file={rendered}/prometheus/prometheus.yml"),
                format!("--storage.tsdb.path={dir}/prometheus"),
                format!("--web.listen-address=127.0.0.1:{}", p.prometheus),
            ],
            ready_path: Some("/-/ready"),
            port: p.prometheus,
            port_field: "ports.prometheus",
            reads: &["prometheus/"],
            open: Some("/targets".into()),
            after: &[
                "alertmanager",
                "node-exporter",
                "admin-api",
                "http-source-connector",
            ],
            workdir: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::expand_variables;

    #[test]
    fn variables_and_defaults_are_expanded() {
        // PATH and HOME are set for any test run; the other name is never set.
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            expand_variables("${HOME}/bin/tansu"),
            format!("{home}/bin/tansu")
        );
        assert_eq!(
            expand_variables("${KAFKA_PLATFORM_NEVER_SET_ANYWHERE:-~/.cache/tansu}"),
            "~/.cache/tansu"
        );
        assert_eq!(expand_variables("tansu"), "tansu");
        assert_eq!(expand_variables("broken ${OPEN"), "broken ${OPEN");
    }
}
