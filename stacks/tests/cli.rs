//! The `stacks` CLI driven as a user would, against the AWS emulator (scripts/test.sh starts
//! it; by hand: `eval "$(scripts/moto.sh start)"`). Each test uses its own environment name,
//! since the emulator keeps what earlier runs created.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

struct Env {
    name: String,
    dir: TempDir,
    state: TempDir,
    rendered: TempDir,
}

fn dev_toml() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/dev.toml")).unwrap()
}

impl Env {
    /// A copy of `envs/dev.toml` under a fresh environment name, edited by `edit`.
    fn new(prefix: &str, edit: impl FnOnce(String) -> String) -> Self {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "the CLI tests need the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first"
        );
        let name = format!("{prefix}{:06x}", rand_suffix());
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join(format!("{name}.toml")), edit(dev_toml())).unwrap();
        Env {
            name,
            dir,
            state: TempDir::new().unwrap(),
            rendered: TempDir::new().unwrap(),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join(format!("{}.toml", self.name))
    }

    fn rendered(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.rendered.path().join(&self.name).join(file)).ok()
    }

    fn edit(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.file()).unwrap();
        std::fs::write(self.file(), edit(text)).unwrap();
    }

    fn run(&self, verb: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.run_with(verb, extra, &[])
    }

    /// `run` with the variables `env` added (`verb` may be two words: `state export`).
    fn run_with(
        &self,
        verb: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> assert_cmd::assert::Assert {
        Command::cargo_bin("stacks")
            .unwrap()
            .args(verb.split(' '))
            .arg(&self.name)
            .args(extra)
            .env("STACKS_ENV_DIR", self.dir.path())
            .env("IAC_STATE_DIR", self.state.path())
            .env("STACKS_RENDER_DIR", self.rendered.path())
            .envs(env.iter().copied())
            .write_stdin("")
            .assert()
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(16)) & 0xff_ffff
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn summary_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("Stack "))
        .map(|l| l.split(" in ").next().unwrap_or(l).to_owned())
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"))
}

/// `envs/prod.toml` edited for the emulator: an image of its own named like prod's (the
/// emulator has no Debian image), the services' build left out and their folder fixed.
fn prod_on_the_emulator(_: String) -> String {
    let prod =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/prod.toml"))
            .unwrap();
    boto3(
        "ec2.register_image(Name='debian-12-amd64-20261201-0000', RootDeviceName='/dev/xvda', VirtualizationType='hvm')",
    );
    prod.replace(
        r#"owners = ["136693071363"]"#,
        r#"owners = ["123456789012"]"#,
    )
    .replace("architecture = \"x86_64\"\n", "")
    .replace(
        "build = \"cargo build --release --quiet -p services --bins\"",
        "bin_dir = \"/opt/kafka-platform/bin\"",
    )
}

#[test]
fn a_prod_preview_shows_the_deployment_steps_and_what_re_runs_them() {
    let env = Env::new("prod", prod_on_the_emulator);
    let passphrase = [("IAC_PASSPHRASE", "a passphrase for the test")];
    let preview = env.run_with("preview", &[], &passphrase).success();
    let out = stdout(&preview)
        .replace(env.rendered.path().to_str().unwrap(), "[rendered]")
        .replace(env.dir.path().to_str().unwrap(), "[envs]")
        .replace(env.name.as_str(), "[env]");
    let steps = &out[out
        .find(" +  local:Command")
        .unwrap_or_else(|| panic!("no deployment step:\n{out}"))..];
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("preview_prod_deployment", steps);
    });
    // --skip-deploy plans everything else.
    let skipped = stdout(
        &env.run_with("preview", &["--skip-deploy"], &passphrase)
            .success(),
    );
    assert!(!skipped.contains("local:Command"), "{skipped}");
    assert!(
        skipped.contains("Targeted: every resource but `deploy-broker-1`, `deploy-broker-2`, `deploy-broker-3`, `deploy-connect`, `deploy-controller-1`, `deploy-controller-2`, `deploy-controller-3`, `deploy-kafka`, `deploy-nodes`, `deploy-platform` with what they need; 10 other resources not targeted"),
        "{skipped}"
    );
}

