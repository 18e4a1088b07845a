//! Benchmark: the time to generate a whole platform's credentials through the engine — the
//! CA, a key and a signed certificate for each of 7 Kafka nodes, and 5 passwords (what
//! `security.protocol = "sasl_ssl"` adds to prod) — each preview and apply into a fresh
//! encrypted state.
//!
//! `cargo run --release -p iac-tls --example platform_credentials [rounds, default 5]`

use std::time::Instant;

use iac_core::{ApplyOptions, Engine, FileBackend, Passphrase, Providers, Stack};
use iac_tls::*;

const NODES: usize = 7;
const PASSWORDS: usize = 5;

fn program() -> Result<iac_core::Program, iac_core::RegistrationErrors> {
    let mut s = Stack::new("credentials");
    let ca_key = s.resource::<PrivateKey>("ca-key", PrivateKeyArgs::default());
    let ca = s.resource::<Certificate>(
        "ca",
        CertificateArgs {
            private_key_pem: ca_key.private_key_pem(),
            common_name: "prod Kafka CA".into(),
            is_ca: Some(true).into(),
            validity_days: 1825.into(),
            ..Default::default()
        },
    );
    for n in 1..=NODES {
        let key = s.resource::<PrivateKey>(&format!("node-{n}-key"), PrivateKeyArgs::default());
        let dns = format!("ip-10-0-1-{n}.eu-central-1.compute.internal");
        s.resource::<Certificate>(
            &format!("node-{n}"),
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: dns.clone().into(),
                dns_names: vec![dns].into(),
                ip_addresses: vec![format!("10.0.1.{n}")].into(),
                validity_days: 397.into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
    }
    for n in 1..=PASSWORDS {
        s.resource::<Password>(
            &format!("password-{n}"),
            PasswordArgs {
                length: 32.into(),
                ..Default::default()
            },
        );
    }
    s.build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir()?;
        let mut providers = Providers::new();
        TlsProvider::new().register(&mut providers);
        let engine = Engine::new(providers, FileBackend::new(dir.path()))
            .with_passphrase(Passphrase::new("benchmark"));
        let program = program()?;
        let started = Instant::now();
        let plan = engine.preview(&program).await?;
        let summary = engine
            .apply(&program, &plan, &ApplyOptions::default())
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !summary.is_success() {
            return Err("the apply failed".into());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} resources (CA, {NODES} keys and certificates, {PASSWORDS} passwords), {rounds} applies into fresh state: median {:.1} ms (lowest {:.1}, highest {:.1})",
        2 + 2 * NODES + PASSWORDS,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
