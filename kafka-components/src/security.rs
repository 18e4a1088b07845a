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

use crate::config::PlatformConfig;
use crate::role::Role;

/// A SCRAM-SHA-512 principal of the platform: its key in cp-ansible's `sasl_scram_users` and
/// the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramUser {
    /// The key in `sasl_scram_users`.
    pub key: &'static str,
    /// The principal (the SASL user name).
    pub principal: &'static str,
}

/// The brokers' own user (cp-ansible's inter-broker user, `admin`).
pub const BROKERS: ScramUser = ScramUser {
    key: "admin",
    principal: "kafka",
};

/// Kafka Connect's user.
pub const CONNECT: ScramUser = ScramUser {
    key: "kafka_connect",
    principal: "kafka-connect",
};

/// The admin API's user.
pub const ADMIN_API: ScramUser = ScramUser {
    key: "admin_api",
    principal: "kafka-admin-api",
};

/// The HTTP source connector's user.
pub const CONNECTOR: ScramUser = ScramUser {
    key: "connector",
    principal: "http-source-connector",
};

/// Every SCRAM-SHA-512 principal, each with a generated password.
pub const SCRAM_USERS: [ScramUser; 4] = [BROKERS, CONNECT, ADMIN_API, CONNECTOR];

/// The prefixes of the Connect worker's settings for itself and for its producer, consumer
/// and admin clients: each gets the security settings and JAAS settings of its own.
pub const CONNECT_CLIENT_PREFIXES: [&str; 4] = ["", "producer.", "consumer.", "admin."];

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

/// The brokers' JAAS settings for their own listener (user and password), in the credentials
/// folder: the local brokers read them through Kafka's file config provider.
pub const BROKER_SECRETS_FILE: &str = "kafka-broker-secrets.properties";

/// The admin API's SCRAM password (its `--kafka-sasl-password-file`), in the credentials folder.
pub const ADMIN_API_PASSWORD_FILE: &str = "kafka-admin-api.password";

/// The connector's SCRAM password (its `KAFKA_SASL_PASSWORD`), in the credentials folder.
pub const CONNECTOR_PASSWORD_FILE: &str = "http-source-connector.password";

/// The variable the connector reads its SCRAM password from (`producer.sasl.password.env`).
pub const CONNECTOR_PASSWORD_VARIABLE: &str = "KAFKA_SASL_PASSWORD";

/// The admin API's arguments for SASL_SSL with its SCRAM user, its password in
/// `password_file` and the CA certificate at `ca`.
pub fn admin_api_sasl_args(password_file: &str, ca: &str) -> Vec<String> {
    [
        "--kafka-security-protocol",
        "sasl_ssl",
        "--kafka-sasl-username",
        ADMIN_API.principal,
        "--kafka-sasl-password-file",
        password_file,
        "--kafka-ssl-ca-location",
        ca,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Where the services find the CA certificate: on AWS the nodes' copy ([`CA_ON_NODES`]), on
/// this machine the credentials folder's.
pub fn ca_location(config: &PlatformConfig) -> String {
    match (&config.site, config.security.sasl_ssl_credentials()) {
        (crate::config::Site::Local(_), Some(dir)) => format!("{dir}/{CA_FILE}"),
        _ => CA_ON_NODES.to_owned(),
    }
}

/// Where Connect finds its JAAS settings: on AWS the nodes' copy
/// ([`CONNECT_SECRETS_ON_NODES`]), on this machine the credentials folder's.
pub fn connect_secrets_location(config: &PlatformConfig) -> String {
    match (&config.site, config.security.sasl_ssl_credentials()) {
        (crate::config::Site::Local(_), Some(dir)) => format!("{dir}/{CONNECT_SECRETS_FILE}"),
        _ => CONNECT_SECRETS_ON_NODES.to_owned(),
    }
}

/// The files holding passwords, in the order [`secret_files`] makes them.
const SECRET_FILES: [&str; 5] = [
    SECRETS_FILE,
    CONNECT_SECRETS_FILE,
    BROKER_SECRETS_FILE,
    ADMIN_API_PASSWORD_FILE,
    CONNECTOR_PASSWORD_FILE,
];

/// A node's certificate and key files in the credentials folder (`<node>.crt`, `<node>.key`).
pub fn node_files(node_name: &str) -> (String, String) {
    (format!("{node_name}.crt"), format!("{node_name}.key"))
}

/// A node's certificate and key files and its PEM keystore (`<node>.keystore.pem`: the key,
/// then the certificate, as a Kafka JVM reads them) in the credentials folder.
pub fn node_files_with_keystore(node_name: &str) -> (String, String, String) {
    let (crt, key) = node_files(node_name);
    (crt, key, format!("{node_name}.keystore.pem"))
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
    /// Each of [`SCRAM_USERS`] with its password (a secret output).
    pub scram: Vec<(ScramUser, Output<String>)>,
    /// The files' contents by name (a secret output): what a consumer of one derives its
    /// triggers from.
    pub contents: Output<BTreeMap<String, String>>,
    /// Grafana's `admin` password (a secret output; the stack output
    /// [`GRAFANA_PASSWORD_OUTPUT`]).
    pub grafana_admin_password: Output<String>,
}

/// The stack output holding Grafana's `admin` password (secret: `outputs --show-secrets`).
pub const GRAFANA_PASSWORD_OUTPUT: &str = "grafana_admin_password";

impl Credentials {
    /// The password of `user` (a secret output).
    pub fn password(&self, user: ScramUser) -> Option<&Output<String>> {
        self.scram
            .iter()
            .find(|(known, _)| *known == user)
            .map(|(_, password)| password)
    }

    /// A file of the folder, by name, as a path.
    pub fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.dir)
    }
}

