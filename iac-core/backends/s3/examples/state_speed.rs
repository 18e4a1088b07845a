//! The state backends' speed, side by side: an apply of `N` independent resources (an
//! in-memory provider, so the state writes are what takes time: a pending operation made
//! durable before each create, its result after), then a no-op preview (a load) — with the
//! state in files and in S3 (the emulator at `AWS_ENDPOINT_URL`, a bucket of its own).
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run --release -p iac-state-s3 --example state_speed -- 500
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure stops it

use std::sync::Arc;
use std::time::{Duration, Instant};

use iac_core::state::StateBackend;
use iac_core::testing::TestProvider;
use iac_core::{ApplyOptions, Engine, FileBackend, Inputs, Providers, ResourceOptions, Stack};
use iac_state_s3::S3Backend;

const THING: &str = "test:Thing";

fn program(n: usize) -> iac_core::Program {
    let mut stack = Stack::new("speed");
    for i in 0..n {
        stack.register(
            THING,
            &format!("thing-{i}"),
            Inputs::new().with("index", i64::try_from(i).unwrap()),
            ResourceOptions::new(),
        );
    }
    stack.build().unwrap()
}

/// (apply, no-op preview) times.
async fn measure(backend: impl StateBackend, n: usize) -> (Duration, Duration) {
    let mut providers = Providers::new();
    providers.register(Arc::new(TestProvider::new()), [THING]);
    let engine = Engine::new(providers, backend);
    let program = program(n);
    let plan = engine.preview(&program).await.unwrap();
    let started = Instant::now();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    let applied = started.elapsed();
    assert!(summary.is_success());
    let started = Instant::now();
    let again = engine.preview(&program).await.unwrap();
    let previewed = started.elapsed();
    assert!(!again.has_changes());
    (applied, previewed)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(200, |a| a.parse().expect("usage: state_speed [resources]"));
    let dir = tempfile::tempdir().unwrap();
    let s3 = iac_state_s3::testing::client(None).await;
    let bucket = format!("state-speed-{}", std::process::id());
    iac_state_s3::testing::create_bucket(&s3, &bucket)
        .await
        .expect("the emulator's S3 at AWS_ENDPOINT_URL");
    let url = format!("s3://{bucket}/bench");
    let file = measure(FileBackend::new(dir.path()), n).await;
    let bucket = measure(S3Backend::connect(&url).unwrap(), n).await;
    for (name, (applied, previewed)) in [("files", file), ("S3 (emulator)", bucket)] {
        println!(
            "{name:<14} apply of {n} resources {:>7.1} ms ({:.2} ms a resource), no-op preview {:>6.1} ms",
            applied.as_secs_f64() * 1e3,
            applied.as_secs_f64() * 1e3 / n as f64,
            previewed.as_secs_f64() * 1e3
        );
    }
}
