//! The local provider through the engine, with real files and real processes: drift of a
//! file edited or deleted by hand, a command's output and failure, a service started, found
//! dead after `kill -9` and started again, a port already taken, a service that never gets
//! ready, and an interrupted create's process adopted instead of started twice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use iac_core::{
    ApplyOptions, ApplySummary, CreateRequest, DeleteRequest, Drift, Engine, FileBackend, Output,
    Passphrase, Program, PropertyMap, Provider, Providers, Stack,
};
use iac_local::*;
use serde_json::Value;
use tempfile::TempDir;

/// A stack name of this test process's own: a process a run that panicked left behind is
/// marked with another, so no later run adopts it.
fn stack(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn engine(dir: &TempDir) -> Engine {
    let mut providers = Providers::new();
    LocalProvider::new().register(&mut providers);
    Engine::new(providers, FileBackend::new(dir.path().join("state")))
        .with_passphrase(Passphrase::new("local tests"))
}

async fn up(engine: &Engine, program: &Program) -> ApplySummary {
    let plan = engine.preview(program).await.unwrap();
    engine
        .apply(program, &plan, &ApplyOptions::default())
        .await
        .unwrap()
}

fn drift_of(report: &iac_core::RefreshReport, name: &str) -> Option<Drift> {
    report
        .drift
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.drift.clone())
}

#[tokio::test]
async fn a_file_edited_or_deleted_by_hand_is_drift_and_apply_restores_it() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let path = dir.path().join("conf/prometheus.yml");
    let program = |content: &str| {
        let mut s = Stack::new(stack("files"));
        s.resource::<File>(
            "prometheus",
            FileArgs {
                path: path.display().to_string().into(),
                content: content.into(),
                mode: Some("0600".to_owned()).into(),
            },
        );
        s.build().unwrap()
    };
    assert!(up(&engine, &program("scrape: 1\n")).await.is_success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "scrape: 1\n");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    std::fs::write(&path, "edited by hand\n").unwrap();
    let report = engine.refresh(&stack("files"), 4).await.unwrap();
    let shown: Vec<String> = report.drift.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "~ prometheus (local:File): changed outside the program; apply restores it\n    content: \"scrape: 1\\n\" => \"edited by hand\\n\""
        ]
    );
    let summary = up(&engine, &program("scrape: 1\n")).await;
    assert_eq!(summary.counts.update, 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "scrape: 1\n");

    std::fs::remove_file(&path).unwrap();
    let report = engine.refresh(&stack("files"), 4).await.unwrap();
    assert_eq!(drift_of(&report, "prometheus"), Some(Drift::Deleted));
    assert_eq!(up(&engine, &program("scrape: 1\n")).await.counts.create, 1);
    assert!(path.exists());

    let empty = Program::empty(&stack("files")).unwrap();
    assert!(up(&engine, &empty).await.is_success());
    assert!(!path.exists(), "destroy removes the file");
}

