//! TLS before a broker for the tests and the benchmark: certificates the graph generates (the
//! `iac-tls` provider through the engine) and a `rustls` terminator that presents one and
//! forwards to a plain-TCP broker (tansu 0.6.0 cannot terminate TLS itself).

use iac_core::{ApplyOptions, Engine, FileBackend, Passphrase, Providers, Stack};
use iac_tls::{Certificate, CertificateArgs, PrivateKey, PrivateKeyArgs, TlsProvider};

/// The PEMs the graph generated, by name: `<name>.key` and `<name>.crt`.
pub(crate) struct Pki {
    pems: std::collections::BTreeMap<String, String>,
}

impl Pki {
    pub(crate) fn get(&self, name: &str) -> &str {
        &self.pems[name]
    }
}

/// Applies a stack of two CAs, a broker certificate for `localhost`/127.0.0.1 signed by the
/// first, and one for another name signed by it too.
pub(crate) async fn generate(dir: &std::path::Path) -> Pki {
    let mut s = Stack::new("tls-test");
    let mut cas = Vec::new();
    for ca in ["ca", "other-ca"] {
        let key = s.resource::<PrivateKey>(&format!("{ca}-key"), PrivateKeyArgs::default());
        let cert = s.resource::<Certificate>(
            ca,
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: format!("{ca} of the TLS test").into(),
                is_ca: Some(true).into(),
                validity_days: 30.into(),
                ..Default::default()
            },
        );
        cas.push((key, cert));
    }
    let (ca_key, ca) = &cas[0];
    for (name, dns, ip) in [
        ("broker", "localhost", Some("127.0.0.1")),
        ("wrong-name", "kafka.example.com", None),
    ] {
        let key = s.resource::<PrivateKey>(&format!("{name}-key"), PrivateKeyArgs::default());
        s.resource::<Certificate>(
            name,
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: dns.into(),
                dns_names: vec![dns].into(),
                ip_addresses: ip.map(|i| vec![i.to_owned()]).unwrap_or_default().into(),
                validity_days: 30.into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
    }
    let program = s.build().unwrap();
    let mut providers = Providers::new();
    TlsProvider::new().register(&mut providers);
    let engine = Engine::new(providers, FileBackend::new(dir.join("state")))
        .with_passphrase(Passphrase::new("tls test"));
    let plan = engine.preview(&program).await.unwrap();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{:?}", summary.failed);
    let state = engine.state("tls-test").await.unwrap().unwrap();
    let mut pems = std::collections::BTreeMap::new();
    for name in ["ca", "other-ca", "broker", "wrong-name"] {
        let output = |resource: &str, key: &str| {
            state.resource(resource).unwrap().outputs[key]
                .as_str()
                .unwrap()
                .to_owned()
        };
        pems.insert(format!("{name}.crt"), output(name, "cert_pem"));
        pems.insert(
            format!("{name}.key"),
            output(&format!("{name}-key"), "private_key_pem"),
        );
    }
    Pki { pems }
}

/// A TLS terminator on a free port presenting `cert`/`key`, forwarding to `upstream`: the
/// front the local platform runs (`services::tls_front`).
pub(crate) async fn terminator(cert: &str, key: &str, upstream: u16) -> u16 {
    let here = std::path::Path::new("(generated)");
    let acceptor =
        services::tls_front::acceptor_from_pem(cert.as_bytes(), key.as_bytes(), here, here)
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(services::tls_front::serve(
        listener,
        acceptor,
        ([127, 0, 0, 1], upstream).into(),
    ));
    port
}
