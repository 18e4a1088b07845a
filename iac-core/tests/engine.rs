//! Engine behaviour against the in-process test provider, with real state files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use iac_core::state::{FileBackend, StateBackend};
use iac_core::testing::{CallKind, TestProvider};
use iac_core::{
    ApplyOptions, Drift, EngineError, Inputs, Operation, Output, Passphrase, PlanError, PlanRecord,
    Program, ResourceOptions, SecretsError, Shown, SkipReason, Stack, Targets,
};
use serde_json::json;
use tempfile::TempDir;

/// vpc <- subnet-a, subnet-b <- instance; vpc <- sg; `size` lets a test change an input.
fn network(size: i64) -> Program {
    network_of(size, ("vpc", ResourceOptions::default()), Inputs::new())
}

/// [`network`] with the VPC named and optioned as given, and more inputs for `sg`.
fn network_of(size: i64, (vpc, options): (&str, ResourceOptions), sg: Inputs) -> Program {
    let mut s = Stack::new("dev");
    let vpc = thing_with(
        &mut s,
        vpc,
        Inputs::new().with("cidr", "10.0.0.0/16"),
        options,
    );
    let a = thing(
        &mut s,
        "subnet-a",
        Inputs::new()
            .with("vpc", vpc.id())
            .with("cidr", "10.0.1.0/24"),
    );
    let b = thing(
        &mut s,
        "subnet-b",
        Inputs::new()
            .with("vpc", vpc.id())
            .with("cidr", "10.0.2.0/24"),
    );
    thing(&mut s, "sg", sg.with("vpc", vpc.id()));
    thing(
        &mut s,
        "instance",
        Inputs::new()
            .with("subnets", Output::all([a.id(), b.id()]))
            .with("size", size),
    );
    s.build().expect("valid program")
}

fn setup(provider: TestProvider) -> (Arc<TestProvider>, iac_core::Engine, TempDir) {
    let provider = Arc::new(provider);
    let dir = TempDir::new().expect("temp dir");
    let engine = engine(&provider, dir.path());
    (provider, engine, dir)
}

#[tokio::test]
async fn creates_follow_dependencies_and_deletes_follow_dependents_under_parallelism() {
    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(5)));
    let program = network(1);
    let summary = up_with(&engine, &program, 8).await;
    assert!(summary.is_success(), "{summary:?}");
    assert_eq!(summary.counts.create, 5);

    let deps: HashMap<&str, Vec<&str>> = HashMap::from([
        ("subnet-a", vec!["vpc"]),
        ("subnet-b", vec!["vpc"]),
        ("sg", vec!["vpc"]),
        ("instance", vec!["subnet-a", "subnet-b"]),
    ]);
    let calls = provider.calls();
    let call = |kind, name: &str| {
        calls
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .unwrap_or_else(|| panic!("no {kind:?} of {name}"))
            .clone()
    };
    for (name, ds) in &deps {
        for d in ds {
            assert!(
                call(CallKind::Create, d).end <= call(CallKind::Create, name).start,
                "{name} created before {d}"
            );
        }
    }

    provider.reset_calls();
    let summary = destroy(&engine, "dev").await;
    assert_eq!(summary.counts.delete, 5);
    let calls = provider.calls();
    let call = |name: &str| {
        calls
            .iter()
            .find(|c| c.kind == CallKind::Delete && c.name == name)
            .expect("deleted")
            .clone()
    };
    for (name, ds) in &deps {
        for d in ds {
            assert!(
                call(name).end <= call(d).start,
                "{d} deleted before its dependent {name}"
            );
        }
    }
    assert!(provider.existing().is_empty());
}

#[tokio::test]
async fn independent_branches_overlap_and_the_parallelism_bound_holds() {
    let independent = || {
        let mut s = Stack::new("dev");
        for i in 0..4 {
            thing(&mut s, &format!("r{i}"), Inputs::new());
        }
        s.build().expect("valid")
    };
    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(30)));
    up_with(&engine, &independent(), 4).await;
    assert_eq!(
        provider.max_in_flight(),
        4,
        "four independent creates should all be in flight at once"
    );

    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(5)));
    up_with(&engine, &independent(), 1).await;
    assert_eq!(provider.max_in_flight(), 1, "parallelism 1 must serialise");
}

fn subnet(cidr: &str, options: ResourceOptions) -> Program {
    let mut s = Stack::new("dev");
    let vpc = thing(&mut s, "vpc", Inputs::new());
    thing_with(
        &mut s,
        "subnet",
        Inputs::new().with("vpc", vpc.id()).with("cidr", cidr),
        options,
    );
    s.build().expect("valid")
}

#[tokio::test]
async fn replacement_creates_before_deleting_by_default() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["cidr"]));
    up(&engine, &subnet("10.0.1.0/24", ResourceOptions::new())).await;
    let old_id = recorded_id(&engine, "dev", "subnet").await;
    provider.reset_calls();

    let program = subnet("10.0.9.0/24", ResourceOptions::new());
    let plan = preview(&engine, &program).await;
    let step = plan
        .record()
        .steps
        .iter()
        .find(|s| s.name == "subnet")
        .unwrap();
    assert_eq!(step.op, Operation::Replace);
    assert!(!step.delete_before_replace);
    assert!(step.diff.iter().any(|d| d.key == "cidr" && d.replace));
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.counts.replace, 1);

    let calls: Vec<_> = provider
        .calls()
        .into_iter()
        .map(|c| (c.kind, c.name))
        .collect();
    assert_eq!(
        calls,
        [
            (CallKind::Create, "subnet".into()),
            (CallKind::Delete, "subnet".into())
        ]
    );
    let state = engine.state("dev").await.unwrap().unwrap();
    assert_eq!(
        state
            .resources
            .iter()
            .filter(|r| r.name == "subnet")
            .count(),
        1
    );
    assert_ne!(state.resource("subnet").unwrap().id, old_id);
}

#[tokio::test]
async fn delete_before_replace_deletes_first_and_takes_replaced_dependents_along() {
    // Changing `name` needs delete-first replacement (a unique name); `parent` replaces.
    let program = |name: &str| {
        let mut s = Stack::new("dev");
        let r = thing(&mut s, "role", Inputs::new().with("name", name));
        thing(&mut s, "profile", Inputs::new().with("parent", r.id()));
        thing(&mut s, "unrelated", Inputs::new());
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(
        TestProvider::new()
            .delete_first_on(["name"])
            .replace_on(["parent"]),
    );
    up(&engine, &program("one")).await;
    provider.reset_calls();

    let plan = preview(&engine, &program("two")).await;
    let ops: Vec<_> = plan
        .record()
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.op, s.delete_before_replace))
        .collect();
    assert_eq!(
        ops,
        [
            ("role", Operation::Replace, true),
            ("profile", Operation::Replace, true),
            ("unrelated", Operation::Same, false)
        ]
    );
    let summary = engine
        .apply(&program("two"), &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary:?}");
    let calls: Vec<_> = provider
        .calls()
        .into_iter()
        .map(|c| (c.kind, c.name))
        .collect();
    assert_eq!(
        calls,
        [
            (CallKind::Delete, "profile".into()),
            (CallKind::Delete, "role".into()),
            (CallKind::Create, "role".into()),
            (CallKind::Create, "profile".into()),
        ]
    );
    assert_eq!(provider.existing().len(), 3);
}

