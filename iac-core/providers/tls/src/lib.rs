//! The tls and random providers: credentials generated as resources, in the manner of
//! Terraform's `tls` and `random` providers.
//!
//! - [`PrivateKey`]: an ECDSA P-256 (default), P-384 or Ed25519 key; the PEM is a secret
//!   output (encrypted in state, `[secret]` in previews and plans).
//! - [`Certificate`]: an X.509 certificate for a key, self-signed (a CA with `is_ca`) or signed
//!   by a CA given as its certificate and key; it records its validity and is replaced by the
//!   first plan inside its early-renewal window (`early_renewal_days` before it expires,
//!   default a third of its validity). Any other input change re-issues it, and only it.
//! - [`Password`]: random characters (letters and digits, and punctuation with `special`); the
//!   result is secret; a change of `keepers` makes a new one.
//!
//! What these generate exists only in state: reading one returns what was recorded, and
//! deleting one forgets it. Keys and certificates are made by `rcgen` (no hand-written ASN.1).

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod generate;
mod types;

use async_trait::async_trait;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, PropertyChange, PropertyMap, Provider, ProviderError, Providers, ReadRequest,
    ReadResponse, ResourceType as _, UpdateRequest,
};
use serde_json::Value;
use time::OffsetDateTime;

pub use types::*;

/// Which inputs re-issue a certificate, and which change only the record.
const CERTIFICATE_TABLE: DiffTable = DiffTable {
    type_token: Certificate::TYPE,
    rows: &[
        DiffRow {
            inputs: &[
                "private_key_pem",
                "common_name",
                "organization",
                "dns_names",
                "ip_addresses",
                "is_ca",
                "validity_days",
                "ca_private_key_pem",
                "ca_cert_pem",
            ],
            change: Change::Replace,
            note: "re-issued: a new certificate is signed, then the old one forgotten",
        },
        DiffRow {
            inputs: &["early_renewal_days"],
            change: Change::InPlace,
            note: "only when it is renewed changes",
        },
    ],
};

const PRIVATE_KEY_TABLE: DiffTable = DiffTable {
    type_token: PrivateKey::TYPE,
    rows: &[DiffRow {
        inputs: &["algorithm"],
        change: Change::Replace,
        note: "a new key is generated",
    }],
};

const PASSWORD_TABLE: DiffTable = DiffTable {
    type_token: Password::TYPE,
    rows: &[DiffRow {
        inputs: &["length", "special", "keepers"],
        change: Change::Replace,
        note: "a new password is generated",
    }],
};

/// The provider of [`PrivateKey`], [`Certificate`] and [`Password`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsProvider {
    /// The time renewal windows are judged at; none: the system clock.
    now: Option<OffsetDateTime>,
}

impl TlsProvider {
    /// The provider, judging renewal windows by the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The provider as it will judge renewal windows at `now` (to preview what a later run
    /// renews).
    pub fn as_of(now: OffsetDateTime) -> Self {
        Self { now: Some(now) }
    }

    /// Every type token this provider handles.
    pub fn type_tokens() -> [&'static str; 3] {
        [PrivateKey::TYPE, Certificate::TYPE, Password::TYPE]
    }

    /// Registers this provider for all its type tokens.
    pub fn register(self, providers: &mut Providers) {
        providers.register(std::sync::Arc::new(self), Self::type_tokens());
    }

    fn table(token: &str) -> Result<&'static DiffTable, ProviderError> {
        match token {
            t if t == PrivateKey::TYPE => Ok(&PRIVATE_KEY_TABLE),
            t if t == Certificate::TYPE => Ok(&CERTIFICATE_TABLE),
            t if t == Password::TYPE => Ok(&PASSWORD_TABLE),
            other => {
                Err(ProviderError::new(format!("the tls provider has no type `{other}`")).refused())
            }
        }
    }

    /// Whether a certificate whose validity ends at `not_after` is inside the window of
    /// `early_renewal_days` before it.
    fn due(&self, not_after: &str, early_renewal_days: i64) -> bool {
        let Ok(end) =
            OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
        else {
            return true;
        };
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        now >= end - time::Duration::days(early_renewal_days)
    }
}

/// The renewal window of a certificate: `early_renewal_days`, or a third of the validity.
fn early_renewal_days(early_renewal_days: Option<i64>, validity_days: Option<i64>) -> i64 {
    early_renewal_days.unwrap_or_else(|| validity_days.unwrap_or(0) / 3)
}

