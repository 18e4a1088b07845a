//! Certificates for the admin API's benchmark over TLS (`scripts/bench-admin-api.sh`):
//! generates a CA and a broker certificate for `localhost` and 127.0.0.1 with the `iac-tls`
//! provider (state in `<dir>`), and writes `<dir>/ca.crt`, `<dir>/broker.crt` and
//! `<dir>/broker.key` (PKCS#8), which `scripts/kafka.sh` presents with `KAFKA_TLS_DIR=<dir>`.
//!
//! ```sh
//! bench_pki <dir>
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a failure stops it

#[path = "../tests/support/pki.rs"]
mod pki;

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: bench_pki <dir>"));
    let pki = pki::generate(&dir).await;
    for name in ["ca.crt", "broker.crt", "broker.key"] {
        std::fs::write(dir.join(name), pki.get(name))
            .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    }
}