#[test]
fn preview_apply_reapply_scale_out_and_destroy() {
    let env = Env::new("cli", |t| t);
    let preview = env.run("preview", &["--detailed-exitcode"]).code(2);
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("preview_dev", stdout(&preview).replace(env.rendered.path().to_str().unwrap(), "[rendered]").replace(env.dir.path().to_str().unwrap(), "[envs]").replace(env.name.as_str(), "[env]"));
    });

    // Without --yes and without a terminal to ask on, nothing is guessed.
    let unconfirmed = env.run("apply", &[]).code(1);
    assert!(
        stderr(&unconfirmed).contains("standard input is not a terminal: pass --yes"),
        "{}",
        stderr(&unconfirmed)
    );
    assert!(!stdout(&unconfirmed).contains("creating"));

    let apply = env.run("apply", &["--yes"]).success();
    let out = stdout(&apply);
    let stack = &env.name;
    assert_eq!(
        summary_line(&out),
        format!(
            "Stack {stack}: 40 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 0 skipped"
        )
    );
    assert!(
        out.contains(&format!("\"name\":\"{stack}-controller-1\"")),
        "{out}"
    );
    // Every node's fixed address is in the rendered files, straight from the applied stack.
    let hosts = env
        .rendered("hosts/hosts")
        .expect("apply renders the host entries");
    for ip in [
        "10.0.1.10",
        "10.0.2.10",
        "10.0.3.10",
        "10.0.1.20",
        "10.0.2.20",
        "10.0.3.20",
        "10.0.1.30",
        "10.0.1.40",
    ] {
        assert!(hosts.contains(ip), "{ip} missing from\n{hosts}");
    }
    assert!(
        env.rendered("prometheus/prometheus.yml")
            .unwrap()
            .contains(&format!("node: {stack}-broker-3"))
    );

    let again = env.run("apply", &["--yes"]).success();
    assert_eq!(
        summary_line(&stdout(&again)),
        format!(
            "Stack {stack}: 0 created, 0 updated, 0 replaced, 0 deleted, 40 unchanged, 0 failed, 0 skipped"
        )
    );
    env.run("preview", &["--detailed-exitcode"]).code(0);

    // One more broker: created in the next zone round-robin; the configuration follows it,
    // nothing else is touched.
    env.edit(|t| t.replacen("[nodes.broker]\ncount = 3", "[nodes.broker]\ncount = 4", 1));
    let plan = env
        .run("preview", &["--detailed-exitcode", "--json"])
        .code(2);
    let record: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let changing: Vec<&str> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] != "same" && s["op"] != "read")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(changing, ["broker-4", "config"]);
    // The preview shows the configuration lines that follow the new broker, every one known
    // before its instance exists: its fixed address, the DNS name AWS gives that address.
    let preview = stdout(&env.run("preview", &[]).success());
    for line in [
        "        ~ files:\n",
        "          ~ prometheus/prometheus.yml:\n",
        "            +      - targets: [\"10.0.1.21:9999\"]\n",
        &format!("            +          node: {stack}-broker-4\n"),
        "          ~ ansible/hosts.yml:\n",
        "            +    ip-10-0-1-21.eu-central-1.compute.internal:\n",
        "            +      ansible_host: \"10.0.1.21\"\n",
        "            +      private_ip: \"10.0.1.21\"\n",
    ] {
        assert!(preview.contains(line), "{line:?} missing from\n{preview}");
    }
    let scale = env.run("apply", &["--yes"]).success();
    assert_eq!(
        summary_line(&stdout(&scale)),
        format!(
            "Stack {stack}: 1 created, 1 updated, 0 replaced, 0 deleted, 39 unchanged, 0 failed, 0 skipped"
        )
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&stdout(&env.run("outputs", &["--json"]).success())).unwrap();
    let nodes = outputs["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 9);
    let broker4 = nodes
        .iter()
        .find(|n| n["name"] == format!("{stack}-broker-4"))
        .unwrap();
    assert_eq!(
        (broker4["zone"].as_str(), broker4["private_ip"].as_str()),
        (Some("eu-central-1a"), Some("10.0.1.21"))
    );

    let inventory = env.rendered("ansible/hosts.yml").unwrap();
    assert!(
        inventory.contains(&format!("kafka_platform_name: {stack}-broker-4")),
        "apply re-renders after a change"
    );
    std::fs::remove_dir_all(env.rendered.path().join(stack)).unwrap();
    env.run("render", &[]).success();
    assert_eq!(
        env.rendered("ansible/hosts.yml").as_deref(),
        Some(inventory.as_str()),
        "render writes the same files"
    );
    // The folder cannot be written (a file is in the way): a failure, 3, not the user's 1.
    let blocked = env.state.path().join("not-a-folder");
    std::fs::write(&blocked, "").unwrap();
    let unwritable = Command::cargo_bin("stacks")
        .unwrap()
        .args(["render", stack])
        .env("STACKS_ENV_DIR", env.dir.path())
        .env("IAC_STATE_DIR", env.state.path())
        .env("STACKS_RENDER_DIR", &blocked)
        .assert()
        .code(3);
    assert!(
        stderr(&unwritable).contains("not-a-folder"),
        "{}",
        stderr(&unwritable)
    );

    // A destroy that cannot reach AWS fails, and the outputs of what still exists stay;
    // the configuration folder goes first (it depends on the nodes), and `render` writes it
    // again from what the stack still has.
    let unreachable = Command::cargo_bin("stacks")
        .unwrap()
        .args(["destroy", stack, "--yes"])
        .env("STACKS_ENV_DIR", env.dir.path())
        .env("IAC_STATE_DIR", env.state.path())
        .env("STACKS_RENDER_DIR", env.rendered.path())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .assert()
        .code(3);
    assert!(
        stdout(&unreachable).contains(" 1 deleted, "),
        "{}",
        stdout(&unreachable)
    );
    let kept: serde_json::Value =
        serde_json::from_str(&stdout(&env.run("outputs", &["--json"]).success())).unwrap();
    assert_eq!(kept, outputs, "a failed destroy keeps the outputs");
    env.run("render", &[]).success();
    assert_eq!(
        env.rendered("ansible/hosts.yml").as_deref(),
        Some(inventory.as_str())
    );

    let destroy = env.run("destroy", &["--yes"]).success();
    assert!(
        env.rendered("hosts/hosts").is_none(),
        "no rendered file outlives the stack"
    );
    assert!(
        summary_line(&stdout(&destroy)).contains(" 40 deleted, 0 unchanged, 0 failed, 0 skipped"),
        "{}",
        stdout(&destroy)
    );
    let plan = env.run("preview", &["--json"]).success();
    let record: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    assert_eq!(
        record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["op"] == "create")
            .count(),
        41
    );
}

