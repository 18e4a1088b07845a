//! The credentials of a SASL_SSL platform (`security.protocol = "sasl_ssl"`), generated as
//! resources of the stack so nobody types, copies or commits one:
//!
//! - one CA per environment (`tls-ca-key`, `tls-ca`), and for every controller, broker and
//!   Connect node a key and a certificate signed by that CA whose SANs are the node's private
//!   DNS name and IP (`<node>-tls-key`, `<node>-tls`): a node that gets a new address gets a
//!   new certificate, the others keep theirs;
//! - a SCRAM-SHA-512 password for each Kafka principal ([`SCRAM_USERS`]) and the Grafana
//!   admin password (`scram-<user>`, `grafana-admin`);
//! - the folder `credentials` (a `local:Folder`, every file mode 0600) in
//!   `security.credentials_dir`, outside the repository: the CA certificate, each node's
//!   certificate and key, `secrets.yml` (cp-ansible's `sasl_scram_users` and the Grafana
//!   password, passed with `-e @secrets.yml`), Connect's JAAS settings and each service's
//!   password file.
//!
//! Keys and passwords are secret outputs: encrypted in state, `[secret]` in previews and
//! plans. The rendered folder names the files in `credentials_dir`; it holds no secret.

use std::collections::BTreeMap;

use iac_core::{Output, Stack};
use iac_local::{Folder, FolderArgs};
use iac_tls::{Certificate, CertificateArgs, Password, PasswordArgs, PrivateKey, PrivateKeyArgs};

use crate::config::{PlatformConfig, Role};
use crate::platform::Node;

/// The SCRAM-SHA-512 principals: cp-ansible's key in `sasl_scram_users` and the principal.
/// `admin` is the brokers' own (cp-ansible's inter-broker user).
pub const SCRAM_USERS: [(&str, &str); 4] = [
    ("admin", "kafka"),
    ("kafka_connect", "kafka-connect"),
    ("admin_api", "kafka-admin-api"),
    ("connector", "http-source-connector"),
];

/// The principal of a [`SCRAM_USERS`] key.
pub fn principal(user: &str) -> &'static str {
    SCRAM_USERS
        .iter()
        .find(|(key, _)| *key == user)
        .map_or("", |(_, principal)| principal)
}

/// Where the nodes keep the CA certificate (the services' `ssl.ca.location`).
pub const CA_ON_NODES: &str = "/etc/kafka-platform/ca.crt";

/// Where Connect reads its JAAS settings on its nodes (through Kafka's file config provider).
pub const CONNECT_SECRETS_ON_NODES: &str = "/etc/kafka-platform/connect-secrets.properties";

/// The CA certificate's file in the credentials folder.
pub const CA_FILE: &str = "ca.crt";

/// The Ansible variables holding secrets, in the credentials folder.
pub const SECRETS_FILE: &str = "secrets.yml";

/// Connect's JAAS settings, in the credentials folder (to copy to [`CONNECT_SECRETS_ON_NODES`]).
pub const CONNECT_SECRETS_FILE: &str = "connect-secrets.properties";

/// The admin API's SCRAM password (its `--kafka-sasl-password-file`), in the credentials folder.
pub const ADMIN_API_PASSWORD_FILE: &str = "kafka-admin-api.password";

/// The connector's SCRAM password (its `KAFKA_SASL_PASSWORD`), in the credentials folder.
pub const CONNECTOR_PASSWORD_FILE: &str = "http-source-connector.password";

/// A node's certificate and key files in the credentials folder (`<node>.crt`, `<node>.key`).
pub fn node_files(node_name: &str) -> (String, String) {
    (format!("{node_name}.crt"), format!("{node_name}.key"))
}

/// Whether a role's nodes run a Kafka listener and so carry a certificate.
pub fn has_certificate(role: Role) -> bool {
    matches!(role, Role::Controller | Role::Broker | Role::Connect)
}

/// The registered credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The environment's CA certificate.
    pub ca: Certificate,
    /// The folder of secret files (mode 0600).
    pub folder: Folder,
    /// Its path.
    pub dir: String,
    /// The files in it, by name.
    pub files: Vec<String>,
}

