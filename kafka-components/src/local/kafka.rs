//! A Kafka node of the local platform: its JVM's command, the storage formatted once for
//! the environment's cluster with its SCRAM users, and its service.

use iac_core::{Output, ResourceOptions, Stack};
use iac_local::{Command, CommandArgs, Environment};
use sha2::{Digest, Sha256};

use super::{Context, Ready, Spec, short_name};
use crate::nodes::NodeFacts;
use crate::ports::{self, OnThisMachine};
use crate::programs::{KafkaHome, program_path};
use crate::render::paths;
use crate::role::Role;
use crate::security::{self, CA_FILE};

/// The Kafka cluster id of environment `env`: a stable function of its name (a UUID's 16
/// bytes in URL-safe base64, as Kafka writes them), so every node of the environment is
/// formatted for the same cluster, and again after a destroy.
fn cluster_id(env: &str) -> String {
    // As Kafka's own `Uuid.randomUuid`: never one starting with `-`, which the storage tool
    // would read as an option (the next hash is taken).
    (0..)
        .map(|attempt| {
            let seed = match attempt {
                0 => format!("kafka-platform local cluster {env}"),
                n => format!("kafka-platform local cluster {env} {n}"),
            };
            base64_uuid(&Sha256::digest(seed.as_bytes())[..16])
        })
        .find(|id| !id.starts_with('-'))
        .unwrap_or_default()
}

/// 16 bytes in URL-safe base64 without padding, as Kafka writes a UUID.
fn base64_uuid(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut held = 0;
    let mut id = String::new();
    for byte in bytes {
        bits = (bits << 8) | u32::from(*byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            id.push(char::from(ALPHABET[((bits >> held) & 63) as usize]));
        }
    }
    // 128 bits: 21 whole characters and 2 bits left, padded as base64 pads them.
    id.push(char::from(ALPHABET[((bits << (6 - held)) & 63) as usize]));
    id
}

/// Formats a Kafka node's storage (its working directory's `data/`) for the cluster
/// `KAFKA_CLUSTER_ID`, making the SCRAM users of `KAFKA_SCRAM_USERS` (`<name> <password>`
/// lines), and records a digest of those users beside it (`kafka-platform-users.sha256`,
/// written first: a run stopped while formatting formats again next time, as `data/` has no
/// `meta.properties` until the format is done); `$@` is the JVM's command up to the main
/// class. A folder formatted already for this cluster and these users is left as it is. One formatted for another cluster, or with other passwords
/// (the state that generated them is gone: the users in it would refuse every client), is
/// refused, never reformatted (that would delete its data).
const FORMAT_STORAGE: &str = r#"set -eu
meta=data/meta.properties
users=$(printf '%s\n' "${KAFKA_SCRAM_USERS:-}" | sha256sum | cut -d' ' -f1)
if [ -f "$meta" ]; then
  found=$(sed -n 's/^cluster\.id=//p' "$meta")
  if [ "$found" != "$KAFKA_CLUSTER_ID" ]; then
    echo "kafka-platform: $PWD/data holds the data of Kafka cluster $found, not of this environment's cluster $KAFKA_CLUSTER_ID: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  if [ ! -f kafka-platform-users.sha256 ]; then
    echo "kafka-platform: $PWD/data holds Kafka data without kafka-platform-users.sha256, the record of the SCRAM users it was formatted with (an earlier kafka-platform was stopped between formatting and recording it, or the file was deleted), so whether its users would accept this environment's passwords is unknown: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  if [ "$(cat kafka-platform-users.sha256)" != "$users" ]; then
    echo "kafka-platform: $PWD/data was formatted with SCRAM users of other passwords (the state that generated them was destroyed or lost), which would refuse every client: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  echo "$PWD/data is formatted for cluster $found already"
  exit 0
fi
while read -r user password; do
  [ -n "$user" ] && set -- "$@" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]"
done <<EOF
${KAFKA_SCRAM_USERS:-}
EOF
echo "$users" > kafka-platform-users.sha256
"$@"
"#;

/// Deletes a Kafka node's storage and its users' digest: destroying the environment destroys
/// its credentials, without which the data could no longer be used.
const DELETE_STORAGE: &str = "rm -rf data kafka-platform-users.sha256";