#[tokio::test]
async fn delete_before_replace_can_be_requested_per_resource() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["cidr"]));
    let options = ResourceOptions::new().delete_before_replace();
    up(&engine, &subnet("10.0.1.0/24", options.clone())).await;
    provider.reset_calls();
    up(&engine, &subnet("10.0.2.0/24", options)).await;
    assert_eq!(provider.names(CallKind::Delete), ["subnet"]);
    let calls = provider.calls();
    assert_eq!(calls[0].kind, CallKind::Delete);
    assert_eq!(calls[1].kind, CallKind::Create);
}

#[tokio::test]
async fn protect_refuses_replace_and_delete_before_any_mutation() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["cidr"]));
    up(
        &engine,
        &subnet("10.0.1.0/24", ResourceOptions::new().protect()),
    )
    .await;
    provider.reset_calls();

    let err = engine
        .preview(&subnet("10.0.2.0/24", ResourceOptions::new().protect()))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource `subnet` is protected and the plan would replace it (a change of cidr forces replacement): remove its `protect` option first, or undo the change"
    );
    let mut s = Stack::new("dev");
    thing(&mut s, "vpc", Inputs::new());
    let err = engine.preview(&s.build().unwrap()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource `subnet` is protected and the plan would delete it (it is no longer in the program): remove its `protect` option first, or undo the change"
    );
    assert_eq!(provider.mutations(), 0);

    // Removing `protect` is itself recorded without touching the resource, then delete works.
    up(&engine, &subnet("10.0.1.0/24", ResourceOptions::new())).await;
    assert_eq!(provider.mutations(), 0);
    destroy(&engine, "dev").await;
    assert!(provider.existing().is_empty());
}

#[tokio::test]
async fn ignore_changes_keeps_the_recorded_value() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["cidr"]));
    let ignore = ResourceOptions::new().ignore_changes(["cidr"]);
    up(&engine, &subnet("10.0.1.0/24", ignore.clone())).await;
    provider.reset_calls();
    let plan = preview(&engine, &subnet("10.0.7.0/24", ignore.clone())).await;
    assert!(!plan.has_changes(), "{}", plan.render());
    up(&engine, &subnet("10.0.7.0/24", ignore)).await;
    assert_eq!(provider.mutations(), 0);
    assert_eq!(
        provider.inputs_of("subnet").unwrap()["cidr"],
        json!("10.0.1.0/24")
    );
}

#[tokio::test]
async fn replace_on_changes_forces_replacement_of_an_in_place_property() {
    let (_provider, engine, _dir) = setup(TestProvider::new());
    let options = ResourceOptions::new().replace_on_changes(["cidr"]);
    up(&engine, &subnet("10.0.1.0/24", options.clone())).await;
    let plan = preview(&engine, &subnet("10.0.3.0/24", options)).await;
    assert_eq!(plan.record().steps[1].op, Operation::Replace);
}

#[tokio::test]
async fn a_failure_skips_only_its_dependents_and_the_next_apply_finishes_the_job() {
    let program = || {
        let mut s = Stack::new("dev");
        let a = thing(&mut s, "a", Inputs::new());
        let b = thing(&mut s, "b", Inputs::new().with("a", a.id()));
        thing(&mut s, "c", Inputs::new().with("b", b.id()));
        thing(&mut s, "d", Inputs::new());
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    provider.fail(CallKind::Create, "b", "quota exceeded");
    let summary = up(&engine, &program()).await;
    assert!(!summary.is_success());
    assert_eq!(summary.counts.create, 2);
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].name, "b");
    assert_eq!(
        summary.failed[0].error,
        "create failed: Injected: quota exceeded"
    );
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(
        (
            summary.skipped[0].name.as_str(),
            &summary.skipped[0].blocked_by
        ),
        ("c", &SkipReason::Needs("b".to_owned()))
    );
    let state = engine.state("dev").await.unwrap().unwrap();
    let mut recorded: Vec<_> = state.resources.iter().map(|r| r.name.as_str()).collect();
    recorded.sort();
    assert_eq!(recorded, ["a", "d"]);
    assert!(
        state.pending.is_empty(),
        "a failed call is recorded as ended"
    );

    provider.clear_failures();
    provider.reset_calls();
    let summary = up(&engine, &program()).await;
    assert!(summary.is_success());
    assert_eq!(provider.names(CallKind::Create), ["b", "c"]);
    assert_eq!(provider.mutations(), 2);
}

#[tokio::test]
async fn a_second_apply_makes_no_provider_mutation_and_writes_nothing() {
    let program = || {
        let mut s = Stack::new("dev");
        let ami = s.read(LOOKUP, "ami", Inputs::new().with("query", "debian"));
        let vpc = thing(&mut s, "vpc", Inputs::new().with("cidr", "10.0.0.0/16"));
        thing(
            &mut s,
            "vm",
            Inputs::new()
                .with("vpc", vpc.id())
                .with("image", ami.output::<String>("value")),
        );
        s.export("vpc_id", vpc.id());
        s.build().expect("valid")
    };
    let (provider, engine, dir) = setup(TestProvider::new());
    up(&engine, &program()).await;
    let before = all_bytes(dir.path());
    provider.reset_calls();

    let plan = preview(&engine, &program()).await;
    assert!(!plan.has_changes(), "{}", plan.render());
    let summary = engine
        .apply(&program(), &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.counts.same, 2);
    assert_eq!(provider.mutations(), 0);
    assert_eq!(
        all_bytes(dir.path()),
        before,
        "a no-op apply must not rewrite state"
    );
    assert!(
        matches!(&summary.outputs["vpc_id"], Shown::Value(v) if v.as_str().is_some_and(|s| s.starts_with("id-")))
    );
}