#[test]
fn a_saved_plan_is_applied_exactly() {
    let env = Env::new("plan", |t| t);
    let plan_file = env.state.path().join("dev.plan.json");
    env.run("preview", &["--plan-out", plan_file.to_str().unwrap()])
        .success();
    // The environment changes after the plan was saved: the saved plan is refused.
    env.edit(|t| {
        t.replacen(
            "count = 3\ninstance_type = \"t3.large\"\n\n[nodes.connect]",
            "count = 4\ninstance_type = \"t3.large\"\n\n[nodes.connect]",
            1,
        )
    });
    let refused = env
        .run("apply", &["--yes", "--plan", plan_file.to_str().unwrap()])
        .code(1);
    assert!(
        stderr(&refused).contains("the program no longer matches the saved plan"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("`broker-4`: the program now would create it"),
        "{}",
        stderr(&refused)
    );
    env.edit(|t| {
        t.replacen(
            "count = 4\ninstance_type = \"t3.large\"\n\n[nodes.connect]",
            "count = 3\ninstance_type = \"t3.large\"\n\n[nodes.connect]",
            1,
        )
    });
    let applied = env
        .run("apply", &["--yes", "--plan", plan_file.to_str().unwrap()])
        .success();
    assert!(
        summary_line(&stdout(&applied)).contains("40 created"),
        "{}",
        stdout(&applied)
    );
    env.run("destroy", &["--yes"]).success();
}

#[test]
fn policy_refusals_exit_1_name_the_file_and_fields_and_create_nothing() {
    let env = Env::new("policy", |t| {
        t.replace(
            "[nodes.broker]\ncount = 3\ninstance_type = \"t3.large\"",
            "[nodes.broker]\ncount = 2\ninstance_type = \"t3.medium\"",
        )
        .replace(
            "[nodes.controller]\ncount = 3",
            "[nodes.controller]\ncount = 2",
        )
        .replace(
            "operator_cidr = \"203.0.113.10/32\"",
            "operator_cidr = \"0.0.0.0/0\"",
        )
        .replace("min_insync_replicas = 2", "min_insync_replicas = 3")
            + "\n[ports]\njmx = 9999\n"
    });
    for (verb, args) in [("preview", &[][..]), ("apply", &["--yes"][..])] {
        let refused = env.run(verb, args).code(1);
        let err = stderr(&refused);
        assert!(
            err.starts_with(&format!(
                "error: {}: refused by policy:",
                env.file().display()
            )),
            "{err}"
        );
        for field in [
            "`nodes.broker.instance_type`: t3.medium has 4 GiB",
            "`nodes.controller.count`: 2 controllers",
            "`ports.jmx`: the native JMX port 9999 is also `ports.jmx_exporter_broker`",
            "`kafka.replication_factor`: 3 replicas cannot be placed on 2 broker(s)",
            "`kafka.min_insync_replicas`: 3 with replication factor 3",
            "`network.operator_cidr`: 0.0.0.0/0 opens SSH",
        ] {
            assert!(err.contains(field), "missing {field} in\n{err}");
        }
    }
    assert_eq!(
        std::fs::read_dir(env.state.path()).unwrap().count(),
        0,
        "nothing may be recorded"
    );
}

#[test]
fn user_mistakes_are_clear_errors_with_exit_1() {
    let env = Env::new("oops", |t| t);
    let no_yes = env.run("apply", &[]).code(1);
    assert!(
        stderr(&no_yes).contains("standard input is not a terminal: pass --yes"),
        "{}",
        stderr(&no_yes)
    );

    let early = env.run("render", &[]).code(1);
    assert_eq!(
        stderr(&early).trim(),
        format!(
            "error: stack `{}` has no `nodes` output: apply it first",
            env.name
        )
    );

    let unknown = Command::cargo_bin("stacks")
        .unwrap()
        .args(["preview", "staging"])
        .env("STACKS_ENV_DIR", env.dir.path())
        .assert()
        .code(1);
    let expected = format!(
        "error: unknown environment `staging`: there is no {} (environments: {})",
        env.dir.path().join("staging.toml").display(),
        env.name
    );
    assert_eq!(stderr(&unknown).trim(), expected);

    env.edit(|t| t.replace("vpc_cidr =", "vpc_cdr ="));
    let malformed = env.run("preview", &[]).code(1);
    let err = stderr(&malformed);
    assert!(
        err.contains(&env.file().display().to_string()) && err.contains("unknown field `vpc_cdr`"),
        "{err}"
    );
}

#[test]
fn the_standard_aws_variables_win_over_the_file() {
    // The file points at a closed port; AWS_ENDPOINT_URL (the emulator) wins.
    let env = Env::new("override", |t| {
        t.replace("http://127.0.0.1:5127", "http://127.0.0.1:1")
    });
    let preview = env.run("preview", &[]).success();
    assert!(
        stdout(&preview).contains("Resources: 40 to create, 1 to read"),
        "{}",
        stdout(&preview)
    );
}

/// Every exit code docs/cli.md documents, each from the path that produces it (0 and 2 are
/// covered by the apply and preview tests above).
#[test]
fn each_failure_exits_with_its_documented_code() {
    let env = Env::new("codes", |t| t);
    let stacks = || {
        let mut command = Command::cargo_bin("stacks").unwrap();
        command.env("STACKS_ENV_DIR", env.dir.path());
        command
    };

    // Arguments: 1, not clap's 2 (2 means "changes"); help is an answer, 0.
    let missing = stacks().arg("preview").assert().code(1);
    assert!(stderr(&missing).contains("<ENV>"), "{}", stderr(&missing));
    stacks()
        .args(["preview", &env.name, "--parallel", "many"])
        .assert()
        .code(1);
    stacks().arg("--help").assert().code(0);
    let zero = stacks()
        .args(["preview", &env.name, "--parallel", "0"])
        .assert()
        .code(1);
    assert!(stderr(&zero).contains("--parallel"), "{}", stderr(&zero));

    // An empty endpoint is a mistake to fix, said plainly (it used to panic).
    let empty = stacks()
        .args(["preview", &env.name])
        .env("AWS_ENDPOINT_URL", "")
        .assert()
        .code(1);
    assert_eq!(
        stderr(&empty).trim(),
        "error: cannot reach AWS: InvalidConfiguration: AWS_ENDPOINT_URL is set but empty: unset it to use AWS, or set the endpoint's URL"
    );

    // AWS unreachable while planning: a provider failure, 3.
    let down = stacks()
        .args(["preview", &env.name])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("IAC_STATE_DIR", env.state.path())
        .assert()
        .code(3);
    let err = stderr(&down);
    assert!(
        err.contains("resource `ami`: provider read failed: DescribeImages: dispatch failure")
            && err.contains("Connection refused")
            && !err.contains("DispatchFailure {"),
        "{err}"
    );

    // Another run holds the lock: 1, with the CLI's hint.
    std::fs::create_dir_all(env.state.path()).unwrap();
    let lock = env.state.path().join(format!("{}.lock", env.name));
    std::fs::write(
        &lock,
        r#"{"pid": 4242, "host": "elsewhere", "operation": "apply", "since": "2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let locked = env.run("refresh", &[]).code(1);
    assert!(
        stderr(&locked).contains("is locked by pid 4242 on host elsewhere")
            && stderr(&locked).contains("(stacks: --lock-timeout waits for it; --force-unlock"),
        "{}",
        stderr(&locked)
    );
    let broken = env.run("refresh", &["--force-unlock"]).success();
    assert!(
        stderr(&broken).contains("broke the lock of stack")
            && stderr(&broken).contains("held by pid 4242 on elsewhere"),
        "{}",
        stderr(&broken)
    );
    // Left on this host by a run that is gone (no process holds the file's lock): taken
    // over, with one line saying so.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(
        &lock,
        format!(
            r#"{{"pid": 4243, "host": "{}", "operation": "apply", "since": "2026-01-01T00:00:00Z"}}"#,
            host.trim()
        ),
    )
    .unwrap();
    let taken = env.run("refresh", &[]).success();
    assert!(
        stderr(&taken).contains("took over the lock of stack")
            && stderr(&taken)
                .contains("left by pid 4243 (apply, since 2026-01-01T00:00:00Z): that run is gone"),
        "{}",
        stderr(&taken)
    );
    // Held by a live process on this host (this test): never broken; waited for.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock)
        .unwrap();
    held.lock().unwrap();
    std::fs::write(
        &lock,
        format!(
            r#"{{"pid": {}, "host": "{}", "operation": "apply", "since": "2026-01-01T00:00:00Z"}}"#,
            std::process::id(),
            host.trim()
        ),
    )
    .unwrap();
    let alive = env.run("refresh", &["--force-unlock"]).code(1);
    assert!(
        stderr(&alive).contains("which is still running: wait for it to finish, or stop it"),
        "{}",
        stderr(&alive)
    );
    let started = std::time::Instant::now();
    env.run("refresh", &["--lock-timeout", "1s"]).code(1);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    drop(held);
    env.run("refresh", &["--lock-timeout", "1s"]).success();

    // Damaged state: a state failure, 3.
    std::fs::write(
        env.state.path().join(format!("{}.json", env.name)),
        "{not json",
    )
    .unwrap();
    let damaged = env.run("outputs", &[]).code(3);
    assert!(
        stderr(&damaged).contains("is damaged"),
        "{}",
        stderr(&damaged)
    );
}

/// The state folder fills up mid-apply (a file-size limit, which fails writes as a full disk
/// does): the apply fails cleanly with exit 3, and once there is room again the next runs
/// read the state, resolve what was in flight and finish, creating nothing twice.
#[test]
fn a_full_disk_fails_the_apply_cleanly_and_the_next_run_recovers() {
    let env = Env::new("full", |t| t);
    let stacks = assert_cmd::cargo::cargo_bin("stacks");
    // 24 KiB: the first snapshot fits, the journal outgrows it part-way through the apply.
    let limited = std::process::Command::new("bash")
        .args([
            "-c",
            "ulimit -f 24; trap '' XFSZ; exec \"$0\" apply \"$1\" --yes",
        ])
        .arg(&stacks)
        .arg(&env.name)
        .env("STACKS_ENV_DIR", env.dir.path())
        .env("IAC_STATE_DIR", env.state.path())
        .env("STACKS_RENDER_DIR", env.rendered.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(3), "{said}");
    assert!(said.contains("File too large"), "{said}");

    env.run("refresh", &[]).success();
    env.run("refresh", &[]).success();
    let apply = env.run("apply", &["--yes"]).success();
    assert!(
        summary_line(&stdout(&apply)).contains(" 0 failed, 0 skipped"),
        "{}",
        stdout(&apply)
    );
    env.run("preview", &["--detailed-exitcode"]).code(0);
    let destroy = env.run("destroy", &["--yes"]).success();
    assert!(
        summary_line(&stdout(&destroy)).contains(" 0 failed, 0 skipped"),
        "{}",
        stdout(&destroy)
    );
}

/// Runs `code` with boto3 from the project's virtualenv against the emulator (`ec2` bound):
/// the test's own way to change AWS behind the CLI's back.
fn boto3(code: &str) {
    boto3_out(code);
}

/// An apply whose steps fail (a key pair of that name exists already, made outside the stack)
/// exits 3, names the failure and what it held back, and destroys cleanly afterwards.
#[test]
fn an_apply_with_failed_steps_exits_3_and_names_them() {
    let env = Env::new("failing", |t| t);
    let key = format!("{}-operator", env.name);
    let public_key = dev_toml()
        .lines()
        .find_map(|l| l.strip_prefix("public_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    boto3(&format!(
        "ec2.import_key_pair(KeyName='{key}', PublicKeyMaterial=b'{public_key}')"
    ));
    let failed = env.run("apply", &["--yes"]).code(3);
    let out = stdout(&failed);
    assert!(out.contains("  failed  key: "), "{out}");
    assert!(
        out.contains(&format!(
            "InvalidKeyPair.Duplicate: ImportKeyPair: The keypair '{key}' already exists.: it was not made by stack `{}` (it lacks the `iac:stack` tag of this stack): remove it (`aws ec2 delete-key-pair --key-name {key}`), or give this resource another name",
            env.name
        )),
        "{out}"
    );
    assert!(out.contains("  skipped controller-1 (needs key)"), "{out}");
    assert!(summary_line(&out).contains(" 1 failed, 9 skipped"), "{out}");
    env.run("destroy", &["--yes"]).success();
    boto3(&format!("ec2.delete_key_pair(KeyName='{key}')"));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_sasl_ssl_platform_keeps_every_generated_secret_in_its_0600_files_only() {
    use std::os::unix::fs::PermissionsExt;

    let credentials = TempDir::new().unwrap();
    let dir = credentials.path().join("secrets");
    let env = Env::new("sec", |t| {
        format!(
            "{t}\n[security]\nprotocol = \"sasl_ssl\"\ncredentials_dir = \"{}\"\n",
            dir.display()
        )
    });
    let run = |verb: &str, extra: &[&str]| {
        let assert = env
            .run_with(
                verb,
                extra,
                &[("IAC_PASSPHRASE", "a passphrase for the test")],
            )
            .success();
        format!("{}{}", stdout(&assert), stderr(&assert))
    };
    let plan = env.state.path().join("sec.plan.json");
    let mut printed = vec![
        run("preview", &["--plan-out", plan.to_str().unwrap()]),
        run("preview", &["--json"]),
    ];
    let applied = run("apply", &["--yes"]);
    assert!(
        applied.contains("Keys and passwords (mode 0600; never commit them) in"),
        "{applied}"
    );
    printed.push(applied);
    printed.push(run("apply", &["--yes", "--json"]));
    let outputs = run("outputs", &["--json"]);
    assert!(
        outputs.contains("\"grafana_admin_password\": \"[secret]\""),
        "{outputs}"
    );
    printed.push(outputs);
    printed.push(run("refresh", &[]));
    // Revealed only when asked for: the password Grafana's provisioning gets.
    let revealed: serde_json::Value =
        serde_json::from_str(&run("outputs", &["--json", "--show-secrets"])).unwrap();

    // The files: each mode 0600; the secrets are what they hold.
    let files = files_under(&dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "ca.crt",
        "secrets.yml",
        "connect-secrets.properties",
        "kafka-admin-api.password",
        "http-source-connector.password",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let prefix = format!("{}-", env.name);
    let keys: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "key"))
        .collect();
    assert_eq!(
        keys.len(),
        7,
        "a key per controller, broker and Connect node"
    );
    let mut secrets: Vec<String> = Vec::new();
    for file in &files {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        if file.extension().is_some_and(|e| e == "key") {
            // The key's base64 body, a line at a time (what a leak would contain).
            secrets.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .map(str::to_owned),
            );
        }
        if file.extension().is_some_and(|e| e == "password") {
            secrets.push(text.trim().to_owned());
        }
    }
    let yaml = std::fs::read_to_string(dir.join("secrets.yml")).unwrap();
    assert!(
        yaml.contains(&format!(
            "grafana_admin_password: {}\n",
            revealed["grafana_admin_password"]
        )),
        "{revealed}"
    );
    for line in yaml.lines().filter(|l| l.contains("password")) {
        if let Some((_, value)) = line.split_once(": ") {
            secrets.push(value.trim_matches('"').to_owned());
        }
    }
    assert!(secrets.len() >= 7 * 3 + 5, "{} secrets", secrets.len());
    assert!(secrets.iter().all(|s| s.len() >= 16), "{secrets:?}");

    // Nowhere else: state, journal, saved plan, rendered files, anything printed.
    let mut elsewhere: Vec<(String, String)> = files_under(env.state.path())
        .into_iter()
        .chain(files_under(env.rendered.path()))
        .map(|f| {
            (
                f.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned(),
            )
        })
        .collect();
    assert!(elsewhere.iter().any(|(f, _)| f.ends_with("sec.plan.json")));
    elsewhere.extend(printed.into_iter().map(|p| ("printed".to_owned(), p)));
    for (place, text) in &elsewhere {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret is in {place}");
        }
    }

    // Each node's certificate is signed by the CA and names the address clients use.
    let inventory = env.rendered("ansible/hosts.yml").unwrap();
    assert!(inventory.contains(&format!(
        "ssl_key_filepath: \"{}/{prefix}broker-1.key\"",
        dir.display()
    )));
    let cert = dir.join(format!("{prefix}broker-1.crt"));
    let verified = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("ca.crt"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let shown = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&shown.stdout).into_owned();
    let hosts = env.rendered("hosts/hosts").unwrap();
    let line = hosts
        .lines()
        .find(|l| l.ends_with(&format!(" {prefix}broker-1")))
        .unwrap();
    let mut fields = line.split_whitespace();
    let (ip, dns) = (fields.next().unwrap(), fields.next().unwrap());
    assert!(
        sans.contains(&format!("DNS:{dns}")) && sans.contains(&format!("IP Address:{ip}")),
        "{sans} for {line}"
    );

    run("destroy", &["--yes"]);
    assert!(!dir.exists(), "destroy removes the credentials");
}

