//! The S3 backend against the emulator's S3 (`AWS_ENDPOINT_URL`, as `scripts/test.sh`
//! starts it), read back with an S3 client of the test's own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::sync::Arc;
use std::time::Duration;

use iac_core::state::{LockInfo, StateBackend, StateError};
use iac_core::testing::{CallKind, TestProvider};
use iac_core::{
    ApplyOptions, Drift, Engine, Inputs, Passphrase, Providers, ResourceOptions, Stack,
};
use iac_state_s3::{S3Backend, testing};

const THING: &str = "test:Thing";

/// An S3 client of the test's own (path-style, as the backend's).
async fn reader() -> aws_sdk_s3::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "the S3 tests need the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first"
    );
    testing::client(None).await
}

/// A new bucket of the test's own; its URL with a prefix.
async fn bucket(s3: &aws_sdk_s3::Client, name: &str) -> String {
    let bucket = format!("{name}-{}", std::process::id());
    testing::create_bucket(s3, &bucket).await.unwrap();
    format!("s3://{bucket}/team/state")
}

/// Every key in the bucket of `url`.
async fn keys(s3: &aws_sdk_s3::Client, url: &str) -> Vec<String> {
    let bucket = url.trim_start_matches("s3://").split('/').next().unwrap();
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

fn engine(provider: &Arc<TestProvider>, backend: S3Backend) -> Engine {
    let mut providers = Providers::new();
    providers.register(provider.clone(), [THING]);
    Engine::new(providers, backend).with_passphrase(Passphrase::new("s3 test"))
}

fn program() -> iac_core::Program {
    let mut s = Stack::new("dev");
    let vpc = s.register(
        THING,
        "vpc",
        Inputs::new().with("cidr", "10.0.0.0/16"),
        ResourceOptions::new(),
    );
    for subnet in ["subnet-a", "subnet-b"] {
        s.register(
            THING,
            subnet,
            Inputs::new().with("vpc", vpc.id()),
            ResourceOptions::new(),
        );
    }
    s.export("vpc", vpc.id());
    s.build().unwrap()
}

/// A pid no process has (a child that exited): what a run killed with -9 leaves as holder.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_keeps_its_state_in_the_bucket_and_leaves_only_the_snapshot() {
    let s3 = reader().await;
    let url = bucket(&s3, "apply").await;
    let provider = Arc::new(TestProvider::new());
    let engine = engine(&provider, S3Backend::connect(&url).unwrap());
    let program = program();
    let plan = engine.preview(&program).await.unwrap();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    // The journal is folded into the snapshot; the lock is released.
    assert_eq!(keys(&s3, &url).await, ["team/state/dev/state.json"]);

    // Another backend (another engineer) reads the same state: nothing to do.
    let other = engine_for_reader(&provider, &url);
    let again = other.preview(&program).await.unwrap();
    assert!(!again.has_changes(), "{}", again.render());
    assert_eq!(
        other.outputs("dev").await.unwrap()["vpc"].to_string(),
        engine.outputs("dev").await.unwrap()["vpc"].to_string()
    );
}