#[tokio::test]
async fn a_command_runs_at_create_again_on_a_trigger_and_fails_with_its_last_lines() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let marker = dir.path().join("ran");
    let program = |trigger: &str, script: &str| {
        let mut s = Stack::new(stack("commands"));
        s.resource::<Command>(
            "build",
            CommandArgs {
                create: script.into(),
                dir: Some(dir.path().display().to_string()).into(),
                environment: BTreeMap::from([("TOKEN".to_owned(), "hunter2".to_owned())]).into(),
                triggers: vec![trigger.to_owned()].into(),
                delete: Some(format!("rm -f {}", marker.display())).into(),
                ..Default::default()
            },
        );
        s.build().unwrap()
    };
    let script = "echo run >> ran; echo built; echo warning >&2";
    assert!(up(&engine, &program("v1", script)).await.is_success());
    let state = engine.state(&stack("commands")).await.unwrap().unwrap();
    let outputs = &state.resource("build").unwrap().outputs;
    assert_eq!(outputs["stdout"], Value::from("built\n"));
    assert_eq!(outputs["stderr"], Value::from("warning\n"));

    // Unchanged: not run again; a refresh finds nothing to report.
    assert!(up(&engine, &program("v1", script)).await.is_success());
    let report = engine.refresh(&stack("commands"), 4).await.unwrap();
    assert!(report.drift.is_empty(), "{report:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\n");
    // A trigger re-runs it.
    assert_eq!(up(&engine, &program("v2", script)).await.counts.update, 1);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\nrun\n");

    let failing =
        "echo step 1; echo \"token is $TOKEN\" > /dev/null; echo no such target >&2; exit 3";
    let failed = up(&engine, &program("v3", failing)).await;
    assert_eq!(failed.failed.len(), 1);
    let error = &failed.failed[0].error;
    assert!(error.contains("exited 3:\nno such target"), "{error}");
    // A script of many lines is named by its first line, its output following.
    let long = "echo the first step\necho the second step\necho what failed >&2; exit 4";
    let failed = up(&engine, &program("v4", long)).await;
    let error = &failed.failed[0].error;
    assert!(
        error.contains("`echo the first step …` exited 4:\nwhat failed"),
        "{error}"
    );
    assert!(!error.contains("the second step"), "{error}");
    assert!(
        !error.contains("hunter2"),
        "the environment is never shown: {error}"
    );

    let empty = Program::empty(&stack("commands")).unwrap();
    assert!(up(&engine, &empty).await.is_success());
    assert!(!marker.exists(), "the delete command ran");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP server (Python's), ready on `/` with 200.
fn web(dir: &TempDir, port: u16) -> ServiceArgs {
    ServiceArgs {
        program: "python3".into(),
        args: vec![
            "-m".to_owned(),
            "http.server".to_owned(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            port.to_string(),
        ]
        .into(),
        dir: Some(dir.path().display().to_string()).into(),
        log_file: dir.path().join("logs/web.log").display().to_string().into(),
        ready_http: Some(format!("http://127.0.0.1:{port}/")).into(),
        ready_timeout_secs: Some(20).into(),
        stop_grace_secs: Some(5).into(),
        ..Default::default()
    }
}

fn pid_of(state: &iac_core::state::Checkpoint, name: &str) -> i32 {
    let pid = state.resource(name).unwrap().outputs["pid"]
        .as_i64()
        .unwrap();
    i32::try_from(pid).unwrap()
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[tokio::test]
async fn a_service_killed_is_drift_and_apply_starts_it_again_and_destroy_stops_it() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let port = free_port();
    let program = {
        let mut s = Stack::new(stack("services"));
        s.resource::<Service>("web", web(&dir, port));
        s.build().unwrap()
    };
    assert!(up(&engine, &program).await.is_success());
    let first = pid_of(
        &engine.state(&stack("services")).await.unwrap().unwrap(),
        "web",
    );
    assert!(running(first));
    let answered = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(answered.is_ok(), "ready means it answers");

    std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = engine.refresh(&stack("services"), 4).await.unwrap();
    assert_eq!(drift_of(&report, "web"), Some(Drift::Deleted));
    assert_eq!(up(&engine, &program).await.counts.create, 1);
    let second = pid_of(
        &engine.state(&stack("services")).await.unwrap().unwrap(),
        "web",
    );
    assert!(second != first && running(second));

    let empty = Program::empty(&stack("services")).unwrap();
    assert!(up(&engine, &empty).await.is_success());
    assert!(!running(second), "destroy stops it");
}

#[tokio::test]
async fn a_port_taken_is_refused_and_a_service_never_ready_is_stopped_again() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let program = {
        let mut s = Stack::new(stack("ports"));
        s.resource::<Service>(
            "web",
            ServiceArgs {
                ready_tcp: Some(format!("127.0.0.1:{port}")).into(),
                ready_http: None.into(),
                ..web(&dir, port)
            },
        );
        s.resource::<Service>(
            "sleeper",
            ServiceArgs {
                program: "sleep".into(),
                args: vec!["60".to_owned()].into(),
                log_file: dir.path().join("sleeper.log").display().to_string().into(),
                ready_tcp: Some(format!("127.0.0.1:{}", free_port())).into(),
                ready_timeout_secs: Some(1).into(),
                stop_grace_secs: Some(1).into(),
                ..Default::default()
            },
        );
        // Its probe's port is free, but another it listens on is taken.
        let free = free_port();
        s.resource::<Service>(
            "broker",
            ServiceArgs {
                listens: Output::known(BTreeMap::from([(
                    format!("127.0.0.1:{port}"),
                    "ports.broker_client in local.toml".to_owned(),
                )])),
                ..web(&dir, free)
            },
        );
        s.build().unwrap()
    };
    let summary = up(&engine, &program).await;
    let errors: BTreeMap<&str, &str> = summary
        .failed
        .iter()
        .map(|f| (f.name.as_str(), f.error.as_str()))
        .collect();
    assert!(
        errors["web"].contains(&format!(
            "PortTaken: 127.0.0.1:{port} is already taken by another process"
        )),
        "{errors:?}"
    );
    assert!(
        errors["broker"].contains(&format!(
            "PortTaken: 127.0.0.1:{port} is already taken by another process: stop it, or change ports.broker_client in local.toml"
        )),
        "{errors:?}"
    );
    assert!(
        errors["sleeper"].contains(&format!(
            "ServiceNotReady: sleep was not ready after 1s (stopped again):\n{} ends:",
            dir.path().join("sleeper.log").display()
        )),
        "the error names the log: {errors:?}"
    );
    let state = engine.state(&stack("ports")).await.unwrap().unwrap();
    assert!(
        state.pending.is_empty(),
        "both were refused: nothing is left running"
    );
    assert!(!marked_running(&stack("ports"), "sleeper"));
    assert!(!marked_running(&stack("ports"), "broker"));
    drop(taken);
}

#[tokio::test]
async fn a_body_probe_waits_until_the_answer_says_ready_and_a_bad_pattern_is_refused() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let port = free_port();
    std::fs::write(dir.path().join("state.txt"), "state: starting\n").unwrap();
    let probed = |pattern: &str| ServiceArgs {
        ready_http: Some(format!("http://127.0.0.1:{port}/state.txt")).into(),
        ready_body: Some(pattern.to_owned()).into(),
        ..web(&dir, port)
    };
    let bad = {
        let mut s = Stack::new(stack("body"));
        s.resource::<Service>("web", probed("state: (running"));
        s.build().unwrap()
    };
    let refused = engine.preview(&bad).await.unwrap_err().to_string();
    assert!(
        refused.contains("`ready_body`: `state: (running` is not a regular expression"),
        "{refused}"
    );
    // The server answers 200 at once, but only says it runs after a while.
    let file = dir.path().join("state.txt");
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(file, "state: running\n").unwrap();
    });
    let program = {
        let mut s = Stack::new(stack("body"));
        s.resource::<Service>("web", probed("state: running"));
        s.build().unwrap()
    };
    let started = std::time::Instant::now();
    assert!(up(&engine, &program).await.is_success());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "ready only once the body matched"
    );
    later.join().unwrap();
    // Running, but its answer no longer matching, is drift on the probe.
    std::fs::write(dir.path().join("state.txt"), "state: stopping\n").unwrap();
    let report = engine.refresh(&stack("body"), 4).await.unwrap();
    let text = report.to_string();
    assert!(
        text.contains("ready_body")
            && text.contains("not ready: the answer does not match `state: running`"),
        "{text}"
    );
    assert!(
        up(&engine, &Program::empty(&stack("body")).unwrap())
            .await
            .is_success()
    );
}