/// Registers the credentials of a SASL_SSL platform; nothing for a PLAINTEXT one.
pub(crate) fn register(
    stack: &mut Stack,
    config: &PlatformConfig,
    nodes: &[Node],
) -> Option<Credentials> {
    let security = &config.security;
    if !security.is_sasl_ssl() {
        return None;
    }
    let dir = security.credentials_dir.clone()?;
    let env = stack.name().to_owned();
    let ca_key = stack.resource::<PrivateKey>("tls-ca-key", PrivateKeyArgs::default());
    let ca = stack.resource::<Certificate>(
        "tls-ca",
        CertificateArgs {
            private_key_pem: ca_key.private_key_pem(),
            common_name: format!("{env} Kafka CA").into(),
            organization: Some(env.clone()).into(),
            is_ca: Some(true).into(),
            validity_days: i64::from(security.ca_validity_days).into(),
            ..Default::default()
        },
    );
    let mut files: Vec<Output<(String, String)>> =
        vec![ca.cert_pem().map(|pem| (CA_FILE.to_owned(), pem))];
    for node in nodes.iter().filter(|n| has_certificate(n.role)) {
        let key = stack
            .resource::<PrivateKey>(&format!("{}-tls-key", node.name), PrivateKeyArgs::default());
        let private_dns = node.instance.private_dns();
        let cert = stack.resource::<Certificate>(
            &format!("{}-tls", node.name),
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: private_dns.clone(),
                organization: Some(env.clone()).into(),
                dns_names: private_dns.map(|name| vec![name]),
                ip_addresses: vec![node.private_ip.to_string()].into(),
                validity_days: i64::from(security.certificate_validity_days).into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
        let (crt, pem) = node_files(&format!("{env}-{}", node.name));
        files.push(cert.cert_pem().map(move |text| (crt.clone(), text)));
        files.push(key.private_key_pem().map(move |text| (pem.clone(), text)));
    }
    let password = |stack: &mut Stack, name: &str| {
        stack
            .resource::<Password>(
                name,
                PasswordArgs {
                    length: 32.into(),
                    ..Default::default()
                },
            )
            .result()
    };
    let scram = Output::all(
        SCRAM_USERS
            .iter()
            .map(|(user, _)| password(stack, &format!("scram-{}", user.replace('_', "-")))),
    );
    let grafana = password(stack, "grafana-admin");
    let secrets = scram.zip(grafana).map(move |(scram, grafana)| {
        let users: Vec<(&str, String)> = SCRAM_USERS
            .iter()
            .map(|(user, _)| *user)
            .zip(scram)
            .collect();
        secret_files(&users, &grafana)
    });
    let files = Output::all(files)
        .zip(secrets)
        .map(|(certificates, secrets)| {
            certificates
                .into_iter()
                .chain(secrets)
                .collect::<BTreeMap<String, String>>()
        });
    let names = files_of(&env, nodes);
    let folder = stack.resource::<Folder>(
        "credentials",
        FolderArgs {
            path: dir.clone().into(),
            files,
            mode: Some("0600".to_owned()).into(),
        },
    );
    Some(Credentials {
        ca,
        folder,
        dir,
        files: names,
    })
}

/// The names of the files in the credentials folder.
fn files_of(env: &str, nodes: &[Node]) -> Vec<String> {
    let mut names = vec![CA_FILE.to_owned()];
    for node in nodes.iter().filter(|n| has_certificate(n.role)) {
        let (crt, key) = node_files(&format!("{env}-{}", node.name));
        names.extend([crt, key]);
    }
    names.extend(
        [
            SECRETS_FILE,
            CONNECT_SECRETS_FILE,
            ADMIN_API_PASSWORD_FILE,
            CONNECTOR_PASSWORD_FILE,
        ]
        .map(str::to_owned),
    );
    names.sort();
    names
}

/// The files holding passwords: cp-ansible's variables, Connect's JAAS settings and each
/// service's password. `users` pairs each [`SCRAM_USERS`] key with its password.
fn secret_files(users: &[(&str, String)], grafana: &str) -> Vec<(String, String)> {
    let password = |user: &str| {
        users
            .iter()
            .find(|(key, _)| *key == user)
            .map_or("", |(_, password)| password.as_str())
    };
    let mut yaml = String::from(
        "# Secrets of this platform for cp-ansible and the project's playbooks: pass them with\n\
         # `ansible-playbook -i <rendered>/ansible/hosts.yml -e @secrets.yml …`. Mode 0600; never commit it.\n\
         sasl_scram_users:\n",
    );
    for (user, secret) in users {
        yaml.push_str(&format!(
            "  {user}:\n    principal: {}\n    password: \"{secret}\"\n",
            principal(user)
        ));
    }
    yaml.push_str(&format!("grafana_admin_password: \"{grafana}\"\n"));
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        principal("kafka_connect"),
        password("kafka_connect")
    );
    let connect = ["", "producer.", "consumer.", "admin."]
        .map(|prefix| format!("{prefix}sasl.jaas.config={jaas}\n"))
        .concat();
    vec![
        (SECRETS_FILE.to_owned(), yaml),
        (CONNECT_SECRETS_FILE.to_owned(), connect),
        (
            ADMIN_API_PASSWORD_FILE.to_owned(),
            format!("{}\n", password("admin_api")),
        ),
        (
            CONNECTOR_PASSWORD_FILE.to_owned(),
            format!("{}\n", password("connector")),
        ),
    ]
}