fn engine_for_reader(provider: &Arc<TestProvider>, url: &str) -> Engine {
    engine(provider, S3Backend::connect(url).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_apply_leaves_its_pending_create_in_the_journal_and_the_next_run_adopts_it()
 {
    let s3 = reader().await;
    let url = bucket(&s3, "crash").await;
    let provider = Arc::new(TestProvider::new());
    provider.crash(CallKind::Create, "subnet-a");
    let engine = engine(&provider, S3Backend::connect(&url).unwrap());
    let program = program();
    let plan = engine.preview(&program).await.unwrap();
    let options = ApplyOptions {
        parallelism: 1,
        ..ApplyOptions::default()
    };
    let mut run = Box::pin(engine.apply(&program, &plan, &options));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut run)
            .await
            .is_err(),
        "the crashed call never returns"
    );
    // Like kill -9: nothing runs on the way out; the lock and the journal stay.
    std::mem::forget(run);
    let stored = keys(&s3, &url).await;
    assert!(
        stored
            .iter()
            .any(|k| k.starts_with("team/state/dev/journal/")),
        "{stored:?}"
    );
    assert!(stored.contains(&"team/state/dev/lock.json".to_owned()));

    // Another engineer's run is refused, naming the holder.
    provider.clear_crashes();
    let other = engine_for_reader(&provider, &url);
    let refused = other
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.starts_with(&format!(
            "stack `dev` is locked by pid {}",
            std::process::id()
        )),
        "{refused}"
    );

    // The holder is gone (its pid now names no process): the next run takes the lock over,
    // reports the interrupted create, and refresh adopts what it made: no duplicate.
    let stale = LockInfo {
        pid: dead_pid(),
        ..LockInfo::this_process("apply")
    };
    s3.put_object()
        .bucket(url.trim_start_matches("s3://").split('/').next().unwrap())
        .key("team/state/dev/lock.json")
        .body(serde_json::to_vec(&stale).unwrap().into())
        .send()
        .await
        .unwrap();
    let next = engine_for_reader(&provider, &url);
    let preview = next.preview(&program).await.unwrap().render();
    assert!(
        preview.contains("! create of `subnet-a` (test:Thing) started"),
        "{preview}"
    );
    let report = next.refresh("dev", 4).await.unwrap();
    assert!(
        report
            .drift
            .iter()
            .any(|d| d.name == "subnet-a" && d.drift == Drift::Adopted),
        "{:?}",
        report.drift
    );
    let plan = next.preview(&program).await.unwrap();
    let finished = next
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(finished.is_success(), "{finished}");
    let creates = provider
        .calls()
        .iter()
        .filter(|c| c.kind == CallKind::Create && c.name == "subnet-a")
        .count();
    assert_eq!(creates, 1, "subnet-a was made once");
    assert_eq!(provider.existing().len(), 3);
    assert_eq!(keys(&s3, &url).await, ["team/state/dev/state.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_one_conditional_object_naming_its_holder() {
    let s3 = reader().await;
    let url = bucket(&s3, "lock").await;
    let first = S3Backend::connect(&url).unwrap();
    let second = S3Backend::connect(&url).unwrap();
    let held = first.lock("dev", "apply").unwrap();
    let Err(StateError::Locked { holder, .. }) = second.lock("dev", "refresh") else {
        panic!("a second lock is refused");
    };
    assert_eq!(
        (holder.pid, holder.operation.as_str()),
        (std::process::id(), "apply")
    );
    assert!(matches!(
        second.break_lock("dev"),
        Err(StateError::HolderAlive { .. })
    ));
    drop(held);
    assert!(keys(&s3, &url).await.is_empty(), "released on drop");
    let again = second.lock("dev", "refresh").unwrap();
    drop(again);

    // A lock left by a run on another host stays until broken.
    let elsewhere = LockInfo {
        host: "another-host".to_owned(),
        ..LockInfo::this_process("apply")
    };
    s3.put_object()
        .bucket(url.trim_start_matches("s3://").split('/').next().unwrap())
        .key("team/state/dev/lock.json")
        .body(serde_json::to_vec(&elsewhere).unwrap().into())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        first.lock("dev", "apply"),
        Err(StateError::Locked { .. })
    ));
    assert_eq!(first.take_over("dev").unwrap(), None);
    assert_eq!(first.break_lock("dev").unwrap(), Some(elsewhere));
    drop(first.lock("dev", "apply").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_found_stored_is_ours_after_a_lost_response_or_another_writers() {
    let s3 = reader().await;
    let url = bucket(&s3, "batch").await;
    let backend = S3Backend::connect(&url).unwrap();
    let mut checkpoint = iac_core::state::Checkpoint::new("dev");
    backend.save(&checkpoint).unwrap();
    checkpoint.serial += 1;
    let batch = iac_core::state::JournalBatch {
        serial: checkpoint.serial,
        mutations: Vec::new(),
    };
    let key = format!("team/state/dev/journal/{:020}.json", checkpoint.serial);
    let bucket_name = url.trim_start_matches("s3://").split('/').next().unwrap();
    // The write landed but its answer was lost: the retry finds the same bytes.
    s3.put_object()
        .bucket(bucket_name)
        .key(&key)
        .body(serde_json::to_vec(&batch).unwrap().into())
        .send()
        .await
        .unwrap();
    backend.append(&checkpoint, &[]).unwrap();
    // Another writer stored a different batch under the serial: refused, not overwritten.
    checkpoint.serial += 1;
    let key = format!("team/state/dev/journal/{:020}.json", checkpoint.serial);
    s3.put_object()
        .bucket(bucket_name)
        .key(&key)
        .body(
            b"{\"serial\":2,\"mutations\":[],\"writer\":\"another\"}"
                .to_vec()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let conflict = backend.append(&checkpoint, &[]).unwrap_err().to_string();
    assert!(
        conflict.contains("another writer stored this batch"),
        "{conflict}"
    );
}

#[test]
fn a_bucket_that_does_not_exist_is_named_with_how_to_make_it() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "needs the emulator"
    );
    let missing = S3Backend::connect("s3://no-such-bucket-of-the-tests/state")
        .unwrap_err()
        .to_string();
    assert_eq!(
        missing,
        "state in s3://no-such-bucket-of-the-tests/state/: the bucket `no-such-bucket-of-the-tests` does not exist: create it (`aws s3 mb s3://no-such-bucket-of-the-tests`), or name another in --backend / IAC_BACKEND"
    );
}