/// A node that gets a key and a CA-signed certificate for its addresses.
pub(crate) struct CertificateSubject {
    /// Its name in the component: the resources are `<name>-tls-key` and `<name>-tls`.
    pub(crate) name: String,
    /// Its files' name in the credentials folder ([`node_files`]).
    pub(crate) files: String,
    /// The DNS name clients use (the common name and a SAN).
    pub(crate) dns_name: Output<String>,
    /// The IP address clients use (a SAN).
    pub(crate) ip: String,
    /// Whether a Kafka JVM of this machine presents it: its key and certificate also go
    /// into one PEM keystore ([`node_files_with_keystore`]).
    pub(crate) keystore: bool,
}

/// Registers the credentials of a SASL_SSL platform, with a certificate for each of
/// `subjects`; nothing for a PLAINTEXT one.
pub(crate) fn register(
    stack: &mut Stack,
    config: &PlatformConfig,
    subjects: Vec<CertificateSubject>,
) -> Option<Credentials> {
    let security = &config.security;
    let dir = security.sasl_ssl_credentials()?.to_owned();
    let Certificates {
        ca,
        files,
        mut names,
    } = certificates(stack, config, subjects);
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
    let scram: Vec<(ScramUser, Output<String>)> = SCRAM_USERS
        .into_iter()
        .map(|user| {
            let name = format!("scram-{}", user.key.replace('_', "-"));
            (user, password(stack, &name))
        })
        .collect();
    let grafana = password(stack, "grafana-admin");
    let all_scram = Output::all(scram.iter().map(|(_, password)| password.clone()));
    stack.export(GRAFANA_PASSWORD_OUTPUT, grafana.clone());
    let secrets = all_scram.zip(grafana.clone()).map(move |(scram, grafana)| {
        let users: Vec<(ScramUser, String)> = SCRAM_USERS.into_iter().zip(scram).collect();
        secret_files(&users, &grafana)
    });
    names.extend(SECRET_FILES.map(str::to_owned));
    names.sort();
    let files = Output::all(files)
        .zip(secrets)
        .map(|(certificates, secrets)| {
            certificates
                .into_iter()
                .chain(SECRET_FILES.map(str::to_owned).into_iter().zip(secrets))
                .collect::<BTreeMap<String, String>>()
        });
    let folder = stack.resource::<Folder>(
        "credentials",
        FolderArgs {
            path: dir.clone().into(),
            files: files.clone(),
            mode: Some("0600".to_owned()).into(),
        },
    );
    Some(Credentials {
        ca,
        folder,
        dir,
        files: names,
        scram,
        contents: files,
        grafana_admin_password: grafana,
    })
}

/// The stack's CA and a key and CA-signed certificate per subject, with the credentials
/// files they fill (and those files' names).
struct Certificates {
    ca: Certificate,
    files: Vec<Output<(String, String)>>,
    names: Vec<String>,
}

fn certificates(
    stack: &mut Stack,
    config: &PlatformConfig,
    subjects: Vec<CertificateSubject>,
) -> Certificates {
    let security = &config.security;
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
    let mut names = vec![CA_FILE.to_owned()];
    for subject in subjects {
        let key = stack.resource::<PrivateKey>(
            &format!("{}-tls-key", subject.name),
            PrivateKeyArgs::default(),
        );
        let cert = stack.resource::<Certificate>(
            &format!("{}-tls", subject.name),
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: subject.dns_name.clone(),
                organization: Some(env.clone()).into(),
                dns_names: subject.dns_name.map(|name| vec![name]),
                ip_addresses: vec![subject.ip].into(),
                validity_days: i64::from(security.certificate_validity_days).into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
        let (crt, pem, keystore) = node_files_with_keystore(&subject.files);
        names.extend([crt.clone(), pem.clone()]);
        if subject.keystore {
            names.push(keystore.clone());
            files.push(
                key.private_key_pem()
                    .zip(cert.cert_pem())
                    .map(move |(key, cert)| (keystore.clone(), format!("{key}\n{cert}\n"))),
            );
        }
        files.push(cert.cert_pem().map(move |text| (crt.clone(), text)));
        files.push(key.private_key_pem().map(move |text| (pem.clone(), text)));
    }
    Certificates { ca, files, names }
}

/// The contents of [`SECRET_FILES`]: cp-ansible's variables, Connect's and the brokers' JAAS
/// settings and each service's password. `users` pairs each of [`SCRAM_USERS`] with its
/// password.
fn secret_files(users: &[(ScramUser, String)], grafana: &str) -> [String; 5] {
    let password = |wanted: ScramUser| {
        users
            .iter()
            .find(|(user, _)| *user == wanted)
            .map_or("", |(_, password)| password.as_str())
    };
    let mut yaml = String::from(
        "# Secrets of this platform for cp-ansible and the project's playbooks: pass them with\n\
         # `ansible-playbook -i <rendered>/ansible/hosts.yml -e @secrets.yml …`. Mode 0600; never commit it.\n\
         sasl_scram_users:\n",
    );
    for (user, secret) in users {
        yaml.push_str(&format!(
            "  {}:\n    principal: {}\n    password: \"{secret}\"\n",
            user.key, user.principal
        ));
    }
    yaml.push_str(&format!("grafana_admin_password: \"{grafana}\"\n"));
    let jaas = |user: ScramUser| {
        format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
            user.principal,
            password(user)
        )
    };
    let connect = CONNECT_CLIENT_PREFIXES
        .map(|prefix| format!("{prefix}sasl.jaas.config={}\n", jaas(CONNECT)))
        .concat();
    [
        yaml,
        connect,
        format!("sasl.jaas.config={}\n", jaas(BROKERS)),
        format!("{}\n", password(ADMIN_API)),
        format!("{}\n", password(CONNECTOR)),
    ]
}