/// An S3 client of the test's own, for the emulator's S3.
fn s3() -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(iac_state_s3::testing::client(None));
    (runtime, client)
}

/// The keys under `prefix` in `bucket`.
fn s3_keys(
    (runtime, s3): &(tokio::runtime::Runtime, aws_sdk_s3::Client),
    bucket: &str,
    prefix: &str,
) -> Vec<String> {
    let listed = runtime
        .block_on(s3.list_objects_v2().bucket(bucket).prefix(prefix).send())
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[test]
fn state_in_a_bucket_is_locked_shared_and_moved_between_backends() {
    let env = Env::new("s3", |t| t);
    let stack = env.name.clone();
    let bucket = format!("{stack}-state");
    let url = format!("s3://{bucket}/teams/kafka");
    let backend = [("IAC_BACKEND", url.as_str())];

    let missing = env.run_with("preview", &[], &backend).code(1);
    assert!(
        stderr(&missing).contains(&format!(
            "the bucket `{bucket}` does not exist: create it (`aws s3 mb s3://{bucket}`)"
        )),
        "{}",
        stderr(&missing)
    );
    let client = s3();
    client
        .0
        .block_on(iac_state_s3::testing::create_bucket(&client.1, &bucket))
        .unwrap();

    // One engineer applies; a second, at the same time, is refused naming the first; a
    // third waits for the lock and finds nothing left to do.
    let first = std::process::Command::new(assert_cmd::cargo::cargo_bin("stacks"))
        .args(["apply", &stack, "--yes"])
        .env("STACKS_ENV_DIR", env.dir.path())
        .env("STACKS_RENDER_DIR", env.rendered.path())
        .env("IAC_BACKEND", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = format!("teams/kafka/{stack}/lock.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !s3_keys(&client, &bucket, &lock).contains(&lock) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first apply never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let refused = env.run_with("apply", &["--yes"], &backend).code(1);
    assert!(
        stderr(&refused).contains(&format!(
            "stack `{stack}` is locked by pid {} on host",
            first.id()
        )),
        "{}",
        stderr(&refused)
    );
    let waited = env
        .run_with("apply", &["--yes", "--lock-timeout", "3m"], &backend)
        .success();
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        summary_line(&String::from_utf8_lossy(&first.stdout)),
        format!(
            "Stack {stack}: 40 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 0 skipped"
        )
    );
    assert_eq!(
        summary_line(&stdout(&waited)),
        format!(
            "Stack {stack}: 0 created, 0 updated, 0 replaced, 0 deleted, 40 unchanged, 0 failed, 0 skipped"
        )
    );
    // What is left in the bucket: the snapshot, no journal, no lock.
    assert_eq!(
        s3_keys(&client, &bucket, "teams/kafka/"),
        [format!("teams/kafka/{stack}/state.json")]
    );

    // Moved to the file backend: the same stack, nothing to change.
    let exported = env.run_with("state export", &[], &backend).success();
    let file = env.state.path().join("exported.json");
    std::fs::write(&file, &exported.get_output().stdout).unwrap();
    let imported = env.run("state import", &[file.to_str().unwrap()]).success();
    assert!(
        stderr(&imported).contains(&format!("imported stack `{stack}` (41 resources")),
        "{}",
        stderr(&imported)
    );
    env.run("preview", &["--detailed-exitcode"]).code(0);
    let again = env.run("state import", &[file.to_str().unwrap()]).code(1);
    assert!(
        stderr(&again).contains("has state here already"),
        "{}",
        stderr(&again)
    );

    let destroyed = env.run_with("destroy", &["--yes"], &backend).success();
    assert!(
        summary_line(&stdout(&destroyed)).contains(" 40 deleted, 0 unchanged, 0 failed"),
        "{}",
        stdout(&destroyed)
    );
}

#[test]
fn state_verbs_list_show_forget_and_rename_what_the_stack_records() {
    let env = Env::new("surgery", |t| t);
    let stack = env.name.clone();
    env.run("apply", &["--yes"]).success();

    // The listing, with the emulator's ids left out.
    let listed = stdout(&env.run("state list", &[]).success());
    let columns: Vec<String> = listed
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!("{} {} {}", fields[0], fields[1], fields[3..].join(" "))
                .trim_end()
                .to_owned()
        })
        .collect();
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("state_list_dev", columns.join("\n"));
    });
    let shown = stdout(&env.run("state show", &["vpc"]).success());
    let vpc: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(vpc["type"], "aws:ec2:Vpc");
    assert_eq!(vpc["inputs"]["cidr_block"], "10.0.0.0/16");
    assert!(vpc["id"].as_str().unwrap().starts_with("vpc-"), "{shown}");
    let missing = env.run("state show", &["nope"]).code(1);
    assert_eq!(
        stderr(&missing).trim(),
        format!("error: stack `{stack}` records no resource `nope`")
    );

    // Forgetting what others depend on is refused; a leaf is forgotten, not deleted.
    let refused = env.run("state delete", &["kafka-sg"]).code(1);
    assert!(
        stderr(&refused).contains("depend on it: forget them first, or force it"),
        "{}",
        stderr(&refused)
    );
    let forgot = env.run("state delete", &["platform-ssh"]).success();
    assert!(
        stderr(&forgot).contains("forgot `platform-ssh` (aws:ec2:SecurityGroupRule sgr-"),
        "{}",
        stderr(&forgot)
    );
    let preview = stdout(&env.run("preview", &["--detailed-exitcode"]).code(2));
    assert!(preview.contains("Resources: 1 to create"), "{preview}");

    // A rename in the state is a move: renamed away the program would replace it; renamed
    // back, nothing changes. A name already recorded is refused.
    env.run("state rename", &["platform-prometheus", "platform-prom"])
        .success();
    let moved = stdout(&env.run("preview", &["--detailed-exitcode"]).code(2));
    assert!(
        moved.contains("Resources: 2 to create, 1 to delete"),
        "{moved}"
    );
    let taken = env
        .run("state rename", &["platform-prom", "platform-grafana"])
        .code(1);
    assert!(
        stderr(&taken).contains("the stack records `platform-grafana` already"),
        "{}",
        stderr(&taken)
    );
    env.run("state rename", &["platform-prom", "platform-prometheus"])
        .success();
    let back = stdout(&env.run("preview", &["--detailed-exitcode"]).code(2));
    assert!(back.contains("Resources: 1 to create"), "{back}");

    // A replacement asked for: previewed, then applied through the normal order.
    let wrong = env.run("preview", &["--replace", "nope"]).code(1);
    assert!(
        stderr(&wrong).contains(
            "resource `nope` cannot be replaced: the program has no resource of that name"
        ),
        "{}",
        stderr(&wrong)
    );
    let asked = stdout(&env.run("preview", &["--replace", "kafka-ssh"]).success());
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(
            "preview_replace_dev",
            regex::Regex::new(r"sg-[0-9a-f]+")
                .unwrap()
                .replace_all(
                    &asked
                        .replace(env.dir.path().to_str().unwrap(), "[envs]")
                        .replace(stack.as_str(), "[env]"),
                    "sg-[id]"
                )
        );
    });
    let old_rule = stdout(&env.run("state show", &["kafka-ssh"]).success());
    let replaced = env
        .run("apply", &["--yes", "--replace", "kafka-ssh"])
        .success();
    assert_eq!(
        summary_line(&stdout(&replaced)),
        format!(
            "Stack {stack}: 1 created, 0 updated, 1 replaced, 0 deleted, 38 unchanged, 0 failed, 0 skipped"
        )
    );
    let new_rule = stdout(&env.run("state show", &["kafka-ssh"]).success());
    let id = |shown: &str| serde_json::from_str::<serde_json::Value>(shown).unwrap()["id"].clone();
    assert_ne!(id(&old_rule), id(&new_rule));

    // --refresh reads everything before planning: nothing drifted, nothing to do.
    let refreshed = stdout(
        &env.run("preview", &["--refresh", "--detailed-exitcode"])
            .code(0),
    );
    assert!(
        refreshed.contains(&format!("Refreshed stack {stack}: 0 changed")),
        "{refreshed}"
    );

    env.run("destroy", &["--yes"]).success();
}