fn marked_running(stack: &str, name: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            return false;
        };
        running(pid)
            && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
                vars.contains(&format!("IAC_STACK={stack}").as_bytes())
                    && vars.contains(&format!("IAC_RESOURCE={name}").as_bytes())
            })
    })
}

/// A create whose record was lost (the CLI killed after the start) finds its process by the
/// marks in its environment and adopts it: one process, never two.
#[tokio::test]
async fn the_process_of_an_interrupted_create_is_adopted_not_started_twice() {
    let dir = TempDir::new().unwrap();
    let provider = LocalProvider::new();
    let port = free_port();
    let inputs: PropertyMap = serde_json::json!({
        "program": "python3",
        "args": ["-m", "http.server", "--bind", "127.0.0.1", port.to_string()],
        "environment": {},
        "dir": dir.path().display().to_string(),
        "log_file": dir.path().join("web.log").display().to_string(),
        "ready_http": format!("http://127.0.0.1:{port}/"),
        "stop_grace_secs": 5,
    })
    .as_object()
    .map(|m| m.clone().into_iter().collect())
    .unwrap();
    let request = CreateRequest {
        stack: "adopt",
        type_token: "local:Service",
        name: "web",
        inputs: &inputs,
        idempotency_token: "t1",
    };
    let first = provider.create(&request).await.unwrap();
    let again = provider.create(&request).await.unwrap();
    assert_eq!(first.id, again.id, "the running process is adopted");
    provider
        .delete(&DeleteRequest {
            stack: "adopt",
            type_token: "local:Service",
            name: "web",
            id: &first.id,
            inputs: &inputs,
            outputs: &first.outputs,
        })
        .await
        .unwrap();
    assert!(!marked_running("adopt", "web"));
}