/// A Kafka JVM's command: heap, the JMX exporter agent on `exporter` with `rules`, logging,
/// the class path; the main class and its arguments follow.
pub(super) fn jvm(
    context: &Context<'_>,
    heap_mib: u32,
    exporter: Option<(u16, &str)>,
) -> Vec<String> {
    let kafka = KafkaHome(program_path(&context.site.programs.kafka));
    let mut args = vec![
        format!("-Xms{heap_mib}m"),
        format!("-Xmx{heap_mib}m"),
        "-XX:+UseG1GC".to_owned(),
        "-XX:MaxGCPauseMillis=20".to_owned(),
        "-XX:InitiatingHeapOccupancyPercent=35".to_owned(),
        "-XX:+ExplicitGCInvokesConcurrent".to_owned(),
        "-Djava.awt.headless=true".to_owned(),
    ];
    if let Some((port, rules)) = exporter {
        args.push(format!(
            "-javaagent:{}=127.0.0.1:{port}:{}/{rules}",
            kafka.agent(),
            context.rendered
        ));
    }
    args.extend([
        format!("-Dlog4j2.configurationFile={}", kafka.logging()),
        "-Dkafka.logs.dir=logs".to_owned(),
        "-cp".to_owned(),
        kafka.libs(),
    ]);
    args
}

/// The command that formats a Kafka node's storage in `workdir` (once; see
/// [`FORMAT_STORAGE`]) with its SCRAM users, and deletes it with the environment.
fn storage(
    stack: &mut Stack,
    context: &Context<'_>,
    name: &str,
    workdir: &str,
    properties: &str,
) -> Command {
    let mut format = vec![program_path(&context.site.programs.java)];
    format.extend(jvm(context, 128, None));
    format.extend(
        [
            "kafka.tools.StorageTool",
            "format",
            "-t",
            &cluster_id(context.env),
            "-c",
            &format!("{}/{properties}", context.rendered),
        ]
        .map(str::to_owned),
    );
    let mut environment = Output::known(Environment::from([(
        "KAFKA_CLUSTER_ID".to_owned(),
        cluster_id(context.env),
    )]));
    if let Some(credentials) = context.credentials {
        let users = Output::all(credentials.scram.iter().map(|(user, password)| {
            let principal = user.principal;
            password.clone().map(move |p| format!("{principal} {p}"))
        }));
        environment = environment.zip(users).map(|(mut environment, lines)| {
            environment.insert("KAFKA_SCRAM_USERS".to_owned(), lines.join("\n"));
            environment
        });
    }
    let script = std::iter::once(FORMAT_STORAGE.to_owned())
        .chain(std::iter::once("format".to_owned()))
        .chain(format)
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>();
    let mut options = ResourceOptions::new();
    if let Some(credentials) = context.credentials {
        options = options.depends_on(&credentials.folder);
    }
    stack.resource_with::<Command>(
        &format!("{name}-storage"),
        CommandArgs {
            // In the node's working directory, which the first run makes.
            create: format!(
                "mkdir -p {dir} && cd {dir} && sh -c {}",
                script.join(" "),
                dir = shell_quote(workdir)
            )
            .into(),
            delete: Some(format!("cd {} && {DELETE_STORAGE}", shell_quote(workdir))).into(),
            environment,
            triggers: vec![cluster_id(context.env)].into(),
            ..Default::default()
        },
        options,
    )
}

/// A KRaft node's storage command and service.
pub(super) fn kafka_node(stack: &mut Stack, context: &Context<'_>, node: &NodeFacts) -> Spec {
    let p = &context.config.ports;
    let name = short_name(node);
    let workdir = format!("{}/{name}", context.dir);
    let properties = paths::server_properties(&node.name);
    let heap = context.site.heap.of(node.role).unwrap_or(256);
    let (rules, exporter) = match node.role {
        Role::Controller => (paths::JMX_CONTROLLER, &ports::JMX_EXPORTER_CONTROLLER),
        _ => (paths::JMX_BROKER, &ports::JMX_EXPORTER_BROKER),
    };
    let exporter_port = node.port(exporter.port(p));
    let storage = storage(stack, context, &name, &workdir, &properties);
    let mut spec = Spec::new(
        name,
        program_path(&context.site.programs.java),
        exporter,
        match node.role {
            // Ready once the quorum has a leader; a broker once it is registered, caught up
            // and unfenced (its state RUNNING).
            Role::Controller => Ready(
                exporter_port,
                "/metrics",
                Some(r"\nkafka_server_raft_metrics_current_leader [0-9]"),
            ),
            _ => Ready(
                exporter_port,
                "/metrics",
                Some(r"\nkafka_server_kafkaserver_brokerstate 3\.0"),
            ),
        },
    );
    spec.args = jvm(context, heap, Some((exporter_port, rules)));
    spec.args.extend([
        "kafka.Kafka".to_owned(),
        format!("{}/{properties}", context.rendered),
    ]);
    spec.ready_timeout_secs = 180;
    // Every other port its role opens on this machine (`ports::LISTENERS`).
    spec.listens = ports::of_role(node.role)
        .filter(|l| l.on_this_machine == OnThisMachine::EveryNode && l.field != exporter.field)
        .map(|listener| (node.port(listener.port(p)), listener))
        .collect();
    spec.reads = vec![properties, rules.to_owned()];
    spec.workdir = Some(workdir);
    spec.storage = Some(storage);
    if context.credentials.is_some() {
        let (_, _, keystore) = security::node_files_with_keystore(&node.name);
        spec.reads_credentials = vec![keystore, CA_FILE.to_owned()];
        if node.role == Role::Broker {
            spec.reads_credentials
                .push(security::BROKER_SECRETS_FILE.to_owned());
        }
    }
    match node.role {
        Role::Controller => {
            spec.url = format!(
                "{} (KRaft controller, {})",
                node.endpoint(p.controller),
                node.zone
            );
        }
        _ => {
            spec.url = format!(
                "{} (Kafka bootstrap server, {}{})",
                node.endpoint(p.broker_client),
                node.zone,
                context
                    .credentials
                    .map(|c| format!(": SASL_SSL, SCRAM-SHA-512, the CA {}", c.path(CA_FILE)))
                    .unwrap_or_default()
            );
            spec.after = &["controller"];
        }
    }
    spec
}

