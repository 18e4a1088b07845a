//! The command line's behaviour, once for every program: each verb, the exit codes, the JSON
//! documents, the confirmation, a saved plan, targets, the state verbs and an interrupt.
//!
//! The stack program under test is this test binary itself: started with `IAC_CLI_PROGRAM`
//! set, its `main` runs `iac_cli::main` for `Notes`, a program of three files and two
//! commands on the local provider (real files, real processes: what every test checks is
//! read back from the disk, not from the CLI). Otherwise `main` runs the tests below, each
//! starting the program as a user would. (`harness = false`: the program's output must be
//! its own, without a test harness's lines.)

// Test code, without `#[test]` to tell clippy so: an unwrap that fails fails its test.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use iac_cli::{Error, NoFlags, NoVerbs, StackProgram, exit};
use iac_core::{Output as Value, Providers, ResourceOptions, Stack};
use iac_local::{CommandArgs, FileArgs, LocalProvider};

/// The program's settings, from the environment.
struct Settings {
    dir: String,
    greeting: String,
    slow: String,
}

struct Notes;

impl StackProgram for Notes {
    const NAME: &'static str = "notes";
    const ABOUT: &'static str = "Files and commands in NOTES_DIR";
    const VERSION: &'static str = "1.2.3";
    type Flags = NoFlags;
    type PlanFlags = NoFlags;
    type Verbs = NoVerbs;
    type Env = Settings;

    fn load(&self, _stack: &str, _: &NoFlags) -> Result<Settings, Error> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Settings {
            dir: var("NOTES_DIR").ok_or_else(|| Error::user("set NOTES_DIR"))?,
            greeting: var("NOTES_GREETING").unwrap_or_else(|| "hello".to_owned()),
            slow: var("NOTES_SLOW").unwrap_or_else(|| "0".to_owned()),
        })
    }

    fn register(&self, env: &mut Settings, stack: &mut Stack) -> Result<(), Error> {
        let file = |name: &str| format!("{}/{name}", env.dir);
        let greeting = stack.resource::<iac_local::File>(
            "greeting",
            FileArgs {
                path: file("greeting.txt").into(),
                content: env.greeting.clone().into(),
                ..Default::default()
            },
        );
        stack.resource::<iac_local::File>(
            "copy",
            FileArgs {
                path: file("copy.txt").into(),
                content: greeting.path().map(|p| format!("a copy beside {p}")),
                ..Default::default()
            },
        );
        let slow = stack.resource::<iac_local::Command>(
            "slow",
            CommandArgs {
                create: format!("sleep {}; echo done > {}", env.slow, file("slow.txt")).into(),
                ..Default::default()
            },
        );
        stack.resource_with::<iac_local::Command>(
            "after-slow",
            CommandArgs {
                create: format!("echo done > {}", file("after-slow.txt")).into(),
                ..Default::default()
            },
            ResourceOptions::new().depends_on(&slow),
        );
        stack.export("greeting_path", greeting.path());
        stack.export("token", Value::secret("s3cr3t".to_owned()));
        Ok(())
    }

    async fn providers(&self, _: &Settings) -> Result<Providers, Error> {
        let mut providers = Providers::new();
        LocalProvider::new().register(&mut providers);
        Ok(providers)
    }
}

/// A place of its own: the program's files and the stack's state.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn notes(&self) -> PathBuf {
        self.dir.path().join("notes")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The program run with `args` as a user runs it, from the place (no terminal).
    fn command(&self, args: &str) -> Command {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .env("IAC_CLI_PROGRAM", "1")
            .env("NOTES_DIR", self.notes())
            .env("IAC_STATE_DIR", self.state())
            .env("IAC_PASSPHRASE", "correct horse battery staple")
            .env_remove("IAC_BACKEND")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &str) -> Ran {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &str, vars: &[(&str, &str)]) -> Ran {
        let mut command = self.command(args);
        command.envs(vars.iter().copied());
        Ran::from(command.output().unwrap())
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.notes().join(file)).ok()
    }
}