/// The preview of a changed file shows the changed lines as a unified diff; a secret file's
/// content shows as `[secret]`, never as lines.
#[tokio::test]
async fn the_preview_of_a_file_change_is_a_line_diff_and_a_secret_stays_hidden() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let program = |ip: &str, password: &str| {
        let mut s = Stack::new(stack("diffs"));
        s.resource::<File>(
            "prometheus",
            FileArgs {
                path: dir.path().join("prometheus.yml").display().to_string().into(),
                content: format!(
                    "global:\n  scrape_interval: 15s\nscrape_configs:\n  - targets:\n      - {ip}:9100\n"
                )
                .into(),
                ..Default::default()
            },
        );
        s.resource::<File>(
            "users",
            FileArgs {
                path: dir.path().join("users").display().to_string().into(),
                content: iac_core::Output::secret(format!("admin:{password}\n")),
                mode: Some("0600".to_owned()).into(),
            },
        );
        s.build().unwrap()
    };
    assert!(
        up(&engine, &program("10.0.1.10", "s3cret"))
            .await
            .is_success()
    );
    let preview = engine
        .preview(&program("10.0.1.11", "0ther"))
        .await
        .unwrap()
        .render();
    let expected = "        ~ content:
            @@ -3,3 +3,3 @@
             scrape_configs:
               - targets:
            -      - 10.0.1.10:9100
            +      - 10.0.1.11:9100
";
    assert!(preview.contains(expected), "{preview}");
    assert!(
        preview.contains("~ content: [secret] => [secret]"),
        "{preview}"
    );
    assert!(
        !preview.contains("s3cret") && !preview.contains("0ther"),
        "{preview}"
    );
}

#[tokio::test]
async fn a_folder_is_replaced_as_one_and_a_file_added_by_hand_is_drift() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let path = dir.path().join("rendered");
    let program = |version: &str| {
        let mut s = Stack::new(stack("folders"));
        s.resource::<Folder>(
            "config",
            FolderArgs {
                path: path.display().to_string().into(),
                files: BTreeMap::from([
                    (
                        "prometheus/prometheus.yml".to_owned(),
                        format!("v: {version}\n"),
                    ),
                    ("alertmanager.yml".to_owned(), format!("v: {version}\n")),
                ])
                .into(),
                ..Default::default()
            },
        );
        s.build().unwrap()
    };
    let created = engine.preview(&program("1")).await.unwrap().render();
    assert!(
        created.contains("        files:\n          + alertmanager.yml (1 line)\n          + prometheus/prometheus.yml (1 line)\n"),
        "a new folder lists its files: {created}"
    );
    assert!(up(&engine, &program("1")).await.is_success());
    assert_eq!(
        std::fs::read_to_string(path.join("prometheus/prometheus.yml")).unwrap(),
        "v: 1\n"
    );
    let changed = engine.preview(&program("2")).await.unwrap().render();
    assert!(
        changed.contains("        ~ files:\n          ~ alertmanager.yml:\n            @@ -1 +1 @@\n            -v: 1\n            +v: 2\n          ~ prometheus/prometheus.yml:\n"),
        "each changed file is a line diff: {changed}"
    );
    assert!(up(&engine, &program("2")).await.is_success());
    assert_eq!(
        std::fs::read_to_string(path.join("alertmanager.yml")).unwrap(),
        "v: 2\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rendered") && n != "rendered")
        .collect();
    assert!(
        leftovers.is_empty(),
        "no staging folder is left: {leftovers:?}"
    );

    std::fs::write(path.join("stray.yml"), "hand-made\n").unwrap();
    let report = engine.refresh(&stack("folders"), 4).await.unwrap();
    assert!(
        matches!(drift_of(&report, "config"), Some(Drift::Changed { .. })),
        "{report:?}"
    );
    assert_eq!(up(&engine, &program("2")).await.counts.update, 1);
    assert!(
        !path.join("stray.yml").exists(),
        "apply puts back exactly the set"
    );

    let empty = Program::empty(&stack("folders")).unwrap();
    assert!(up(&engine, &empty).await.is_success());
    assert!(!path.exists());

    let mut s = Stack::new(stack("folders"));
    s.resource::<Folder>(
        "escape",
        FolderArgs {
            path: path.display().to_string().into(),
            files: BTreeMap::from([("../outside".to_owned(), String::new())]).into(),
            mode: Some("0999".to_owned()).into(),
        },
    );
    let err = engine
        .preview(&s.build().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`files`: `../outside` is not a path inside the folder (relative, no `..`)")
            && err.contains("`mode`: `0999` is not an octal mode"),
        "{err}"
    );
}