#[tokio::test]
async fn data_sources_are_read_during_preview() {
    let program = |query: &str| {
        let mut s = Stack::new("dev");
        let ami = s.read(LOOKUP, "ami", Inputs::new().with("query", query));
        thing(
            &mut s,
            "vm",
            Inputs::new().with("image", ami.output::<String>("value")),
        );
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    let plan = preview(&engine, &program("debian")).await;
    let vm = &plan.record().steps[1];
    assert_eq!(vm.diff[0].new, Some(Shown::Value(json!("debian-found"))));
    assert_eq!(provider.mutations(), 0);

    let err = engine.preview(&program("missing")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "data source `ami` (test:Lookup) matched nothing: check its filter inputs"
    );
}

#[tokio::test]
async fn check_failures_are_reported_before_any_mutation() {
    let mut s = Stack::new("dev");
    thing(&mut s, "ok", Inputs::new());
    thing(&mut s, "disk", Inputs::new().with("size", -5));
    let (provider, engine, _dir) = setup(TestProvider::new());
    match engine.preview(&s.build().unwrap()).await {
        Err(EngineError::Plan(errors)) => {
            assert_eq!(errors.0.len(), 1);
            assert!(matches!(errors.0[0], PlanError::Check { .. }));
            assert_eq!(
                errors.to_string(),
                "resource `disk` (test:Thing): `size`: must be 0 or more, got -5"
            );
        }
        other => panic!("expected a check failure, got {other:?}"),
    }
    assert_eq!(provider.mutations(), 0);
}

/// `?` in a `main` returning these errors prints their messages, not their fields.
#[tokio::test]
async fn errors_debug_print_as_their_messages() {
    let mut s = Stack::new("dev");
    thing(&mut s, "disk", Inputs::new().with("size", -5));
    let (_provider, engine, _dir) = setup(TestProvider::new());
    let Err(error) = engine.preview(&s.build().unwrap()).await else {
        panic!("a check failure was accepted");
    };
    assert_eq!(
        format!("{error:?}"),
        "resource `disk` (test:Thing): `size`: must be 0 or more, got -5"
    );
    let mut s = Stack::new("dev");
    thing(&mut s, "twice", Inputs::new());
    thing(&mut s, "twice", Inputs::new());
    let Err(errors) = s.build() else {
        panic!("a duplicate name was accepted");
    };
    assert_eq!(format!("{errors:?}"), errors.to_string());
    assert!(!format!("{errors:?}").contains("ErrorList"), "{errors:?}");
}

#[tokio::test]
async fn a_crash_mid_apply_is_reported_and_refresh_resolves_it_without_duplicates() {
    let (provider, engine, dir) = setup(TestProvider::new());
    provider.crash(CallKind::Create, "subnet-a");
    let program = network(1);
    let plan = preview(&engine, &program).await;
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
    // Like kill -9: nothing runs on the way out, the lock file and the journal stay.
    std::mem::forget(run);
    assert!(
        provider.existing().contains("subnet-a"),
        "the crashed create took effect"
    );

    provider.clear_crashes();
    let engine = common::engine(&provider, dir.path());
    let err = engine.preview(&program).await.map(|p| p.render()).unwrap();
    assert!(err.contains("Interrupted operations"), "{err}");
    assert!(
        err.contains("! create of `subnet-a` (test:Thing) started"),
        "{err}"
    );

    let plan = preview(&engine, &program).await;
    let locked = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap_err();
    let message = locked.to_string();
    assert!(
        message.starts_with(&format!(
            "stack `dev` is locked by pid {}",
            std::process::id()
        )),
        "{message}"
    );
    assert!(message.contains("(apply)"), "{message}");
    let alive = engine.break_lock("dev").unwrap_err().to_string();
    assert!(
        alive.contains("which is still running"),
        "a live holder's lock is not broken: {alive}"
    );

    // The holder's process is gone: what it left is the state files and a lock file that
    // no process holds (as after kill -9).
    let (engine, _dir) = after_kill(&provider, dir.path());
    let holder = engine
        .take_over_stale_lock("dev")
        .unwrap()
        .expect("the dead run's lock is taken over");
    assert_eq!(
        (holder.pid, holder.operation.as_str()),
        (std::process::id(), "apply")
    );

    let err = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("run refresh to resolve them"));

    let report = engine.refresh("dev", 4).await.unwrap();
    assert!(
        report
            .drift
            .iter()
            .any(|d| d.name == "subnet-a" && d.drift == Drift::Adopted),
        "{report:?}"
    );
    provider.reset_calls();
    let summary = up(&engine, &program).await;
    assert!(summary.is_success(), "{summary:?}");
    let mut created = provider.names(CallKind::Create);
    created.sort();
    assert_eq!(
        created,
        ["instance", "sg", "subnet-b"],
        "subnet-a must not be created twice"
    );
    assert_eq!(provider.existing().len(), 5);
}

#[tokio::test]
async fn a_second_run_on_a_locked_stack_is_refused_naming_the_holder() {
    let (provider, engine, dir) = setup(TestProvider::new());
    let backend = FileBackend::new(dir.path());
    let _held = backend.lock("dev", "refresh").unwrap();
    let program = network(1);
    let plan = preview(&engine, &program).await;
    let err = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is locked by pid"), "{err}");
    assert!(err.contains("(refresh) since 20"), "{err}");
    assert!(err.contains("wait for that run to finish"), "{err}");
    assert_eq!(provider.mutations(), 0);
}

#[tokio::test]
async fn with_a_lock_timeout_a_run_waits_for_the_holder_to_finish() {
    let (provider, _, dir) = setup(TestProvider::new());
    let engine = common::engine(&provider, dir.path()).with_lock_timeout(Duration::from_secs(10));
    let held = FileBackend::new(dir.path()).lock("dev", "refresh").unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(held);
    });
    let started = std::time::Instant::now();
    let summary = up(&engine, &network(1)).await;
    assert!(summary.is_success());
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited");
    release.await.unwrap();

    let short = common::engine(&provider, dir.path()).with_lock_timeout(Duration::from_millis(300));
    let _held = FileBackend::new(dir.path()).lock("dev", "refresh").unwrap();
    let err = short.refresh("dev", 4).await.unwrap_err();
    assert!(err.to_string().contains("is locked by pid"), "{err}");
}