/// What a run printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Ran {
    /// Asserts the exit code; returns the run for more.
    fn exits(self, code: u8, what: &str) -> Self {
        assert_eq!(
            self.code,
            i32::from(code),
            "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that standard output says `text`.
    fn printed(&self, text: &str) {
        assert!(self.stdout.contains(text), "{text:?} in:\n{}", self.stdout);
    }

    /// Asserts that standard error says `text`.
    fn told(&self, text: &str) {
        assert!(self.stderr.contains(text), "{text:?} in:\n{}", self.stderr);
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", self.stdout))
    }
}

fn arguments_help_and_a_missing_setting_exit_as_documented() {
    let place = Place::new();
    let help = place.run("--help").exits(exit::OK, "--help");
    for verb in [
        "preview", "apply", "destroy", "refresh", "outputs", "import", "state",
    ] {
        help.printed(verb);
    }
    help.printed("Files and commands in NOTES_DIR");
    let version = place.run("--version").exits(exit::OK, "--version");
    assert_eq!(version.stdout, "notes 1.2.3\n");
    let preview = place
        .run("preview --help")
        .exits(exit::OK, "preview --help");
    preview.printed("<STACK>");
    place
        .run("preview s --no-such-flag")
        .exits(exit::USER, "an unknown flag");
    place
        .run("frobnicate s")
        .exits(exit::USER, "an unknown verb");
    let missing = Ran::from(
        place
            .command("preview s")
            .env_remove("NOTES_DIR")
            .output()
            .unwrap(),
    )
    .exits(exit::USER, "the program's own refusal");
    assert_eq!(missing.stderr, "error: set NOTES_DIR\n");
    let unset = Ran::from(
        place
            .command("preview s")
            .env_remove("IAC_PASSPHRASE")
            .output()
            .unwrap(),
    )
    .exits(exit::USER, "a secret output without a passphrase");
    assert!(
        unset.stderr.ends_with("(notes: set IAC_PASSPHRASE)\n"),
        "the hint names the program: {}",
        unset.stderr
    );
}

fn preview_saved_plan_apply_outputs_and_destroy() {
    let place = Place::new();
    let preview = place
        .run("preview s --detailed-exitcode")
        .exits(exit::CHANGES, "a preview with changes");
    preview.printed("4 to create");
    let plan = place
        .run("preview s --json")
        .exits(exit::OK, "--json")
        .json();
    assert_eq!(plan["stack"], "s", "{plan:#}");
    assert!(
        place.read("greeting.txt").is_none(),
        "a preview changes nothing"
    );

    let refused = place
        .run("apply s")
        .exits(exit::USER, "apply without --yes");
    refused.told("pass --yes");
    assert!(place.read("greeting.txt").is_none(), "nothing was asked");

    let file = place.dir.path().join("plan.json");
    place
        .run(&format!("preview s --plan-out {}", file.display()))
        .exits(exit::OK, "--plan-out");
    let applied = place
        .run(&format!("apply s --yes --plan {}", file.display()))
        .exits(exit::OK, "apply --plan");
    applied.printed("Stack s: 4 created");
    assert_eq!(place.read("greeting.txt").as_deref(), Some("hello"));
    assert_eq!(place.read("slow.txt").as_deref(), Some("done\n"));
    let stale = place
        .run(&format!("apply s --yes --plan {}", file.display()))
        .exits(exit::USER, "a saved plan applied twice");
    assert!(!stale.stderr.is_empty());

    place
        .run("preview s --detailed-exitcode")
        .exits(exit::OK, "nothing to change");
    let outputs = place
        .run("outputs s --json")
        .exits(exit::OK, "outputs")
        .json();
    let path = place.notes().join("greeting.txt");
    assert_eq!(
        outputs,
        serde_json::json!({"greeting_path": path.display().to_string(), "token": "[secret]"})
    );
    let shown = place
        .run("outputs s --json --show-secrets")
        .exits(exit::OK, "--show-secrets")
        .json();
    assert_eq!(shown["token"], "s3cr3t");

    let applied = place
        .run_with("apply s --yes --json", &[("NOTES_GREETING", "hi")])
        .exits(exit::OK, "an update")
        .json();
    assert_eq!(applied["summary"]["counts"]["update"], 1, "{applied:#}");
    assert_eq!(applied["plan"]["stack"], "s", "{applied:#}");
    assert_eq!(place.read("greeting.txt").as_deref(), Some("hi"));

    place.run("destroy s --yes").exits(exit::OK, "destroy");
    assert!(place.read("greeting.txt").is_none() && place.read("copy.txt").is_none());
    let left = place
        .run("state list s")
        .exits(exit::OK, "nothing recorded");
    assert_eq!(left.stdout, "", "every record is gone");
    let never = place
        .run("state list other")
        .exits(exit::USER, "a stack without state");
    never.told("has no state");
}

fn refresh_targets_replace_and_import() {
    let place = Place::new();
    place.run("apply s --yes").exits(exit::OK, "apply");
    std::fs::remove_file(place.notes().join("copy.txt")).unwrap();
    let report = place
        .run("refresh s --json")
        .exits(exit::OK, "refresh")
        .json();
    assert_eq!(
        report["drift"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    place
        .run("preview s --detailed-exitcode")
        .exits(exit::CHANGES, "the deleted file is planned again");
    place.run("apply s --yes").exits(exit::OK, "apply again");
    assert!(place.read("copy.txt").is_some(), "restored");

    let targeted = place
        .run_with("apply s --yes --target slow", &[("NOTES_GREETING", "hey")])
        .exits(exit::OK, "a targeted apply");
    targeted.printed("0 updated");
    assert_eq!(
        place.read("greeting.txt").as_deref(),
        Some("hello"),
        "the untargeted file is left as recorded"
    );
    let replaced = place
        .run("apply s --yes --replace copy")
        .exits(exit::OK, "--replace");
    replaced.printed("1 replaced");
    place
        .run("apply s --yes --target nothing-of-the-kind")
        .exits(exit::USER, "an unknown target");

    place
        .run("import s local:File other /etc/hostname")
        .exits(exit::USER, "a name the program does not have");
    place
        .run("state delete s copy")
        .exits(exit::OK, "forgetting the copy");
    let import = place
        .run("import s local:File copy /etc/hostname")
        .exits(exit::USER, "a type its provider cannot import");
    import.told("cannot be imported");
}

fn state_verbs_and_moving_a_stack() {
    let place = Place::new();
    place.run("apply s --yes").exits(exit::OK, "apply");
    let listed = place
        .run("state list s --json")
        .exits(exit::OK, "list")
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names.len(), 4, "{listed:#}");
    let shown = place.run("state show s greeting").exits(exit::OK, "show");
    shown.printed("\"content\": \"hello\"");
    place
        .run("state show s nothing")
        .exits(exit::USER, "show of an unknown name");
    place
        .run("state rename s copy duplicate")
        .exits(exit::OK, "rename");
    let exported = place.run("state export s").exits(exit::OK, "export");
    let file = place.dir.path().join("export.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    let elsewhere = place.dir.path().join("elsewhere");
    place
        .run(&format!(
            "state import s {} --state-dir {}",
            file.display(),
            elsewhere.display()
        ))
        .exits(exit::OK, "import into another place");
    place
        .run(&format!("state import s {}", file.display()))
        .exits(exit::USER, "import over state");
    let moved = place
        .run(&format!("state list s --state-dir {}", elsewhere.display()))
        .exits(exit::OK, "the moved state");
    moved.printed("duplicate");
    place
        .run("state delete s greeting")
        .exits(exit::USER, "forgetting what others depend on");
    place
        .run("state delete s greeting --force")
        .exits(exit::OK, "forgetting it anyway");
    assert!(
        place.read("greeting.txt").is_some(),
        "forgotten, not deleted"
    );
}

fn a_provider_failure_exits_3_and_names_the_step() {
    let place = Place::new();
    // The files' folder is a file: nothing can be written under it.
    std::fs::write(place.notes(), "in the way").unwrap();
    let failed = place
        .run("apply s --yes")
        .exits(exit::FAILED, "a failed step");
    failed.printed("failed");
    failed.printed("greeting");
}

fn a_first_interrupt_finishes_the_step_in_flight_and_exits_130() {
    let place = Place::new();
    place
        .run("apply s --yes --target copy")
        .exits(exit::OK, "the files first");
    let started = Instant::now();
    let child = place
        .command("apply s --yes")
        .env("NOTES_SLOW", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted while `slow` runs: it finishes and is recorded; `after-slow` never starts.
    while place.read("slow.txt").is_none() && started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = i32::try_from(child.id()).unwrap();
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let ran = Ran::from(child.wait_with_output().unwrap()).exits(exit::INTERRUPTED, "Ctrl-C");
    ran.told("stopping");
    assert_eq!(
        place.read("slow.txt").as_deref(),
        Some("done\n"),
        "finished"
    );
    assert!(place.read("after-slow.txt").is_none(), "never started");
    let listed = place.run("state list s").exits(exit::OK, "list");
    listed.printed("slow");
    assert!(!listed.stdout.contains("after-slow"), "{}", listed.stdout);
    place.run("apply s --yes").exits(exit::OK, "the rest");
    assert!(place.read("after-slow.txt").is_some());
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("IAC_CLI_PROGRAM").is_some() {
        return iac_cli::main(&Notes);
    }
    let tests: [(&str, fn()); 6] = [
        (
            "arguments_help_and_a_missing_setting_exit_as_documented",
            arguments_help_and_a_missing_setting_exit_as_documented,
        ),
        (
            "preview_saved_plan_apply_outputs_and_destroy",
            preview_saved_plan_apply_outputs_and_destroy,
        ),
        (
            "refresh_targets_replace_and_import",
            refresh_targets_replace_and_import,
        ),
        (
            "state_verbs_and_moving_a_stack",
            state_verbs_and_moving_a_stack,
        ),
        (
            "a_provider_failure_exits_3_and_names_the_step",
            a_provider_failure_exits_3_and_names_the_step,
        ),
        (
            "a_first_interrupt_finishes_the_step_in_flight_and_exits_130",
            a_first_interrupt_finishes_the_step_in_flight_and_exits_130,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            skipped += 1;
            continue;
        }
        let ok = catch_unwind(AssertUnwindSafe(test)).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let result = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {skipped} filtered out\n"
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
