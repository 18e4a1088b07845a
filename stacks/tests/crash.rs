//! Crash soak: `kill -9` of `stacks apply` and `stacks destroy` at seeded random moments,
//! every AWS call slowed by the fault-injecting proxy (which still delivers a killed client's
//! requests, as AWS would). After each kill, the documented recovery and nothing else: the
//! same command again (no lock breaking, no refresh). Then an independent reader (boto3, not
//! the CLI nor the Rust SDK) finds exactly the platform: one object per resource, no
//! duplicated group, rule, key or role; a further apply changes nothing; destroy leaves
//! nothing of the stack.
//!
//! It runs twice: with the state in files, and with the state in the emulator's S3 (the
//! `--backend` of a team; its requests go straight to the emulator, `AWS_ENDPOINT_URL_S3`).
//! Short by default; `scripts/soak-apply.sh` runs the long version (`CRASH_SOAK_KILLS`,
//! `CRASH_SOAK_SEED`, `CRASH_SOAK_LATENCY_MS=300-900`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_fault_proxy::FaultProxy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn latency() -> (Duration, Duration) {
    let text = std::env::var("CRASH_SOAK_LATENCY_MS").unwrap_or_else(|_| "100-300".to_owned());
    let (min, max) = text.split_once('-').unwrap_or((&text, &text));
    let ms = |v: &str| Duration::from_millis(v.trim().parse().unwrap());
    (ms(min), ms(max))
}

/// A copy of `envs/dev.toml` under a fresh name, with its own state and render folders.
struct Soak {
    name: String,
    envs: TempDir,
    state: TempDir,
    rendered: TempDir,
    endpoint: String,
    /// The state's bucket (`s3://…`) and the emulator's URL, when state is kept in S3.
    bucket: Option<(String, String)>,
}

impl Soak {
    fn new(endpoint: &str, bucket: Option<(String, String)>) -> Self {
        let name = format!("soak{:06x}", rand::random::<u32>() & 0xff_ffff);
        let envs = TempDir::new().unwrap();
        let dev =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/dev.toml"))
                .unwrap();
        std::fs::write(envs.path().join(format!("{name}.toml")), dev).unwrap();
        Soak {
            name,
            envs,
            state: TempDir::new().unwrap(),
            rendered: TempDir::new().unwrap(),
            endpoint: endpoint.to_owned(),
            bucket,
        }
    }

    fn command(&self, verb: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("stacks"));
        command
            .arg(verb)
            .arg(&self.name)
            .args(extra)
            .env("STACKS_ENV_DIR", self.envs.path())
            .env("IAC_STATE_DIR", self.state.path())
            .env("STACKS_RENDER_DIR", self.rendered.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .stdin(Stdio::null());
        if let Some((url, emulator)) = &self.bucket {
            command
                .env("IAC_BACKEND", url)
                .env("AWS_ENDPOINT_URL_S3", emulator);
        }
        command
    }