#[tokio::test]
async fn secrets_never_reach_disk_or_preview_in_plaintext() {
    const SECRET: &str = "hunter2-do-not-print";
    let program = || {
        let mut s = Stack::new("dev");
        let db = thing(
            &mut s,
            "db",
            Inputs::new().with("password", Output::secret(SECRET.to_owned())),
        );
        let derived = db
            .output::<String>("password")
            .map(|p| format!("postgres://app:{p}@db"));
        thing(
            &mut s,
            "app",
            Inputs::new().with("url", derived.clone()).with("size", 1),
        );
        s.export("url", derived);
        s.build().expect("valid")
    };
    let (provider, engine, dir) = setup(TestProvider::new());
    provider.crash(CallKind::Create, "app");
    let plan = preview(&engine, &program()).await;
    assert!(!plan.render().contains(SECRET));
    assert!(
        plan.render().contains("password: [secret]"),
        "{}",
        plan.render()
    );
    assert!(!plan.record().to_json().contains(SECRET));
    let (program_v, options) = (program(), ApplyOptions::default());
    let mut run = Box::pin(engine.apply(&program_v, &plan, &options));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut run)
            .await
            .is_err()
    );
    std::mem::forget(run);
    // The journal now holds db's record and app's pending create, both sealed.
    let bytes = all_bytes(dir.path());
    assert!(contains(&bytes, "enc:v1:"));
    assert!(!contains(&bytes, SECRET) && !contains(&bytes, "hunter2"));

    provider.clear_crashes();
    let (engine, dir) = after_kill(&provider, dir.path());
    engine.refresh("dev", 4).await.unwrap();
    let summary = up(&engine, &program()).await;
    assert_eq!(summary.outputs["url"], Shown::Secret);
    let bytes = all_bytes(dir.path());
    assert!(!contains(&bytes, SECRET) && !contains(&bytes, "hunter2"));

    let state = engine.state("dev").await.unwrap().unwrap();
    assert_eq!(
        state.resource("db").unwrap().inputs["password"],
        json!(SECRET)
    );
    assert_eq!(
        state.outputs["url"],
        json!(format!("postgres://app:{SECRET}@db"))
    );

    let wrong = iac_core::Engine::new(providers(&provider), FileBackend::new(dir.path()))
        .with_passphrase(Passphrase::new("wrong"));
    let err = wrong.state("dev").await.unwrap_err();
    assert!(matches!(
        err,
        EngineError::Secrets(SecretsError::WrongPassphrase { .. })
    ));
    assert_eq!(
        err.to_string(),
        "the passphrase does not decrypt the secrets of stack `dev`: use the passphrase they were written with"
    );
    let none = iac_core::Engine::new(providers(&provider), FileBackend::new(dir.path()));
    assert!(matches!(
        none.outputs("dev").await.unwrap_err(),
        EngineError::Secrets(SecretsError::NoPassphrase { .. })
    ));
}

#[tokio::test]
async fn a_saved_plan_applies_exactly_and_is_refused_when_stale_or_different() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &network(1)).await;

    let saved =
        PlanRecord::from_json(&preview(&engine, &network(2)).await.record().to_json()).unwrap();
    assert_eq!(saved.counts().update, 1);
    let err = engine
        .apply_saved(&network(3), &saved, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::PlanMismatch { .. }));
    assert_eq!(
        err.to_string(),
        "the program no longer matches the saved plan for stack `dev`:\n  - `instance`: its property changes differ from the saved plan\nmake a new plan"
    );
    provider.reset_calls();
    let summary = engine
        .apply_saved(&network(2), &saved, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.counts.update, 1);
    assert_eq!(provider.names(CallKind::Update), ["instance"]);

    // The state moved on since `saved` was made: refused.
    let err = engine
        .apply_saved(&network(2), &saved, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::StalePlan { .. }), "{err}");
    assert!(err.to_string().ends_with("run preview again"));
    assert!(
        PlanRecord::from_json("{}")
            .unwrap_err()
            .to_string()
            .starts_with("not a plan file")
    );
}

#[tokio::test]
async fn refresh_reports_drift_and_the_next_apply_repairs_it() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &network(1)).await;
    provider.tamper("sg", "vpc", json!("someone-else"));
    provider.delete_out_of_band("instance");

    let report = engine.refresh("dev", 4).await.unwrap();
    assert_eq!(report.unchanged, 3);
    let by_name: HashMap<_, _> = report
        .drift
        .iter()
        .map(|d| (d.name.as_str(), &d.drift))
        .collect();
    assert_eq!(by_name["instance"], &Drift::Deleted);
    match by_name["sg"] {
        Drift::Changed { diff } => {
            assert_eq!(diff[0].new, Some(Shown::Value(json!("someone-else"))))
        }
        other => panic!("sg should have drifted: {other:?}"),
    }

    let plan = preview(&engine, &network(1)).await;
    let ops: HashMap<_, _> = plan
        .record()
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.op))
        .collect();
    assert_eq!(
        (ops["sg"], ops["instance"]),
        (Operation::Update, Operation::Create)
    );
    up(&engine, &network(1)).await;
    let vpc_id = recorded_id(&engine, "dev", "vpc").await;
    assert_eq!(provider.inputs_of("sg").unwrap()["vpc"], json!(vpc_id));
    assert!(provider.existing().contains("instance"));
}