/// A service that runs but fails its probe is drift on the probe, and the next apply
/// restarts it (the old process stopped, a new one ready).
#[tokio::test]
async fn a_running_service_that_is_not_ready_is_drift_and_apply_restarts_it() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let port = free_port();
    std::fs::write(dir.path().join("ready.txt"), "ok").unwrap();
    let probe = format!("http://127.0.0.1:{port}/ready.txt");
    let program = {
        let mut s = Stack::new(stack("unready"));
        s.resource::<Service>(
            "web",
            ServiceArgs {
                ready_http: Some(probe.clone()).into(),
                ..web(&dir, port)
            },
        );
        s.build().unwrap()
    };
    assert!(up(&engine, &program).await.is_success());
    let first = pid_of(
        &engine.state(&stack("unready")).await.unwrap().unwrap(),
        "web",
    );

    std::fs::remove_file(dir.path().join("ready.txt")).unwrap();
    let report = engine.refresh(&stack("unready"), 4).await.unwrap();
    let shown: Vec<String> = report.drift.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [format!(
            "~ web (local:Service): changed outside the program; apply restores it\n    ready_http: \"{probe}\" => \"not ready: answers 404\""
        )]
    );

    std::fs::write(dir.path().join("ready.txt"), "ok").unwrap();
    let summary = up(&engine, &program).await;
    assert_eq!(summary.counts.replace, 1, "{summary:?}");
    let second = pid_of(
        &engine.state(&stack("unready")).await.unwrap().unwrap(),
        "web",
    );
    assert!(second != first && running(second) && !running(first));
    let empty = Program::empty(&stack("unready")).unwrap();
    assert!(up(&engine, &empty).await.is_success());
    assert!(!running(second));
}

#[tokio::test]
async fn a_trigger_restarts_a_service_and_a_missing_program_is_refused_at_preview() {
    let dir = TempDir::new().unwrap();
    let engine = engine(&dir);
    let port = free_port();
    let program = |trigger: &str, setting: &str| {
        let mut s = Stack::new(stack("triggers"));
        s.resource::<Service>(
            "web",
            ServiceArgs {
                triggers: vec![trigger].into(),
                port_setting: Some(setting.to_owned()).into(),
                ..web(&dir, port)
            },
        );
        s.build().unwrap()
    };
    assert!(
        up(&engine, &program("config v1", "ports.web"))
            .await
            .is_success()
    );
    let first = pid_of(
        &engine.state(&stack("triggers")).await.unwrap().unwrap(),
        "web",
    );

    // Where the port is set only names it in errors: no restart.
    let renamed = up(&engine, &program("config v1", "ports.web in web.toml")).await;
    assert_eq!(renamed.counts.update, 1);
    assert_eq!(
        pid_of(
            &engine.state(&stack("triggers")).await.unwrap().unwrap(),
            "web"
        ),
        first
    );
    // A changed trigger (the digest of a file it reads) restarts it.
    let changed = up(&engine, &program("config v2", "ports.web in web.toml")).await;
    assert_eq!(changed.counts.replace, 1);
    let second = pid_of(
        &engine.state(&stack("triggers")).await.unwrap().unwrap(),
        "web",
    );
    assert!(second != first && running(second) && !running(first));

    let missing = {
        let mut s = Stack::new(stack("triggers"));
        s.resource::<Service>(
            "web",
            ServiceArgs {
                program: "no-such-program-anywhere".into(),
                ..web(&dir, port)
            },
        );
        s.build().unwrap()
    };
    let refused = engine.preview(&missing).await.unwrap_err().to_string();
    assert!(
        refused.contains("program")
            && refused.contains("`no-such-program-anywhere` is not on PATH"),
        "{refused}"
    );
    assert!(
        up(&engine, &Program::empty(&stack("triggers")).unwrap())
            .await
            .is_success()
    );
    assert!(!running(second));
}
