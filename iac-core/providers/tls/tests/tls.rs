//! The tls and random providers through the engine: a CA, two certificates it signs and a
//! password, checked by an X.509 parser of its own (issuer, SANs, validity, the CA's
//! signature); secrets only encrypted on disk and `[secret]` in the preview; renewal inside
//! the early-renewal window; a changed SAN re-issuing only its certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use iac_core::{
    ApplyOptions, Engine, FileBackend, Operation, Passphrase, Program, Providers, Stack,
};
use iac_tls::*;
use tempfile::TempDir;
use x509_parser::prelude::*;

fn engine(dir: &TempDir, provider: TlsProvider) -> Engine {
    let mut providers = Providers::new();
    provider.register(&mut providers);
    Engine::new(providers, FileBackend::new(dir.path().join("state")))
        .with_passphrase(Passphrase::new("tls tests"))
}

/// A CA, two brokers' keys and certificates, and a password; `broker1_dns` is broker-1's SAN.
fn program(broker1_dns: &str) -> Program {
    let mut s = Stack::new("pki");
    let ca_key = s.resource::<PrivateKey>("ca-key", PrivateKeyArgs::default());
    let ca = s.resource::<Certificate>(
        "ca",
        CertificateArgs {
            private_key_pem: ca_key.private_key_pem(),
            common_name: "pki CA".into(),
            organization: "kafka-platform".into(),
            is_ca: Some(true).into(),
            validity_days: 3650.into(),
            ..Default::default()
        },
    );
    for (n, dns, ip) in [
        (1, broker1_dns, "10.0.1.20"),
        (2, "broker-2.internal", "10.0.2.20"),
    ] {
        let key = s.resource::<PrivateKey>(&format!("broker-{n}-key"), PrivateKeyArgs::default());
        s.resource::<Certificate>(
            &format!("broker-{n}"),
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: dns.into(),
                dns_names: vec![dns].into(),
                ip_addresses: vec![ip].into(),
                validity_days: 30.into(),
                early_renewal_days: 5.into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
    }
    s.resource::<Password>(
        "admin-password",
        PasswordArgs {
            length: 32.into(),
            ..Default::default()
        },
    );
    s.build().unwrap()
}

fn changed(plan: &iac_core::Plan) -> Vec<(String, Operation)> {
    plan.record()
        .steps
        .iter()
        .filter(|s| s.op != Operation::Same)
        .map(|s| (s.name.clone(), s.op))
        .collect()
}

fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[tokio::test]
async fn a_ca_signs_certificates_that_renew_in_their_window_and_secrets_stay_encrypted() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir, TlsProvider::new());
    let first = program("broker-1.internal");
    let plan = engine.preview(&first).await.unwrap();
    let started = std::time::Instant::now();
    let summary = engine
        .apply(&first, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    let generated_in = started.elapsed();
    assert!(summary.is_success(), "{:?}", summary.failed);
    assert_eq!(summary.counts.create, 7);
    println!("generated a CA, 2 keys and certificates and a password in {generated_in:?}");

    let state = engine.state("pki").await.unwrap().unwrap();
    for (name, key) in [
        ("ca-key", "private_key_pem"),
        ("broker-1", "private_key_pem"),
        ("broker-1", "ca_private_key_pem"),
        ("admin-password", "result"),
    ] {
        assert!(
            state.resource(name).unwrap().secrets.contains(key),
            "{name}.{key} is recorded as a secret"
        );
    }
    let output = |name: &str, key: &str| {
        state.resource(name).unwrap().outputs[key]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ca_pem = output("ca", "cert_pem");
    let (_, ca_der) = parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let ca = ca_der.parse_x509().unwrap();
    assert!(ca.is_ca());
    let (_, leaf_der) = parse_x509_pem(output("broker-1", "cert_pem").as_bytes()).unwrap();
    let leaf = leaf_der.parse_x509().unwrap();
    assert_eq!(leaf.issuer(), ca.subject());
    leaf.verify_signature(Some(ca.public_key()))
        .expect("signed by the CA");
    let sans = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            GeneralName::IPAddress(ip) => format!("{ip:?}"),
            other => format!("{other}"),
        })
        .collect();
    assert_eq!(names, ["broker-1.internal", "[10, 0, 1, 20]"]);
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 30, "30 days (and the minute back for clock skew)");
    let password = output("admin-password", "result");
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));

    // Every secret is encrypted on disk: neither a key nor the password is readable there.
    let secrets = [
        pem_body(&output("ca-key", "private_key_pem")),
        pem_body(&output("broker-1-key", "private_key_pem")),
        password.clone(),
    ];
    for entry in std::fs::read_dir(dir.path().join("state")).unwrap() {
        let text =
            String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in plain text on disk"
            );
        }
    }
    let again = engine.preview(&first).await.unwrap();
    assert_eq!(changed(&again), []);
    for secret in &secrets {
        assert!(!again.render().contains(secret.as_str()));
        assert!(!again.record().to_json().contains(secret.as_str()));
    }

    // 26 days on, the brokers' certificates are inside their 5-day window: renewed, and only
    // they (the CA has years left).
    let later = Engine::new(
        {
            let mut providers = Providers::new();
            TlsProvider::as_of(::time::OffsetDateTime::now_utc() + ::time::Duration::days(26))
                .register(&mut providers);
            providers
        },
        FileBackend::new(dir.path().join("state")),
    )
    .with_passphrase(Passphrase::new("tls tests"));
    let renewal = later.preview(&first).await.unwrap();
    assert_eq!(
        changed(&renewal),
        [
            ("broker-1".to_owned(), Operation::Replace),
            ("broker-2".to_owned(), Operation::Replace)
        ]
    );
    assert!(
        renewal
            .render()
            .contains("        ~ not_after (forces replacement)\n"),
        "the preview says why: {}",
        renewal.render()
    );

    // A changed SAN re-issues that certificate only.
    let renamed = program("broker-1.kafka.internal");
    let plan = engine.preview(&renamed).await.unwrap();
    assert_eq!(
        changed(&plan),
        [("broker-1".to_owned(), Operation::Replace)]
    );
    let summary = engine
        .apply(&renamed, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success());
    let state = engine.state("pki").await.unwrap().unwrap();
    let (_, der) = parse_x509_pem(
        state.resource("broker-1").unwrap().outputs["cert_pem"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let reissued = der.parse_x509().unwrap();
    assert!(
        reissued
            .subject()
            .to_string()
            .contains("broker-1.kafka.internal"),
        "{}",
        reissued.subject()
    );
    reissued
        .verify_signature(Some(ca.public_key()))
        .expect("still signed by the same CA");
}

#[tokio::test]
async fn bad_inputs_are_refused_at_preview_naming_the_field() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir, TlsProvider::new());
    let mut s = Stack::new("bad");
    let key = s.resource::<PrivateKey>(
        "key",
        PrivateKeyArgs {
            algorithm: Some("rsa-512".to_owned()).into(),
        },
    );
    s.resource::<Certificate>(
        "cert",
        CertificateArgs {
            private_key_pem: key.private_key_pem(),
            common_name: "x".into(),
            ip_addresses: vec!["10.0.0.300"].into(),
            validity_days: 30.into(),
            early_renewal_days: 30.into(),
            ca_cert_pem: Some("pem".to_owned()).into(),
            ..Default::default()
        },
    );
    s.resource::<Password>(
        "pw",
        PasswordArgs {
            length: 6.into(),
            ..Default::default()
        },
    );
    let err = engine
        .preview(&s.build().unwrap())
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "`algorithm`: `rsa-512` is not one of ecdsa-p256, ecdsa-p384, ed25519",
        "`ip_addresses`: [0] \"10.0.0.300\" is not an IP address",
        "`early_renewal_days`: must be at least 0 and less than validity_days",
        "`ca_cert_pem`: a CA is its certificate and its key",
        "`length`: must be 12 to 256 characters",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from {err}");
    }
}