    /// Runs `verb` to its end (off the runtime that serves the proxy).
    async fn run(&self, verb: &str, extra: &[&str]) -> Output {
        let mut command = self.command(verb, extra);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The emulator's objects of `stack`, read by boto3 straight from the emulator.
fn inventory(stack: &str) -> Vec<(String, String)> {
    let venv = std::env::var("KAFKA_PLATFORM_VENV").unwrap_or_else(|_| {
        panic!("KAFKA_PLATFORM_VENV is unset: scripts/setup.sh makes the virtualenv (run scripts/test.sh)")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/inventory.py");
    let out = Command::new(format!("{venv}/bin/python"))
        .arg(script)
        .arg(stack)
        .output()
        .unwrap();
    assert!(out.status.success(), "inventory: {}", text(&out));
    let pairs: Vec<(String, Option<String>)> = serde_json::from_slice(&out.stdout).unwrap();
    pairs
        .into_iter()
        .map(|(kind, name)| {
            (
                kind,
                name.unwrap_or_else(|| "(no iac:resource tag)".to_owned()),
            )
        })
        .collect()
}

/// Requests that change something (everything but reads).
fn mutations(proxy: &FaultProxy) -> usize {
    proxy
        .actions()
        .iter()
        .filter(|a| !(a.starts_with("Describe") || a.starts_with("Get") || a.starts_with("List")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_seeded_random_moments_leaves_no_duplicate_no_orphan_and_no_stuck_stack() {
    soak(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_the_state_in_a_bucket_leaves_no_duplicate_no_orphan_and_no_stuck_stack() {
    soak(true).await;
}

/// A bucket of its own on the emulator: its `s3://` URL.
async fn state_bucket(emulator: &str) -> String {
    let s3 = iac_state_s3::testing::client(Some(emulator)).await;
    let bucket = format!("soak-{:08x}", rand::random::<u32>());
    iac_state_s3::testing::create_bucket(&s3, &bucket)
        .await
        .unwrap();
    format!("s3://{bucket}/state")
}

/// The soak, with the state in files or (`in_a_bucket`) in S3.
async fn soak(in_a_bucket: bool) {
    let emulator = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("the crash soak needs the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first")
    });
    let kills = env_number("CRASH_SOAK_KILLS", 2);
    let seed = env_number(
        "CRASH_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    let (min, max) = latency();
    let backend = if in_a_bucket { "S3" } else { "files" };
    println!("crash soak ({backend}): seed {seed}, {kills} kills, {min:?}-{max:?} per AWS call");
    let mut rng = StdRng::seed_from_u64(seed);
    let proxy = FaultProxy::start(&emulator).await.unwrap();
    proxy.set_latency(min, max);
    let bucket = if in_a_bucket {
        Some((state_bucket(&emulator).await, emulator.clone()))
    } else {
        None
    };
    let soak = Soak::new(proxy.url(), bucket);

    // How long an uninterrupted apply and destroy take: the kills land within that.
    let mut took = BTreeMap::new();
    for verb in ["apply", "destroy"] {
        let started = Instant::now();
        let out = soak.run(verb, &["--yes"]).await;
        assert!(out.status.success(), "{verb}: {}", text(&out));
        took.insert(verb, started.elapsed());
    }

    let (mut mid_run, mut before_any_change, mut after_the_end) = (0, 0, 0);
    for k in 0..kills {
        // Alternate, so that each kill interrupts real work: a destroy of the whole
        // platform the previous recovery finished, an apply of it from nothing.
        let verb = if k % 2 == 0 { "apply" } else { "destroy" };
        let delay = took[verb].mul_f64(rng.random::<f64>());
        let before = mutations(&proxy);
        let mut child = soak
            .command(verb, &["--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        match (running, mutations(&proxy) > before) {
            (true, true) => mid_run += 1,
            (true, false) => before_any_change += 1,
            (false, _) => after_the_end += 1,
        }

        // The documented recovery: the same command again, nothing else.
        let out = soak.run(verb, &["--yes"]).await;
        assert!(
            out.status.success(),
            "kill {k} ({verb} after {delay:?}), recovery: {}",
            text(&out)
        );
    }
    println!(
        "crash soak ({backend}): seed {seed}, {kills} kills: {mid_run} mid-run, {before_any_change} before any change, {after_the_end} after the run had ended"
    );
    if kills >= 10 {
        assert!(2 * mid_run > kills, "most kills must land mid-run");
    }

    let out = soak.run("apply", &["--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let world = inventory(&soak.name);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for (kind, name) in &world {
        *counts.entry(kind.as_str()).or_default() += 1;
        if let Some(first) = seen.insert((kind.clone(), name.clone()), ()) {
            panic!("{kind} `{name}` exists twice: {first:?}\n{world:?}");
        }
    }
    for (kind, expected) in [
        ("vpc", 1),
        ("subnet", 3),
        ("instance", 8),
        ("internet_gateway", 1),
        ("key_pair", 1),
        ("role", 1),
        ("instance_profile", 1),
        ("profile_role", 1),
    ] {
        assert_eq!(
            counts.get(kind).copied().unwrap_or(0),
            expected,
            "{kind}: {world:?}"
        );
    }
    let unchanged = soak.run("preview", &["--detailed-exitcode"]).await;
    assert_eq!(
        unchanged.status.code(),
        Some(0),
        "a further apply would change something: {}",
        text(&unchanged)
    );

    let out = soak.run("destroy", &["--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        inventory(&soak.name),
        Vec::new(),
        "destroy left objects of the stack"
    );
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Waits until `child` has sent a mutating request through the proxy: it is mid-run.
async fn until_mutating(proxy: &FaultProxy, before: usize) {
    while mutations(proxy) == before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM stops an apply between steps (the steps in flight finish and are recorded, the
/// summary is printed, exit 143); two Ctrl-Cs stop it at once (exit 130) and the next run
/// resolves what was in flight. Either way the next apply finishes the platform exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_signal_stops_between_steps_and_a_second_stops_at_once() {
    let emulator = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("the signal test needs the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first")
    });
    let proxy = FaultProxy::start(&emulator).await.unwrap();
    proxy.set_latency(Duration::from_millis(150), Duration::from_millis(250));
    let soak = Soak::new(proxy.url(), None);

    let before = mutations(&proxy);
    let child = soak
        .command("apply", &["--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_mutating(&proxy, before).await;
    signal(&child, "TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(143), "{said}");
    assert!(said.contains("stopping: no new step starts"), "{said}");
    assert!(said.contains("(not started: the stop request)"), "{said}");
    assert!(said.contains(&format!("Stack {}: ", soak.name)), "{said}");
    let preview = soak.run("preview", &[]).await;
    assert!(
        !text(&preview).contains("Interrupted operations"),
        "every call in flight was recorded: {}",
        text(&preview)
    );

    let before = mutations(&proxy);
    let child = soak
        .command("destroy", &["--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_mutating(&proxy, before).await;
    signal(&child, "INT");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = Instant::now();
    signal(&child, "INT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "the second signal stops at once"
    );
    assert!(text(&out).contains("stopped at once"), "{}", text(&out));

    let out = soak.run("apply", &["--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let world = inventory(&soak.name);
    let instances = world.iter().filter(|(kind, _)| kind == "instance").count();
    assert_eq!(instances, 8, "{world:?}");
    let out = soak.run("destroy", &["--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inventory(&soak.name), Vec::new());
}