#[tokio::test]
async fn a_plan_for_another_stack_or_state_is_refused() {
    let (_provider, engine, _dir) = setup(TestProvider::new());
    let plan = preview(&engine, &network(1)).await;
    let mut other = Stack::new("prod");
    thing(&mut other, "x", Inputs::new());
    let err = engine
        .apply(&other.build().unwrap(), &plan, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this plan is for stack `dev`, not `prod`: use the plan made for `prod`"
    );
    up(&engine, &network(1)).await;
    let err = engine
        .apply(&network(1), &plan, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::StalePlan { planned: 0, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn progress_events_report_every_start_finish_and_skip() {
    use iac_core::ApplyEvent;
    let program = || {
        let mut s = Stack::new("dev");
        let a = thing(&mut s, "a", Inputs::new());
        thing(&mut s, "b", Inputs::new().with("a", a.id()));
        thing(&mut s, "c", Inputs::new());
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    provider.fail(CallKind::Create, "a", "boom");
    let plan = preview(&engine, &program()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = ApplyOptions {
        parallelism: 4,
        events: Some(tx),
        ..ApplyOptions::default()
    };
    engine.apply(&program(), &plan, &options).await.unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(match e {
            ApplyEvent::Started { name, op, .. } => format!("start {name} {}", op.word()),
            ApplyEvent::Finished {
                name, op, error, ..
            } => format!("finish {name} {} {}", op.word(), error.unwrap_or_default()),
            ApplyEvent::Skipped {
                name, blocked_by, ..
            } => format!("skip {name}, {blocked_by}"),
            other => format!("{other:?}"),
        });
    }
    events.sort();
    assert_eq!(
        events,
        [
            "finish a create create failed: Injected: boom",
            "finish c create ",
            "skip b, needs a",
            "start a create",
            "start c create",
        ]
    );

    // Unchanged steps announce nothing: an apply that changes nothing is silent.
    provider.clear_failures();
    up(&engine, &program()).await;
    let plan = preview(&engine, &program()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = ApplyOptions {
        events: Some(tx),
        ..ApplyOptions::default()
    };
    engine.apply(&program(), &plan, &options).await.unwrap();
    drop(options);
    assert!(rx.try_recv().is_err(), "no event for an unchanged step");
}

#[tokio::test]
async fn a_computed_output_changed_by_an_update_reaches_its_dependents() {
    let program = |size: i64| {
        let mut s = Stack::new("dev");
        let vm = thing(&mut s, "vm", Inputs::new().with("size", size));
        thing(
            &mut s,
            "dns",
            Inputs::new().with("target", vm.output::<u64>("generation")),
        );
        thing(&mut s, "by-id", Inputs::new().with("vm", vm.id()));
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &program(1)).await;
    let plan = preview(&engine, &program(2)).await;
    let ops: HashMap<_, _> = plan
        .record()
        .steps
        .iter()
        .map(|s| (s.name.as_str(), (s.op, s.diff.clone())))
        .collect();
    assert_eq!(ops["vm"].0, Operation::Update);
    assert_eq!(
        ops["dns"].0,
        Operation::Update,
        "generation may change: dns must follow"
    );
    assert_eq!(ops["dns"].1[0].new, Some(Shown::Unknown));
    assert_eq!(
        ops["by-id"].0,
        Operation::Same,
        "the id does not change with an update"
    );
    provider.reset_calls();
    engine
        .apply(&program(2), &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(provider.inputs_of("dns").unwrap()["target"], json!(2));
    assert_eq!(provider.names(CallKind::Update), ["vm", "dns"]);
}

#[tokio::test]
async fn relations_between_resources_are_checked_before_anything_exists() {
    let program = |child_size: i64| {
        let mut s = Stack::new("dev");
        let net = thing(&mut s, "net", Inputs::new().with("size", 16));
        // `parent` is unknown at preview (net is not created yet), but it is known to be net's id.
        thing(
            &mut s,
            "subnet",
            Inputs::new()
                .with("parent", net.id())
                .with("size", child_size),
        );
        // A derived value is not a reference: no relation is checked through it.
        let derived = net.id().map(|id| format!("{id}/x"));
        thing(
            &mut s,
            "other",
            Inputs::new().with("parent", derived).with("size", 99),
        );
        thing(&mut s, "key-a", Inputs::new().with("unique_name", "deploy"));
        thing(&mut s, "key-b", Inputs::new().with("unique_name", "deploy"));
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    let err = engine.preview(&program(24)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource `subnet` (test:Thing): `size`: 24 does not fit in `net` (size 16)\n\
         resource `key-b` (test:Thing): `unique_name`: \"deploy\" is already used by `key-a`"
    );
    assert_eq!(provider.mutations(), 0);
}

/// An input that becomes secret in the same run as its upstream's update: the plan sees the
/// input unknown (an update), apply finds it unchanged; its record must still be rewritten
/// with the value sealed, not left in plain text until some later change.
#[tokio::test]
async fn an_input_made_secret_while_its_upstream_updates_is_sealed_by_that_apply() {
    let program = |size: i64, secret: bool| {
        let mut s = Stack::new("dev");
        let upstream = thing(&mut s, "upstream", Inputs::new().with("size", size));
        let arn = upstream.output::<String>("arn");
        let arn = if secret { arn.into_secret() } else { arn };
        thing(&mut s, "downstream", Inputs::new().with("label", arn));
        s.build().expect("valid")
    };
    let (_provider, engine, dir) = setup(TestProvider::new());
    assert!(up(&engine, &program(1, false)).await.is_success());
    let arn = engine
        .state("dev")
        .await
        .unwrap()
        .unwrap()
        .resource("downstream")
        .unwrap()
        .inputs["label"]
        .clone();

    let plan = preview(&engine, &program(2, true)).await;
    let step = |name: &str| {
        plan.record()
            .steps
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .op
    };
    assert_eq!(
        (step("upstream"), step("downstream")),
        (Operation::Update, Operation::Update)
    );
    let summary = engine
        .apply(&program(2, true), &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary:?}");

    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("dev.json")).unwrap()).unwrap();
    let downstream = stored["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "downstream")
        .unwrap();
    assert_eq!(downstream["secrets"], json!(["label"]));
    assert_ne!(
        downstream["inputs"]["label"], arn,
        "the value is stored sealed"
    );
    assert!(
        downstream["inputs"]["label"]
            .as_str()
            .unwrap()
            .starts_with("enc:v1:"),
        "{}",
        downstream["inputs"]["label"]
    );
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_stays_pending_and_is_adopted_not_repeated() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    provider.lose_answer(CallKind::Create, "subnet-a");
    provider.fail(CallKind::Create, "sg", "quota exceeded");
    let program = network(1);
    let summary = up(&engine, &program).await;
    assert!(!summary.is_success());
    let state = engine.state("dev").await.unwrap().unwrap();
    let pending: Vec<&str> = state.pending.values().map(|p| p.name.as_str()).collect();
    assert_eq!(
        pending,
        ["subnet-a"],
        "the lost create stays pending; the refused one changed nothing and does not"
    );
    assert!(provider.existing().contains("subnet-a"));

    provider.clear_failures();
    let report = engine.resolve_interrupted("dev", 4).await.unwrap();
    let drift: Vec<(&str, &Drift)> = report
        .drift
        .iter()
        .map(|d| (d.name.as_str(), &d.drift))
        .collect();
    assert_eq!(drift, [("subnet-a", &Drift::Adopted)]);
    assert_eq!(
        report.unchanged, 0,
        "only the interrupted operation is read"
    );

    provider.reset_calls();
    let summary = up(&engine, &program).await;
    assert!(summary.is_success(), "{summary:?}");
    let mut created = provider.names(CallKind::Create);
    created.sort();
    assert_eq!(created, ["instance", "sg"], "subnet-a is not made twice");
    assert_eq!(provider.existing().len(), 5);

    let reads_before = provider.names(CallKind::Read).len();
    let nothing = engine.resolve_interrupted("dev", 4).await.unwrap();
    assert!(nothing.drift.is_empty());
    assert_eq!(
        provider.names(CallKind::Read).len(),
        reads_before,
        "nothing to resolve, nothing read"
    );
}

#[tokio::test]
async fn a_failed_destroy_keeps_the_outputs_of_what_still_exists() {
    let program = {
        let mut s = Stack::new("dev");
        let vpc = thing(&mut s, "vpc", Inputs::new().with("cidr", "10.0.0.0/16"));
        s.export("vpc_id", vpc.id());
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &program).await;
    let before = engine.outputs("dev").await.unwrap();
    assert!(before.contains_key("vpc_id"));

    provider.fail(CallKind::Delete, "vpc", "endpoint unreachable");
    let failed = destroy(&engine, "dev").await;
    assert!(!failed.is_success());
    assert_eq!(
        engine.outputs("dev").await.unwrap(),
        before,
        "the VPC still exists, and so does its output"
    );

    provider.clear_failures();
    assert!(destroy(&engine, "dev").await.is_success());
    assert!(engine.outputs("dev").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stop_request_starts_no_new_step_and_records_the_steps_in_flight() {
    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(300)));
    let program = network(1);
    let plan = preview(&engine, &program).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = ApplyOptions {
        parallelism: 1,
        events: Some(tx),
        ..ApplyOptions::default()
    };
    // Stop as the second step starts: it is in flight when the stop comes.
    let stop = options.stop.clone();
    let stopper = tokio::spawn(async move {
        let mut started = 0;
        while let Some(event) = rx.recv().await {
            if matches!(event, iac_core::ApplyEvent::Started { .. }) {
                started += 1;
                if started == 2 {
                    stop.stop();
                }
            }
        }
    });
    let summary = engine.apply(&program, &plan, &options).await.unwrap();
    drop(options);
    stopper.await.unwrap();
    assert_eq!(
        summary.counts.create, 2,
        "the step in flight finished: {summary:?}"
    );
    assert!(summary.failed.is_empty());
    assert_eq!(summary.skipped.len(), 3);
    assert!(
        summary
            .skipped
            .iter()
            .all(|s| s.blocked_by == SkipReason::Stopped),
        "{summary:?}"
    );
    let state = engine.state("dev").await.unwrap().unwrap();
    assert!(state.pending.is_empty(), "nothing is left in flight");
    assert_eq!(state.resources.len(), 2);

    provider.reset_calls();
    let rest = up(&engine, &program).await;
    assert!(rest.is_success());
    assert_eq!(rest.counts.create, 3);
}

#[tokio::test]
async fn a_damaged_encryption_header_is_damaged_state_not_a_wrong_passphrase() {
    let program = {
        let mut s = Stack::new("dev");
        thing(
            &mut s,
            "db",
            Inputs::new().with("password", Output::secret("hunter2".to_owned())),
        );
        s.build().expect("valid")
    };
    let (_provider, engine, dir) = setup(TestProvider::new());
    up(&engine, &program).await;
    let path = dir.path().join("dev.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    state["encryption"]["salt"] = json!("not base64!");
    std::fs::write(&path, state.to_string()).unwrap();
    let err = engine.state("dev").await.unwrap_err();
    assert!(
        !err.is_user_error(),
        "damaged state is a failure, not the user's to fix: {err}"
    );
    assert_eq!(
        err.to_string(),
        "secret `encryption header` in the state of stack `dev` cannot be decrypted: the state file is damaged"
    );
}

#[tokio::test]
async fn a_destroy_deletes_resources_and_only_forgets_data_sources() {
    let program = {
        let mut s = Stack::new("dev");
        let ami = s.read(LOOKUP, "ami", Inputs::new().with("query", "debian"));
        let vm = thing(
            &mut s,
            "vm",
            Inputs::new().with("image", ami.output::<String>("value")),
        );
        thing(&mut s, "disk", Inputs::new().with("vm", vm.id()));
        s.build().expect("valid")
    };
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &program).await;
    let empty = Program::empty("dev").unwrap();
    let plan = preview(&engine, &empty).await;
    let text = plan.render();
    assert!(text.contains("Resources: 2 to delete\n"), "{text}");
    assert!(
        !text.contains("ami"),
        "a data source is not deleted: {text}"
    );
    let summary = engine
        .destroy("dev", &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success());
    assert_eq!(
        summary.counts.to_string(),
        "0 created, 0 updated, 0 replaced, 2 deleted, 0 unchanged"
    );
    assert!(
        engine
            .state("dev")
            .await
            .unwrap()
            .unwrap()
            .resources
            .is_empty()
    );
    assert!(provider.existing().is_empty());
}

#[tokio::test]
async fn a_replacement_asked_for_runs_the_normal_replacement_and_survives_a_saved_plan() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let program = network(1);
    up_with(&engine, &program, 4).await;
    let before = engine.state("dev").await.unwrap().unwrap();
    let old_id = before.resource("subnet-a").unwrap().id.clone();

    let options = iac_core::PlanOptions {
        replace: ["subnet-a".to_owned()].into(),
        ..iac_core::PlanOptions::default()
    };
    let plan = engine.preview_with(&program, &options).await.unwrap();
    let text = plan.render();
    assert!(
        text.contains("(replacement asked for) (forces replacement)"),
        "{text}"
    );
    let counts = plan.record().counts();
    assert_eq!(
        (counts.replace, counts.create, counts.delete),
        (1, 0, 0),
        "{text}"
    );

    // Saved and applied: the replacement is part of the plan file.
    let saved = iac_core::PlanRecord::from_json(&plan.record().to_json()).unwrap();
    assert_eq!(saved.replace, options.replace);
    let summary = engine
        .apply_saved(&program, &saved, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    assert_eq!(summary.counts.replace, 1, "{summary}");
    let after = engine.state("dev").await.unwrap().unwrap();
    assert_ne!(after.resource("subnet-a").unwrap().id, old_id);
    assert_eq!(provider.existing().len(), 5, "the old subnet is gone");
    assert!(!engine.preview(&program).await.unwrap().has_changes());

    // What cannot be replaced is refused before anything runs, each with its reason.
    let wrong = iac_core::PlanOptions {
        replace: ["nope".to_owned()].into(),
        ..iac_core::PlanOptions::default()
    };
    let refused = engine.preview_with(&program, &wrong).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "resource `nope` cannot be replaced: the program has no resource of that name"
    );
}

#[tokio::test]
async fn a_replacement_answered_with_the_old_object_keeps_it() {
    // The provider adopts what has the same natural key: the replacement's create answers
    // with the old subnet itself, which must then not be deleted as "the old one".
    let provider = Arc::new(
        TestProvider::new()
            .replace_on(["cidr"])
            .adopting_on_create(["subnet-a"]),
    );
    let dir = TempDir::new().expect("temp dir");
    let engine = engine(&provider, dir.path());
    let subnet = |cidr: &str| {
        let mut s = Stack::new("dev");
        thing(&mut s, "subnet-a", Inputs::new().with("cidr", cidr));
        s.build().expect("valid program")
    };
    up_with(&engine, &subnet("10.0.1.0/24"), 1).await;
    let summary = up_with(&engine, &subnet("10.0.9.0/24"), 1).await;
    assert!(summary.is_success(), "{summary}");
    assert_eq!(provider.names(CallKind::Delete), Vec::<String>::new());
    assert!(provider.existing().contains("subnet-a"));
    let state = engine.state("dev").await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 1, "{:?}", state.resources);
}

fn targeted(targets: Targets) -> iac_core::PlanOptions {
    iac_core::PlanOptions {
        targets,
        ..iac_core::PlanOptions::default()
    }
}

/// Plans `program` with `targets`, checks the preview shows each of `shown`, and applies it.
async fn targeted_apply(
    engine: &iac_core::Engine,
    program: &iac_core::Program,
    targets: Targets,
    shown: &[&str],
) -> iac_core::ApplySummary {
    let plan = engine
        .preview_with(program, &targeted(targets))
        .await
        .unwrap();
    let text = plan.render();
    for line in shown {
        assert!(text.contains(line), "{text}");
    }
    let summary = engine
        .apply(program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    summary
}

#[tokio::test]
async fn a_targeted_plan_covers_the_targets_and_what_they_need_and_leaves_the_rest() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    // On a new stack: only the subnet and the VPC it needs are made.
    let program = network(1);
    let summary = targeted_apply(
        &engine,
        &program,
        Targets::only(["subnet-a"]),
        &[
            "Resources: 2 to create\n",
            "Targeted: `subnet-a` with what they need; 3 other resources not targeted, left as they are",
        ],
    )
    .await;
    assert!(
        summary
            .to_string()
            .contains(", 0 skipped, 3 not targeted in "),
        "{summary}"
    );
    assert_eq!(
        provider.existing(),
        ["subnet-a", "vpc"].map(String::from).into()
    );
    // The stack output that needs what was not made keeps no value; the full plan makes the rest.
    let rest = preview(&engine, &program).await;
    assert_eq!(rest.record().counts().create, 3, "{}", rest.render());
    up(&engine, &program).await;

    // A change of the instance is left alone while the security group is targeted.
    let changed = network_of(
        2,
        ("vpc", ResourceOptions::default()),
        Inputs::new().with("rule", "22"),
    );
    provider.reset_calls();
    let plan = engine
        .preview_with(&changed, &targeted(Targets::only(["sg"])))
        .await
        .unwrap();
    let counts = plan.record().counts();
    assert_eq!(
        (counts.update, counts.same, plan.record().untargeted),
        (1, 1, 3)
    );
    let summary = engine
        .apply(&changed, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    assert_eq!(provider.names(CallKind::Update), vec!["sg".to_owned()]);
    assert_eq!(
        provider.inputs_of("instance").unwrap()["size"],
        serde_json::json!(1)
    );
    // A saved targeted plan is applied with its targets.
    let plan = engine
        .preview_with(&changed, &targeted(Targets::only(["instance"])))
        .await
        .unwrap();
    let saved = iac_core::PlanRecord::from_json(&plan.record().to_json()).unwrap();
    assert_eq!(saved.targets, Targets::only(["instance"]));
    let summary = engine
        .apply_saved(&changed, &saved, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.counts.update, 1, "{summary}");
    assert!(!preview(&engine, &changed).await.has_changes());
}

#[tokio::test]
async fn a_plan_of_every_resource_but_some_leaves_those_unless_another_needs_them() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let program = network(1);
    // What the others need is covered even when excluded: the VPC is made.
    let plan = engine
        .preview_with(&program, &targeted(Targets::all_but(["vpc", "absent"])))
        .await
        .unwrap();
    assert_eq!(plan.record().counts().create, 5, "{}", plan.render());
    // A leaf excluded is left out.
    targeted_apply(
        &engine,
        &program,
        Targets::all_but(["instance"]),
        &[
            "Resources: 4 to create\n",
            "Targeted: every resource but `instance` with what they need; 1 other resource not targeted, left as it is",
        ],
    )
    .await;
    assert!(!provider.existing().contains("instance"));
    up(&engine, &program).await;
    // Changed later, the excluded one keeps what it had while the rest is updated.
    let changed = network_of(
        2,
        ("vpc", ResourceOptions::default()),
        Inputs::new().with("rule", "22"),
    );
    targeted_apply(&engine, &changed, Targets::all_but(["instance"]), &[]).await;
    assert_eq!(
        provider.inputs_of("instance").unwrap()["size"],
        serde_json::json!(1)
    );
    assert_eq!(
        provider.inputs_of("sg").unwrap()["rule"],
        serde_json::json!("22")
    );
}

#[tokio::test]
async fn a_targeted_replacement_or_delete_takes_its_dependents_or_is_refused() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let program = network(1);
    up(&engine, &program).await;
    let replace_vpc = |targets: Targets| iac_core::PlanOptions {
        replace: ["vpc".to_owned()].into(),
        targets,
    };
    let refused = engine
        .preview_with(&program, &replace_vpc(Targets::only(["vpc"])))
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "resource `vpc` would be replaced, but `sg`, `subnet-a`, `subnet-b` depend on it and are not targeted: target them too, or target with dependents"
    );
    let plan = engine
        .preview_with(
            &program,
            &replace_vpc(Targets::only(["vpc"]).with_dependents()),
        )
        .await
        .unwrap();
    assert_eq!(
        plan.record().untargeted,
        0,
        "the instance needs the subnets"
    );

    let unknown = engine
        .preview_with(&program, &targeted(Targets::only(["nope"])))
        .await
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "target `nope`: the program has no resource of that name and the stack records none"
    );

    // A targeted destroy deletes the target and what depends on it, nothing else.
    let empty = Program::empty("dev").unwrap();
    let plan = engine
        .preview_with(
            &empty,
            &targeted(Targets::only(["subnet-a"]).with_dependents()),
        )
        .await
        .unwrap();
    assert_eq!(plan.record().untargeted, 3, "{}", plan.render());
    let summary = engine
        .apply(&empty, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    assert_eq!(
        provider.names(CallKind::Delete),
        vec!["instance".to_owned(), "subnet-a".to_owned()]
    );
    assert_eq!(
        provider.existing(),
        ["sg", "subnet-b", "vpc"].map(String::from).into()
    );
}

#[tokio::test]
async fn a_targeted_refresh_reads_the_targets_and_what_they_need() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &network(1)).await;
    provider.tamper("instance", "size", serde_json::json!(7));
    provider.tamper("vpc", "cidr", serde_json::json!("10.9.0.0/16"));
    provider.reset_calls();
    let report = engine
        .refresh_targets("dev", &Targets::only(["subnet-a"]), 4)
        .await
        .unwrap();
    let mut read = provider.names(CallKind::Read);
    read.sort();
    assert_eq!(read, vec!["subnet-a".to_owned(), "vpc".to_owned()]);
    assert_eq!(
        (report.drift.len(), report.unchanged, report.untargeted),
        (1, 1, 3)
    );
    assert_eq!(report.drift[0].name, "vpc");
    let report = engine
        .refresh_targets("dev", &Targets::only(["subnet-a"]).with_dependents(), 4)
        .await
        .unwrap();
    assert_eq!(
        report
            .drift
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["instance"]
    );
    assert_eq!(report.untargeted, 1, "the instance needs subnet-b too");
}