#[async_trait]
impl Provider for TlsProvider {
    fn check(&self, request: &CheckRequest<'_>) -> Vec<CheckFailure> {
        if let Err(e) = Self::table(request.type_token) {
            return vec![CheckFailure::new("", e.message)];
        }
        let inputs = request.inputs;
        let mut failures = Vec::new();
        let number = |key: &str| inputs.known(key).and_then(Value::as_i64);
        match request.type_token {
            t if t == PrivateKey::TYPE => {
                if let Some(algorithm) = known_str(inputs, "algorithm")
                    && generate::algorithm(algorithm).is_none()
                {
                    failures.push(CheckFailure::new(
                        "algorithm",
                        format!("`{algorithm}` is not one of ecdsa-p256, ecdsa-p384, ed25519"),
                    ));
                }
            }
            t if t == Certificate::TYPE => {
                require(inputs, &CertificateArgs::required(), &mut failures);
                if known_str(inputs, "common_name").is_some_and(str::is_empty) {
                    failures.push(CheckFailure::new("common_name", "is empty"));
                }
                let validity = number("validity_days");
                if validity.is_some_and(|d| d < 1) {
                    failures.push(CheckFailure::new("validity_days", "must be at least 1"));
                }
                if let Some(early) = number("early_renewal_days")
                    && (early < 0 || validity.is_some_and(|v| early >= v))
                {
                    failures.push(CheckFailure::new(
                        "early_renewal_days",
                        "must be at least 0 and less than validity_days (else every plan renews it)",
                    ));
                }
                for (i, address) in inputs
                    .known("ip_addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if address
                        .as_str()
                        .is_none_or(|a| a.parse::<std::net::IpAddr>().is_err())
                    {
                        failures.push(CheckFailure::new(
                            "ip_addresses",
                            format!("[{i}] {address} is not an IP address"),
                        ));
                    }
                }
                let has = |key: &str| {
                    !matches!(inputs.known(key), Some(Value::Null) | None) || inputs.is_unknown(key)
                };
                if has("ca_cert_pem") != has("ca_private_key_pem") {
                    failures.push(CheckFailure::new(
                        "ca_cert_pem",
                        "a CA is its certificate and its key: give both ca_cert_pem and ca_private_key_pem, or neither (self-signed)",
                    ));
                }
            }
            t if t == Password::TYPE => {
                require(inputs, &PasswordArgs::required(), &mut failures);
                if number("length").is_some_and(|l| !(12..=256).contains(&l)) {
                    failures.push(CheckFailure::new(
                        "length",
                        "must be 12 to 256 characters (shorter passwords are guessable)",
                    ));
                }
            }
            _ => {}
        }
        failures
    }

    fn diff(&self, request: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        let mut response = Self::table(request.type_token)?.diff(request.changed_keys());
        if request.type_token == Certificate::TYPE {
            let days = |key: &str| request.new_inputs.known(key).and_then(Value::as_i64);
            let renewal = early_renewal_days(days("early_renewal_days"), days("validity_days"));
            let due = request
                .old_outputs
                .get("not_after")
                .and_then(Value::as_str)
                .is_some_and(|end| self.due(end, renewal));
            if due && !response.changes.iter().any(|c| c.replace) {
                response.changes.push(PropertyChange {
                    key: "not_after".to_owned(),
                    replace: true,
                });
            }
        }
        Ok(response)
    }

    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        Self::table(request.type_token)?;
        let inputs = request.inputs;
        let generated = match request.type_token {
            t if t == PrivateKey::TYPE => {
                generate::private_key(&PrivateKeyValues::from_known(inputs)?)
            }
            t if t == Certificate::TYPE => {
                generate::certificate(&CertificateValues::from_known(inputs)?)
            }
            _ => generate::password(&PasswordValues::from_known(inputs)?),
        }?;
        let mut outputs = request.inputs.clone();
        outputs.extend(generated.outputs);
        Ok(CreateResponse {
            id: generated.id,
            outputs,
        })
    }

    /// What was generated exists only in state: it is what was recorded.
    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        Ok(match (request.id, request.outputs) {
            (Some(id), Some(outputs)) => Some(ReadResponse {
                id: id.to_owned(),
                inputs: None,
                outputs: outputs.clone(),
            }),
            _ => None,
        })
    }

    /// Only a certificate's `early_renewal_days` changes in place: the record.
    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let mut outputs = request.old_outputs.clone();
        outputs.extend(request.new_inputs.clone());
        Ok(outputs)
    }

    /// Forgetting is all there is to it.
    async fn delete(&self, _request: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_is_in_its_diff_table() {
        for (table, fields) in [
            (&PRIVATE_KEY_TABLE, PrivateKeyArgs::FIELDS),
            (&CERTIFICATE_TABLE, CertificateArgs::FIELDS),
            (&PASSWORD_TABLE, PasswordArgs::FIELDS),
        ] {
            let (unlisted, unknown) = table.mismatches(fields);
            assert!(
                unlisted.is_empty() && unknown.is_empty(),
                "{}: {unlisted:?} {unknown:?}",
                table.type_token
            );
        }
    }
}
