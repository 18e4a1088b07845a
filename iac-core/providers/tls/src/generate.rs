//! Generating keys, certificates and passwords (with `rcgen` and the operating system's
//! random source).

use crate::{CertificateValues, PasswordValues, PrivateKeyValues};
use iac_core::{PropertyMap, ProviderError};
use rand::Rng as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SignatureAlgorithm,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What a create made: the id and the outputs beyond the inputs.
pub(crate) struct Generated {
    pub(crate) id: String,
    pub(crate) outputs: PropertyMap,
}

/// The signature algorithm of a key algorithm's name.
pub(crate) fn algorithm(name: &str) -> Option<&'static SignatureAlgorithm> {
    match name {
        "ecdsa-p256" => Some(&rcgen::PKCS_ECDSA_P256_SHA256),
        "ecdsa-p384" => Some(&rcgen::PKCS_ECDSA_P384_SHA384),
        "ed25519" => Some(&rcgen::PKCS_ED25519),
        _ => None,
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> ProviderError {
    ProviderError::with_code("TlsGenerate", format!("{what}: {error}")).refused()
}

/// 16 random bytes as a short id (and a positive serial number).
fn random_id() -> [u8; 16] {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f;
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn private_key(inputs: &PrivateKeyValues) -> Result<Generated, ProviderError> {
    let name = inputs.algorithm.as_deref().unwrap_or("ecdsa-p256");
    let alg =
        algorithm(name).ok_or_else(|| failed("algorithm", format!("`{name}` is not supported")))?;
    let key = KeyPair::generate_for(alg).map_err(|e| failed("generating the key", e))?;
    Ok(Generated {
        id: hex(&random_id()),
        outputs: PropertyMap::from([
            (
                "private_key_pem".to_owned(),
                Value::from(key.serialize_pem()),
            ),
            (
                "public_key_pem".to_owned(),
                Value::from(key.public_key_pem()),
            ),
        ]),
    })
}

pub(crate) fn certificate(inputs: &CertificateValues) -> Result<Generated, ProviderError> {
    let key = KeyPair::from_pem(&inputs.private_key_pem)
        .map_err(|e| failed("private_key_pem is not a private key", e))?;
    let mut params = CertificateParams::default();
    name(inputs, &mut params)?;
    let serial = random_id();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    // A minute back: a peer whose clock is a little behind still accepts it at once.
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(inputs.validity_days);
    usages(inputs, &mut params);
    let cert = sign(inputs, &params, &key)?;
    let time = |t: OffsetDateTime| {
        t.format(&Rfc3339)
            .map_err(|e| failed("formatting a time", e))
    };
    Ok(Generated {
        id: hex(&serial),
        outputs: PropertyMap::from([
            ("cert_pem".to_owned(), Value::from(cert.pem())),
            (
                "not_before".to_owned(),
                Value::from(time(params.not_before)?),
            ),
            ("not_after".to_owned(), Value::from(time(params.not_after)?)),
        ]),
    })
}

/// The certificate's subject (common name, organization) and alternative names.
fn name(inputs: &CertificateValues, params: &mut CertificateParams) -> Result<(), ProviderError> {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, inputs.common_name.as_str());
    if let Some(organization) = &inputs.organization {
        subject.push(DnType::OrganizationName, organization.as_str());
    }
    params.distinguished_name = subject;
    for name in &inputs.dns_names {
        let name = name
            .clone()
            .try_into()
            .map_err(|e| failed(&format!("dns_names: `{name}`"), e))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for address in &inputs.ip_addresses {
        let ip = address
            .parse()
            .map_err(|e| failed(&format!("ip_addresses: `{address}`"), e))?;
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    Ok(())
}

/// What the certificate may be used for: signing certificates (a CA), or serving and
/// connecting (a node).
fn usages(inputs: &CertificateValues, params: &mut CertificateParams) {
    if inputs.is_ca == Some(true) {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    } else {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Brokers are servers to their clients and clients of each other.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    }
}

/// Signs the certificate with the CA given, or self-signs it.
fn sign(
    inputs: &CertificateValues,
    params: &CertificateParams,
    key: &KeyPair,
) -> Result<rcgen::Certificate, ProviderError> {
    let cert = match (&inputs.ca_cert_pem, &inputs.ca_private_key_pem) {
        (Some(ca_cert), Some(ca_key)) => {
            let ca_key = KeyPair::from_pem(ca_key)
                .map_err(|e| failed("ca_private_key_pem is not a private key", e))?;
            let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key)
                .map_err(|e| failed("ca_cert_pem is not a certificate", e))?;
            params
                .signed_by(key, &issuer)
                .map_err(|e| failed("signing the certificate", e))?
        }
        _ => params
            .self_signed(key)
            .map_err(|e| failed("signing the certificate", e))?,
    };
    Ok(cert)
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SPECIAL: &[u8] = b"!#%*+-.:=?@^_~";

pub(crate) fn password(inputs: &PasswordValues) -> Result<Generated, ProviderError> {
    let length = usize::try_from(inputs.length).unwrap_or(32);
    let alphabet: Vec<u8> = if inputs.special == Some(true) {
        ALPHANUMERIC.iter().chain(SPECIAL).copied().collect()
    } else {
        ALPHANUMERIC.to_vec()
    };
    let mut rng = rand::rng();
    let result: String = (0..length)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect();
    Ok(Generated {
        id: hex(&random_id()),
        outputs: PropertyMap::from([("result".to_owned(), Value::from(result))]),
    })
}