#[tokio::test]
async fn an_alias_moves_a_renamed_resource_and_its_dependents_follow() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    up(&engine, &network(1)).await;
    let before = engine.state("dev").await.unwrap().unwrap();
    // `vpc` is now `network`: the subnets and the group reference it by its new name.
    let renamed = || {
        let vpc = ("network", ResourceOptions::new().aliases(["vpc"]));
        network_of(1, vpc, Inputs::new())
    };
    let program = renamed();
    let plan = preview(&engine, &program).await;
    let text = plan.render();
    assert!(
        text.contains(" => test:Thing  network  moved from `vpc`"),
        "{text}"
    );
    assert!(
        text.contains("Resources: 1 to move, 5 unchanged\n"),
        "{text}"
    );
    assert!(plan.has_changes());
    // Saved and applied exactly: nothing is made or deleted.
    let saved = PlanRecord::from_json(&plan.record().to_json()).unwrap();
    provider.reset_calls();
    let summary = engine
        .apply_saved(&program, &saved, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    assert_eq!(provider.mutations(), 0, "{:?}", provider.calls());
    let after = engine.state("dev").await.unwrap().unwrap();
    assert!(after.resource("vpc").is_none());
    assert_eq!(
        after.resource("network").unwrap().id,
        before.resource("vpc").unwrap().id
    );
    assert_eq!(
        after.resource("subnet-a").unwrap().dependencies,
        ["network"]
    );
    assert!(
        !preview(&engine, &renamed()).await.has_changes(),
        "the alias has done its work"
    );

    // An alias that is a registered name, or two resources with one alias, are refused.
    let mut s = Stack::new("dev");
    thing_with(
        &mut s,
        "a",
        Inputs::new(),
        ResourceOptions::new().aliases(["b"]),
    );
    thing(&mut s, "b", Inputs::new());
    thing_with(
        &mut s,
        "c",
        Inputs::new(),
        ResourceOptions::new().aliases(["old"]),
    );
    thing_with(
        &mut s,
        "d",
        Inputs::new(),
        ResourceOptions::new().aliases(["old"]),
    );
    let refused = s.build().unwrap_err().to_string();
    assert!(
        refused.contains(
            "resource `a` in stack `dev` has the alias `b`, but a registered resource has that name"
        ),
        "{refused}"
    );
    assert!(
        refused.contains("has the alias `old`, but so has `c`"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_import_adopts_an_existing_object_and_the_next_plan_shows_the_difference() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let program = network(1);
    let mut found = iac_core::PropertyMap::new();
    found.insert("cidr".into(), json!("10.0.0.0/16"));
    found.insert("team".into(), json!("other"));
    let id = provider.create_out_of_band(THING, found);

    // What cannot be imported is refused, each with its reason, and nothing is recorded.
    let refused = |result: Result<iac_core::state::ResourceState, EngineError>| {
        result.unwrap_err().to_string()
    };
    assert_eq!(
        refused(engine.import(&program, THING, "nope", &id).await),
        "`nope` in stack `dev`: the program has no resource of that name: add it to the program first"
    );
    assert_eq!(
        refused(engine.import(&program, LOOKUP, "vpc", &id).await),
        "`vpc` in stack `dev`: the program makes it a `test:Thing`, not a `test:Lookup`"
    );
    assert_eq!(
        refused(engine.import(&program, THING, "vpc", "oob-missing").await),
        "cannot import `oob-missing` as `vpc` into stack `dev`: no test:Thing has the id `oob-missing`"
    );
    assert!(engine.state("dev").await.unwrap().is_none());

    let record = engine.import(&program, THING, "vpc", &id).await.unwrap();
    assert_eq!(
        (record.id.as_str(), record.inputs["team"].clone()),
        (id.as_str(), json!("other"))
    );
    // The next plan creates the rest and takes the extra input away from the imported one.
    let plan = preview(&engine, &program).await;
    let text = plan.render();
    assert!(
        text.contains("Resources: 4 to create, 1 to update\n"),
        "{text}"
    );
    assert!(text.contains("- team: \"other\""), "{text}");
    up(&engine, &program).await;
    assert_eq!(provider.inputs_of("vpc").unwrap().get("team"), None);

    // Imported once, never twice: not under another name, not what another resource owns.
    assert!(
        refused(engine.import(&program, THING, "vpc", &id).await)
            .contains("the stack records it already")
    );
    let subnet = recorded_id(&engine, "dev", "subnet-a").await;
    let other = Stack::new("other");
    let mut other = other;
    thing(&mut other, "vpc", Inputs::new());
    let other = other.build().unwrap();
    assert_eq!(
        refused(engine.import(&other, THING, "vpc", &subnet).await),
        format!(
            "cannot import `{subnet}` as `vpc` into stack `other`: `{subnet}` belongs to `subnet-a`"
        )
    );
}

#[tokio::test]
async fn a_stack_reads_another_stack_s_outputs_through_a_reference() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let app = |secrets: &[&str]| {
        let mut s = Stack::new("app");
        let network = s.reference("network", "net", secrets.iter().copied());
        thing(
            &mut s,
            "server",
            Inputs::new().with("vpc", network.output::<String>("vpc_id")),
        );
        if !secrets.is_empty() {
            thing(
                &mut s,
                "client",
                Inputs::new().with("token", network.output::<String>("token")),
            );
        }
        s.build().unwrap()
    };
    let refused = engine.preview(&app(&[])).await.unwrap_err().to_string();
    assert_eq!(
        refused,
        "resource `network`: provider read failed: stack `net` has no state in this backend: apply it first"
    );

    let mut net = Stack::new("net");
    let vpc = thing(&mut net, "vpc", Inputs::new().with("cidr", "10.0.0.0/16"));
    net.export("vpc_id", vpc.id());
    net.export("token", Output::secret("s3cr3t".to_owned()));
    up(&engine, &net.build().unwrap()).await;
    let vpc_id = recorded_id(&engine, "net", "vpc").await;

    // Known at preview: the server's input is the other stack's VPC id.
    let plan = preview(&engine, &app(&[])).await;
    let text = plan.render();
    assert!(text.contains(&format!("vpc: \"{vpc_id}\"")), "{text}");
    up(&engine, &app(&[])).await;
    assert_eq!(provider.inputs_of("server").unwrap()["vpc"], json!(vpc_id));

    // A secret output is read only when named, and stays secret.
    let plan = preview(&engine, &app(&["token"])).await;
    let text = plan.render();
    assert!(text.contains("token: [secret]"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    up(&engine, &app(&["token"])).await;
    assert_eq!(
        provider.inputs_of("client").unwrap()["token"],
        json!("s3cr3t")
    );
    let mut unnamed = Stack::new("app");
    let network = unnamed.reference("network", "net", Vec::<String>::new());
    thing(
        &mut unnamed,
        "client",
        Inputs::new().with("token", network.output::<String>("token")),
    );
    let refused = engine
        .preview(&unnamed.build().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("resource `network` has no output `token`"),
        "{refused}"
    );

    let mut itself = Stack::new("net");
    itself.reference("me", "net", Vec::<String>::new());
    let refused = engine
        .preview(&itself.build().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("stack `net` cannot reference itself"),
        "{refused}"
    );
}