/// `word` quoted for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use sha2::{Digest, Sha256};

    use super::{FORMAT_STORAGE, cluster_id};

    /// Runs the storage script in `dir` for cluster `id` with `users`, formatting by `command`
    /// (which prints its arguments): its exit status, standard output and error.
    fn format(
        dir: &std::path::Path,
        id: &str,
        users: &str,
        command: &[&str],
    ) -> (bool, String, String) {
        let output = std::process::Command::new("sh")
            .current_dir(dir)
            .args(["-c", FORMAT_STORAGE, "format"])
            .args(command)
            .env("KAFKA_CLUSTER_ID", id)
            .env("KAFKA_SCRAM_USERS", users)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn storage_is_formatted_once_with_the_users_and_another_cluster_s_is_never_reformatted() {
        let dir = tempfile::tempdir().unwrap();
        // Empty: formatted, with a SCRAM user per line; a format stopped half way (its users
        // recorded, no `meta.properties` yet) formats again.
        let users = "alice pw1\nbob pw2";
        let (ok, _, _) = format(dir.path(), "mine", users, &["false"]);
        assert!(!ok);
        let (ok, out, _) = format(dir.path(), "mine", users, &["echo", "format"]);
        assert!(ok);
        assert_eq!(
            out.trim(),
            "format --add-scram SCRAM-SHA-512=[name=alice,password=pw1] --add-scram SCRAM-SHA-512=[name=bob,password=pw2]"
        );
        // Formatted for this cluster and these users: left as it is (the formatting command
        // is not run).
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(
            dir.path().join("data/meta.properties"),
            "version=1\ncluster.id=mine\nnode.id=1\n",
        )
        .unwrap();
        let (ok, out, _) = format(dir.path(), "mine", users, &["false"]);
        assert!(ok, "not formatted again");
        assert!(
            out.contains("is formatted for cluster mine already"),
            "{out}"
        );
        let refused = |id: &str, users: &str| {
            let (ok, _, err) = format(dir.path(), id, users, &["false"]);
            assert!(!ok, "refused: {err}");
            err
        };
        // Other passwords (the state that made them is gone): refused, the data kept.
        let err = refused("mine", "alice other\nbob pw2");
        assert!(
            err.contains("was formatted with SCRAM users of other passwords (the state that generated them was destroyed or lost), which would refuse every client"),
            "{err}"
        );
        // Another cluster's data: refused, with what to do, and kept.
        let err = refused("yours", users);
        assert!(
            err.contains("holds the data of Kafka cluster mine, not of this environment's cluster yours: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again"),
            "{err}"
        );
        // Data whose users were never recorded: refused, the data kept.
        std::fs::remove_file(dir.path().join("kafka-platform-users.sha256")).unwrap();
        let err = refused("mine", users);
        assert!(
            err.contains("holds Kafka data without kafka-platform-users.sha256, the record of the SCRAM users it was formatted with"),
            "{err}"
        );
        assert!(dir.path().join("data/meta.properties").exists());
    }

    #[test]
    fn a_cluster_id_is_a_uuid_as_kafka_writes_it_and_the_same_for_an_environment() {
        let id = cluster_id("local");
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert_eq!(id, cluster_id("local"));
        assert_ne!(id, cluster_id("staging"));
        // An environment's id never changes (its data would be refused): pinned.
        assert_eq!(
            id,
            super::base64_uuid(&Sha256::digest(b"kafka-platform local cluster local")[..16])
        );
        // One in 64 names hashes to an id the storage tool would read as an option: the
        // next hash is taken.
        let dashed = (0..1000)
            .map(|n| format!("env-{n}"))
            .find(|env| {
                let seed = format!("kafka-platform local cluster {env}");
                super::base64_uuid(&Sha256::digest(seed.as_bytes())[..16]).starts_with('-')
            })
            .unwrap();
        let id = cluster_id(&dashed);
        assert!(!id.starts_with('-') && id.len() == 22, "{dashed}: {id}");
    }
}
