//! How a service authenticates to Kafka and trusts its brokers: librdkafka's
//! `security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password` and
//! `ssl.ca.location`, from flags or the environment. The password comes from a file or the
//! environment, never a flag (a flag is visible to every user of the machine), and is never
//! printed: [`ClientSecurity`]'s `Debug` hides it.

use std::path::PathBuf;

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// No TLS, no authentication (the default).
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL over TLS.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl Protocol {
    fn setting(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mechanism {
    /// `SCRAM-SHA-512` (the default with SASL).
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// `SCRAM-SHA-256`.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// `PLAIN` (only over TLS in production).
    #[value(name = "PLAIN")]
    Plain,
}

impl Mechanism {
    fn setting(self) -> &'static str {
        match self {
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Plain => "PLAIN",
        }
    }
}

/// The security flags of a service's Kafka client.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaSecurity {
    /// How to reach the brokers.
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum
    )]
    pub security_protocol: Option<Protocol>,
    /// The SASL mechanism (default SCRAM-SHA-512).
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        value_enum
    )]
    pub sasl_mechanism: Option<Mechanism>,
    /// The SASL user.
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// A file whose first line is the SASL password (or set `KAFKA_SASL_PASSWORD`).
    #[arg(long = "kafka-sasl-password-file", env = "KAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signed the brokers' certificates.
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
}

/// The variable a SASL password may come from instead of a file.
pub const PASSWORD_VAR: &str = "KAFKA_SASL_PASSWORD";

/// The librdkafka settings of [`KafkaSecurity`], checked. Its `Debug` never shows the
/// password.
#[derive(Clone, Default)]
pub struct ClientSecurity(Vec<(&'static str, String)>);

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_settings(f, self.0.iter().map(|(k, v)| (*k, v.as_str())))
    }
}

/// librdkafka settings as a `Debug` map, `sasl.password` shown as `[secret]`.
pub(crate) fn debug_settings<'a>(
    f: &mut std::fmt::Formatter<'_>,
    settings: impl Iterator<Item = (&'a str, &'a str)>,
) -> std::fmt::Result {
    f.debug_map()
        .entries(settings.map(|(k, v)| (k, if k == "sasl.password" { "[secret]" } else { v })))
        .finish()
}

impl ClientSecurity {
    /// Adds every setting to a client configuration.
    pub fn apply<'c>(
        &self,
        config: &'c mut rdkafka::ClientConfig,
    ) -> &'c mut rdkafka::ClientConfig {
        for (key, value) in &self.0 {
            config.set(*key, value);
        }
        config
    }
}

impl KafkaSecurity {
    /// The settings, or what to fix: SASL needs a user and a password, a password needs
    /// SASL, and a CA file must be readable.
    pub fn settings(&self) -> Result<ClientSecurity, String> {
        let protocol = self.security_protocol.unwrap_or(Protocol::Plaintext);
        let mut settings = vec![("security.protocol", protocol.setting().to_owned())];
        let password = match &self.sasl_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--kafka-sasl-password-file {}: {e}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => std::env::var(PASSWORD_VAR).ok(),
        };
        if protocol.sasl() {
            let user = self
                .sasl_username
                .as_deref()
                .filter(|u| !u.is_empty())
                .ok_or(
                    "--kafka-sasl-username (KAFKA_SASL_USERNAME): SASL needs a user".to_owned(),
                )?;
            let password = password.filter(|p| !p.is_empty()).ok_or(format!(
                "SASL needs a password: --kafka-sasl-password-file, or {PASSWORD_VAR}"
            ))?;
            let mechanism = self.sasl_mechanism.unwrap_or(Mechanism::ScramSha512);
            settings.extend([
                ("sasl.mechanism", mechanism.setting().to_owned()),
                ("sasl.username", user.to_owned()),
                ("sasl.password", password),
            ]);
        } else if self.sasl_username.is_some() || self.sasl_mechanism.is_some() {
            return Err(format!(
                "a SASL user or mechanism needs --kafka-security-protocol sasl_ssl (or sasl_plaintext), not {}",
                protocol.setting()
            ));
        }
        if let Some(ca) = &self.ssl_ca_location {
            if !matches!(protocol, Protocol::Ssl | Protocol::SaslSsl) {
                return Err(format!(
                    "--kafka-ssl-ca-location needs --kafka-security-protocol ssl or sasl_ssl, not {}",
                    protocol.setting()
                ));
            }
            std::fs::metadata(ca)
                .map_err(|e| format!("--kafka-ssl-ca-location {}: {e}", ca.display()))?;
            settings.push(("ssl.ca.location", ca.display().to_string()));
        }
        Ok(ClientSecurity(settings))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        security: KafkaSecurity,
    }

    fn settings(args: &[&str]) -> Result<ClientSecurity, String> {
        Flags::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .security
            .settings()
    }

    #[test]
    fn sasl_settings_are_complete_and_the_password_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "hunter2-but-longer\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let file_arg = file.display().to_string();
        let ca_arg = ca.display().to_string();
        let ok = settings(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-username",
            "admin-api",
            "--kafka-sasl-password-file",
            &file_arg,
            "--kafka-ssl-ca-location",
            &ca_arg,
        ])
        .unwrap();
        let shown = format!("{ok:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("\"sasl.mechanism\": \"SCRAM-SHA-512\""),
            "{shown}"
        );
        let mut config = rdkafka::ClientConfig::new();
        ok.apply(&mut config);
        assert_eq!(config.get("sasl.password"), Some("hunter2-but-longer"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));

        let missing = settings(&["--kafka-security-protocol", "sasl_ssl"]).unwrap_err();
        assert!(missing.contains("SASL needs a user"), "{missing}");
        let plain_with_ca = settings(&["--kafka-ssl-ca-location", &ca_arg]).unwrap_err();
        assert!(
            plain_with_ca.contains("needs --kafka-security-protocol ssl"),
            "{plain_with_ca}"
        );
        let user_only = settings(&["--kafka-sasl-username", "x"]).unwrap_err();
        assert!(
            user_only.contains("needs --kafka-security-protocol sasl_ssl"),
            "{user_only}"
        );
    }
}