/// [`boto3`], returning what `code` prints.
fn boto3_out(code: &str) -> String {
    let venv = std::env::var("KAFKA_PLATFORM_VENV").unwrap_or_else(|_| {
        panic!("KAFKA_PLATFORM_VENV is unset: scripts/setup.sh makes the virtualenv (run scripts/test.sh)")
    });
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .args(["-c", &format!("import boto3, os\nec2 = boto3.client('ec2', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='eu-central-1')\n{code}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3: {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the emulator holds with the stack's ownership tag, by type: an independent reader.
fn owned_by(stack: &str) -> String {
    boto3_out(&format!(
        "f = [{{'Name': 'tag:iac:stack', 'Values': ['{stack}']}}]\n\
         g = ec2.describe_security_groups(Filters=f)['SecurityGroups']\n\
         print(len(ec2.describe_vpcs(Filters=f)['Vpcs']), len(g), sum(len(x['IpPermissions']) for x in g), \
         sum(len(r['Instances']) for r in ec2.describe_instances(Filters=f + [{{'Name': 'instance-state-name', 'Values': ['pending', 'running']}}])['Reservations']))"
    ))
}

#[test]
fn targeted_runs_and_import_do_only_what_they_name() {
    let env = Env::new("target", |t| t);
    let stack = env.name.clone();
    let scrub = |text: &str| {
        regex::Regex::new(r"(vpc|sg)-[0-9a-f]+")
            .unwrap()
            .replace_all(
                &text
                    .replace(env.dir.path().to_str().unwrap(), "[envs]")
                    .replace(stack.as_str(), "[env]"),
                "$1-[id]",
            )
            .into_owned()
    };
    let preview = stdout(&env.run("preview", &["--target", "platform-ssh"]).success());
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("preview_target_dev", scrub(&preview));
    });
    let applied = env
        .run("apply", &["--yes", "--target", "platform-ssh"])
        .success();
    assert_eq!(
        summary_line(&stdout(&applied)),
        format!(
            "Stack {stack}: 3 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 0 skipped, 37 not targeted"
        )
    );
    // VPCs, groups, their ingress rules, running instances.
    assert_eq!(owned_by(&stack), "1 1 1 0");

    let refreshed = stdout(&env.run("refresh", &["--target", "platform-sg"]).success());
    assert_eq!(
        refreshed.trim(),
        format!("Refreshed stack {stack}: 0 changed, 2 unchanged, 0 unreadable, 1 not targeted")
    );
    let misnamed = env.run("refresh", &["--target", "nope"]).code(1);
    assert_eq!(
        stderr(&misnamed).trim(),
        format!("error: stack `{stack}` records no resource `nope`")
    );

    // A targeted destroy takes what depends on its target, and leaves the rest.
    let destroyed = env
        .run("destroy", &["--yes", "--target", "platform-sg"])
        .success();
    assert_eq!(
        summary_line(&stdout(&destroyed)),
        format!(
            "Stack {stack}: 0 created, 0 updated, 0 replaced, 2 deleted, 0 unchanged, 0 failed, 0 skipped, 1 not targeted"
        )
    );
    assert_eq!(owned_by(&stack), "1 0 0 0");

    // Import: a VPC made outside any stack replaces the recorded one (forgotten, then deleted
    // behind the CLI's back); one another stack owns, or an id that does not exist, is refused.
    let old_vpc = serde_json::from_str::<serde_json::Value>(&stdout(
        &env.run("state show", &["vpc"]).success(),
    ))
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.run("state delete", &["vpc"]).success();
    boto3(&format!("ec2.delete_vpc(VpcId='{old_vpc}')"));
    let outside = boto3_out(
        "v = ec2.create_vpc(CidrBlock='10.0.0.0/16', TagSpecifications=[{'ResourceType': 'vpc', 'Tags': [{'Key': 'team', 'Value': 'data'}]}])\nprint(v['Vpc']['VpcId'])",
    );
    let owned = boto3_out(
        "v = ec2.create_vpc(CidrBlock='10.1.0.0/16', TagSpecifications=[{'ResourceType': 'vpc', 'Tags': [{'Key': 'iac:stack', 'Value': 'someone-else'}]}])\nprint(v['Vpc']['VpcId'])",
    );
    let refused = env.run("import", &["aws:ec2:Vpc", "vpc", &owned]).code(1);
    assert_eq!(
        stderr(&refused).trim(),
        format!(
            "error: cannot import `{owned}` as `vpc` into stack `{stack}`: it belongs to stack `someone-else` (its `iac:stack` tag): import only what no other stack owns"
        )
    );
    let missing = env
        .run("import", &["aws:ec2:Vpc", "vpc", "vpc-0123456789abcdef0"])
        .code(1);
    assert_eq!(
        stderr(&missing).trim(),
        format!(
            "error: cannot import `vpc-0123456789abcdef0` as `vpc` into stack `{stack}`: no aws:ec2:Vpc has the id `vpc-0123456789abcdef0`"
        )
    );
    let wrong_type = env
        .run("import", &["aws:ec2:Subnet", "vpc", &outside])
        .code(1);
    assert_eq!(
        stderr(&wrong_type).trim(),
        format!(
            "error: `vpc` in stack `{stack}`: the program makes it a `aws:ec2:Vpc`, not a `aws:ec2:Subnet`"
        )
    );
    let imported = env
        .run("import", &["aws:ec2:Vpc", "vpc", &outside])
        .success();
    assert_eq!(
        stderr(&imported).trim(),
        format!(
            "imported aws:ec2:Vpc `{outside}` as `vpc` into stack `{stack}`: run preview to see what the program would change"
        )
    );
    let again = env.run("import", &["aws:ec2:Vpc", "vpc", &outside]).code(1);
    assert!(
        stderr(&again).contains("the stack records it already"),
        "{}",
        stderr(&again)
    );
    // The next preview shows what the program changes of it: its tag and its DNS settings.
    let diff = stdout(&env.run("preview", &["--target", "vpc"]).success());
    insta::with_settings!({
        snapshot_path => "../../snapshots/stacks",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("preview_imported_vpc_dev", scrub(&diff));
    });
    // Tagged as the stack's: the independent reader finds it by the ownership tag.
    assert_eq!(
        boto3_out(&format!(
            "print([t['Value'] for t in ec2.describe_vpcs(VpcIds=['{outside}'])['Vpcs'][0]['Tags'] if t['Key'] == 'iac:resource'])"
        )),
        "['vpc']"
    );
    env.run("destroy", &["--yes"]).success();
    assert_eq!(owned_by(&stack), "0 0 0 0");
    boto3(&format!("ec2.delete_vpc(VpcId='{owned}')"));
}

/// A moto_server of the test's own that authorizes every request after its first `free`
/// actions (moto's `INITIAL_NO_AUTH_ACTION_COUNT`), as AWS does; stopped by its PID on drop.
struct AuthorizingEmulator {
    child: std::process::Child,
    url: String,
}

impl AuthorizingEmulator {
    fn start(free: u32) -> Self {
        let venv = std::env::var("KAFKA_PLATFORM_VENV").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(format!("{venv}/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", free.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let emulator = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return emulator;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not answer on {}", emulator.url);
    }
}

impl Drop for AuthorizingEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_principal_without_access_to_the_bucket_is_told_what_it_needs() {
    // Three free actions make the bucket and a user with no policy, and its access key.
    let emulator = AuthorizingEmulator::start(3);
    let venv = std::env::var("KAFKA_PLATFORM_VENV").unwrap();
    let made = std::process::Command::new(format!("{venv}/bin/python"))
        .args(["-c", &format!(
            "import boto3\nkw = dict(endpoint_url='{}', region_name='eu-central-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             boto3.client('s3', **kw).create_bucket(Bucket='locked', CreateBucketConfiguration={{'LocationConstraint': 'eu-central-1'}})\n\
             iam = boto3.client('iam', **kw)\niam.create_user(UserName='nobody')\n\
             k = iam.create_access_key(UserName='nobody')['AccessKey']\nprint(k['AccessKeyId'], k['SecretAccessKey'])",
            emulator.url
        )])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let keys = String::from_utf8(made.stdout).unwrap();
    let (id, secret) = keys.trim().split_once(' ').unwrap();
    let env = Env::new("denied", |t| t);
    let as_nobody = [
        ("AWS_ENDPOINT_URL", emulator.url.as_str()),
        ("AWS_ACCESS_KEY_ID", id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    let expected = "error: state in s3://locked/teams/: access is denied (AccessDenied): the credentials need s3:ListBucket on `locked` and s3:GetObject, s3:PutObject and s3:DeleteObject on the prefix";
    for verb in ["state list", "preview"] {
        let denied = env
            .run_with(verb, &["--backend", "s3://locked/teams"], &as_nobody)
            .code(1);
        assert_eq!(stderr(&denied).trim(), expected, "{verb}");
    }
}

/// What `stacks … --help` prints for every verb, as docs/cli.md shows it after its
/// `<!-- help -->` mark. `STACKS_WRITE_CLI_DOC=1` writes the page's section instead of
/// comparing (after a change to the CLI: review the page's diff).
#[test]
fn the_cli_reference_is_what_help_prints() {
    const MARK: &str = "<!-- help -->\n";
    let verbs = [
        "",
        "preview",
        "apply",
        "destroy",
        "refresh",
        "outputs",
        "render",
        "import",
        "state",
        "state list",
        "state show",
        "state delete",
        "state rename",
        "state export",
        "state import",
    ];
    let mut section = String::new();
    for verb in verbs {
        let output = Command::cargo_bin("stacks")
            .unwrap()
            .args(verb.split_whitespace())
            .arg("--help")
            // As a fresh shell shows it: no variable fills in a default (`[env: IAC_STATE_DIR=]`).
            .env_clear()
            .output()
            .unwrap();
        assert!(output.status.success(), "stacks {verb} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        let command = format!("stacks {verb} --help").replace("  ", " ");
        section.push_str(&format!("\n```text\n$ {command}\n{}```\n", help));
    }
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let (head, documented) = text
        .split_once(MARK)
        .expect("docs/cli.md has its help mark");
    if std::env::var_os("STACKS_WRITE_CLI_DOC").is_some() {
        std::fs::write(&page, format!("{head}{MARK}{section}")).unwrap();
        return;
    }
    assert!(
        documented == section,
        "docs/cli.md does not show what --help prints: run this test with STACKS_WRITE_CLI_DOC=1 and review the diff"
    );
}
