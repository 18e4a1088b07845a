//! Rolling groups: members that change one at a time, in the group's order, each behind
//! its gate; a gate that does not pass stops the roll.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use iac_core::testing::{CallKind, TestProvider};
use iac_core::{
    ApplyOptions, Gate, GateAnswer, GatePhase, Inputs, Operation, PlanRecord, Program,
    RollingGroup, Stack, StopSignal,
};
use serde_json::Value;
use tempfile::TempDir;

/// What a gate was asked: when, at which phase, about which member, with which input.
type Asked = Arc<Mutex<Vec<(Instant, GatePhase, String, Value)>>>;

/// A gate that answers as `answer` says and records every question.
struct TestGate {
    asked: Asked,
    answer: fn(GatePhase, &str) -> GateAnswer,
    stop: Option<(StopSignal, StopWhen)>,
}

/// When a [`TestGate`] asks the apply to stop.
#[derive(Clone, Copy)]
enum StopWhen {
    /// At its first "not now".
    Waiting,
    /// As it lets this member begin.
    Begins(&'static str),
}

#[async_trait]
impl Gate for TestGate {
    fn describe(&self) -> String {
        "the test's health".to_owned()
    }

    async fn ask(&self, phase: GatePhase, member: &str, input: &Value) -> GateAnswer {
        self.asked
            .lock()
            .unwrap()
            .push((Instant::now(), phase, member.to_owned(), input.clone()));
        let answer = (self.answer)(phase, member);
        if let Some((stop, when)) = &self.stop {
            let now = match when {
                StopWhen::Waiting => matches!(answer, GateAnswer::Wait(_)),
                StopWhen::Begins(which) => (phase, member) == (GatePhase::Before, *which),
            };
            if now {
                stop.stop();
            }
        }
        answer
    }
}

fn always(_: GatePhase, _: &str) -> GateAnswer {
    GateAnswer::Pass
}

/// Three members (registered out of order: the group's order is its own), a resource that
/// depends on the last, two independent ones; every input `size = size`.
fn program(size: i64, answer: fn(GatePhase, &str) -> GateAnswer, asked: &Asked) -> Program {
    program_with(size, answer, asked, None)
}

fn program_with(
    size: i64,
    answer: fn(GatePhase, &str) -> GateAnswer,
    asked: &Asked,
    stop: Option<StopSignal>,
) -> Program {
    let mut stack = Stack::new("dev");
    let sized = || Inputs::new().with("size", size);
    let third = thing(&mut stack, "node-3", sized());
    let first = thing(&mut stack, "node-1", sized());
    let second = thing(&mut stack, "node-2", sized());
    thing(&mut stack, "after-3", sized().with("on", third.id()));
    thing(&mut stack, "other-a", sized());
    thing(&mut stack, "other-b", sized());
    let input = thing(&mut stack, "address", Inputs::new().with("size", 1));
    stack.rolling_group(
        RollingGroup::new(
            "nodes",
            TestGate {
                asked: asked.clone(),
                answer,
                stop: stop.map(|stop| (stop, StopWhen::Waiting)),
            },
        )
        .member(&first)
        .member(&second)
        .member(&third)
        .input(input.id())
        .timeout(Duration::from_millis(300))
        .interval(Duration::from_millis(10)),
    );
    stack.build().unwrap()
}

fn setup(provider: TestProvider) -> (Arc<TestProvider>, iac_core::Engine, TempDir) {
    let provider = Arc::new(provider);
    let dir = TempDir::new().unwrap();
    let engine = engine(&provider, dir.path());
    (provider, engine, dir)
}

/// The calls of `kind` to `name`: (start, end).
fn spans(provider: &TestProvider, kind: CallKind, name: &str) -> Vec<(Instant, Instant)> {
    provider
        .calls()
        .into_iter()
        .filter(|c| c.kind == kind && c.name == name)
        .map(|c| (c.start, c.end))
        .collect()
}

/// When the gate was first and last asked about `member` at `phase`.
fn asked_at(asked: &Asked, phase: GatePhase, member: &str) -> (Instant, Instant) {
    let times: Vec<Instant> = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p, m, _)| *p == phase && m == member)
        .map(|(t, ..)| *t)
        .collect();
    assert!(
        !times.is_empty(),
        "the gate was never asked {phase:?} {member}"
    );
    (times[0], times[times.len() - 1])
}

#[tokio::test]
async fn members_change_one_at_a_time_in_the_group_s_order_each_between_its_gates() {
    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(40)));
    let asked = Asked::default();
    // Created: no roll, no gate, as parallel as ever.
    let created = up_with(&engine, &program(1, always, &asked), 10).await;
    assert!(created.is_success(), "{created}");
    assert!(asked.lock().unwrap().is_empty(), "creates do not roll");
    assert!(provider.max_in_flight() >= 3);

    provider.reset_calls();
    let changed = program(2, always, &asked);
    let plan = preview(&engine, &changed).await;
    let rolls = &plan.record().rolls;
    assert_eq!(rolls.len(), 1);
    assert_eq!(rolls[0].members, ["node-1", "node-2", "node-3"]);
    assert!(
        plan.render().contains(
            "\nRolling, one at a time:\n  nodes: node-1 → node-2 → node-3, gate: the test's health (before and after each, up to 300ms)\n"
        ),
        "{}",
        plan.render()
    );
    let options = ApplyOptions {
        parallelism: 10,
        ..ApplyOptions::default()
    };
    let summary = engine.apply(&changed, &plan, &options).await.unwrap();
    assert!(summary.is_success(), "{summary}");
    assert_eq!(summary.counts.update, 6);

    // before node-1, node-1, after node-1, before node-2, …: never two members at once.
    let mut last_end = None;
    for member in ["node-1", "node-2", "node-3"] {
        let (before, _) = asked_at(&asked, GatePhase::Before, member);
        let [(start, end)] = spans(&provider, CallKind::Update, member)[..] else {
            panic!("{member} is updated once");
        };
        let (after, _) = asked_at(&asked, GatePhase::After, member);
        if let Some(previous) = last_end {
            assert!(
                previous <= before,
                "{member} begins after the one before it and its gate"
            );
        }
        assert!(
            before <= start && end <= after,
            "{member} between its gates"
        );
        last_end = Some(after);
    }
    // The gate read its input, resolved: the id of `address`.
    let input = asked.lock().unwrap()[0].3.clone();
    assert!(input.as_str().is_some_and(|id| !id.is_empty()), "{input}");
    // Everything else ran beside the roll.
    let (other, _) = spans(&provider, CallKind::Update, "other-a")[0];
    let (roll_start, _) = asked_at(&asked, GatePhase::Before, "node-1");
    let (_, roll_end) = asked_at(&asked, GatePhase::After, "node-3");
    assert!(other < roll_end && roll_start < roll_end);
    assert!(
        provider.max_in_flight() >= 2,
        "independent resources still run in parallel"
    );
}

/// `why` when asked about `member` at `phase`, else a pass.
fn waits(asked: (GatePhase, &str), at: (GatePhase, &str), why: &str) -> GateAnswer {
    if asked == at {
        GateAnswer::Wait(why.to_owned())
    } else {
        GateAnswer::Pass
    }
}

/// Applies the program (created: no roll), then changes every member behind a gate that
/// answers as `answer`: the provider, the engine, its state, what the gate was asked, and
/// the second apply's summary.
async fn roll_behind(
    answer: fn(GatePhase, &str) -> GateAnswer,
) -> (
    Arc<TestProvider>,
    iac_core::Engine,
    TempDir,
    Asked,
    iac_core::ApplySummary,
) {
    let (provider, engine, dir) = setup(TestProvider::new());
    let asked = Asked::default();
    assert!(up(&engine, &program(1, answer, &asked)).await.is_success());
    let summary = up(&engine, &program(2, answer, &asked)).await;
    (provider, engine, dir, asked, summary)
}

fn refuses_node_2(phase: GatePhase, member: &str) -> GateAnswer {
    let why = "node-2 holds the last in-sync replica of orders-0";
    waits((phase, member), (GatePhase::Before, "node-2"), why)
}

#[tokio::test]
async fn a_gate_that_refuses_a_member_stops_the_roll_before_it_is_touched() {
    let (provider, engine, _dir, asked, summary) = roll_behind(refuses_node_2).await;
    let failed: Vec<(&str, &str)> = summary
        .failed
        .iter()
        .map(|f| (f.name.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(
        failed,
        [(
            "node-2",
            "the gate of rolling group `nodes` did not pass before node-2 within 300ms: node-2 holds the last in-sync replica of orders-0"
        )]
    );
    let mut skipped: Vec<(&str, String)> = summary
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.blocked_by.to_string()))
        .collect();
    skipped.sort_unstable();
    assert_eq!(
        skipped,
        [
            ("after-3", "needs node-2".to_owned()),
            ("node-3", "needs node-2".to_owned())
        ]
    );
    // node-1 rolled; node-2 and node-3 stay as they were.
    let size = |name: &str| provider.inputs_of(name).unwrap()["size"].clone();
    assert_eq!(size("node-1"), 2);
    assert_eq!(size("node-2"), 1);
    assert_eq!(size("node-3"), 1);
    assert!(spans(&provider, CallKind::Update, "node-2").is_empty());
    // What was done is recorded: the next plan rolls only the rest.
    let plan = preview(&engine, &program(2, always, &asked)).await;
    assert_eq!(plan.record().rolls[0].members, ["node-2", "node-3"]);
    assert!(up(&engine, &program(2, always, &asked)).await.is_success());
    assert_eq!(size("node-3"), 2);
}

fn never_healthy_after_node_1(phase: GatePhase, member: &str) -> GateAnswer {
    let why = "1 under-replicated partition";
    waits((phase, member), (GatePhase::After, "node-1"), why)
}

#[tokio::test]
async fn a_gate_that_times_out_after_a_member_fails_it_with_the_last_answer_and_keeps_its_change() {
    let (provider, _engine, _dir, asked, summary) = roll_behind(never_healthy_after_node_1).await;
    assert_eq!(summary.failed.len(), 1, "{summary}");
    assert_eq!(summary.failed[0].name, "node-1");
    assert_eq!(
        summary.failed[0].error,
        "the update is done, but the gate of rolling group `nodes` did not pass after node-1 within 300ms: 1 under-replicated partition"
    );
    let skipped: Vec<&str> = summary.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(provider.inputs_of("node-1").unwrap()["size"], 2);
    assert_eq!(provider.inputs_of("node-2").unwrap()["size"], 1);
    // The gate was asked again and again until the time ran out.
    let after = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p, m, _)| *p == GatePhase::After && m == "node-1")
        .count();
    assert!(after >= 5, "asked {after} times");
}

#[tokio::test]
async fn a_saved_plan_rolls_as_it_was_previewed() {
    let (provider, engine, _dir) =
        setup(TestProvider::new().with_latency(Duration::from_millis(10)));
    let asked = Asked::default();
    assert!(up(&engine, &program(1, always, &asked)).await.is_success());
    let saved = preview(&engine, &program(2, always, &asked))
        .await
        .record()
        .to_json();
    let saved = PlanRecord::from_json(&saved).unwrap();
    assert_eq!(saved.rolls[0].members, ["node-1", "node-2", "node-3"]);
    let summary = engine
        .apply_saved(
            &program(2, always, &asked),
            &saved,
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary}");
    let [(_, end)] = spans(&provider, CallKind::Update, "node-1")[..] else {
        panic!("node-1 is updated once");
    };
    let [(start, _)] = spans(&provider, CallKind::Update, "node-2")[..] else {
        panic!("node-2 is updated once");
    };
    assert!(end <= start, "one at a time");
    assert!(
        asked_at(&asked, GatePhase::After, "node-3").0 >= start,
        "the gates are asked"
    );
}

#[tokio::test]
async fn a_stop_while_a_member_waits_for_its_gate_leaves_it_and_the_rest_untouched() {
    let (provider, engine, _dir) = setup(TestProvider::new());
    let asked = Asked::default();
    assert!(up(&engine, &program(1, always, &asked)).await.is_success());
    let stop = StopSignal::new();
    let changed = program_with(2, refuses_node_2, &asked, Some(stop.clone()));
    let plan = preview(&engine, &changed).await;
    let options = ApplyOptions {
        stop,
        ..ApplyOptions::default()
    };
    let summary = engine.apply(&changed, &plan, &options).await.unwrap();
    assert!(summary.failed.is_empty(), "{summary}");
    let mut skipped: Vec<(&str, String)> = summary
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.blocked_by.to_string()))
        .collect();
    skipped.sort_unstable();
    assert_eq!(
        skipped.iter().find(|(name, _)| *name == "node-2"),
        Some(&("node-2", "not started: the stop request".to_owned()))
    );
    assert_eq!(provider.inputs_of("node-1").unwrap()["size"], 2);
    assert_eq!(provider.inputs_of("node-2").unwrap()["size"], 1);
    assert_eq!(provider.inputs_of("node-3").unwrap()["size"], 1);
}

#[tokio::test]
async fn replacements_roll_too_each_old_member_gone_before_the_next_begins() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["size"]));
    let asked = Asked::default();
    assert!(up(&engine, &program(1, always, &asked)).await.is_success());
    let changed = program(2, always, &asked);
    let plan = preview(&engine, &changed).await;
    assert!(
        plan.record()
            .steps
            .iter()
            .filter(|s| s.name.starts_with("node-"))
            .all(|s| s.op == Operation::Replace)
    );
    let summary = up(&engine, &changed).await;
    assert!(summary.is_success(), "{summary}");
    let deleted = |name| spans(&provider, CallKind::Delete, name)[0].1;
    let created = |name| spans(&provider, CallKind::Create, name).last().unwrap().0;
    assert!(deleted("node-1") <= created("node-2"));
    assert!(deleted("node-2") <= created("node-3"));
    assert!(asked_at(&asked, GatePhase::After, "node-1").0 >= deleted("node-1"));
}

#[test]
fn a_group_that_cannot_roll_is_refused_at_registration() {
    let asked = Asked::default();
    let gate = || TestGate {
        asked: asked.clone(),
        answer: always,
        stop: None,
    };
    let mut stack = Stack::new("dev");
    let base = thing(&mut stack, "base", Inputs::new());
    let on_base = thing(&mut stack, "on-base", Inputs::new().with("on", base.id()));
    let lookup = stack.read(LOOKUP, "lookup", Inputs::new());
    let mut elsewhere = Stack::new("other");
    let stranger = thing(&mut elsewhere, "stranger", Inputs::new());
    stack.rolling_group(
        RollingGroup::new("backwards", gate())
            .member(&on_base)
            .member(&base),
    );
    stack.rolling_group(
        RollingGroup::new("again", gate())
            .member(&base)
            .member(&lookup),
    );
    stack.rolling_group(RollingGroup::new("foreign", gate()).member(&stranger));
    let peer = thing(&mut stack, "peer", Inputs::new());
    let reader = thing(&mut stack, "reader", Inputs::new().with("on", peer.id()));
    stack.rolling_group(
        RollingGroup::new("circular", gate())
            .member(&peer)
            .reads(&reader),
    );
    let member = thing(&mut stack, "member", Inputs::new());
    let member_two = thing(&mut stack, "member-two", Inputs::new());
    let later = thing(&mut stack, "later", Inputs::new());
    let unrelated = thing(&mut stack, "unrelated", Inputs::new());
    let waits_for_later = thing(
        &mut stack,
        "waits",
        Inputs::new()
            .with("on", member_two.id())
            .with("also", later.id()),
    );
    stack.rolling_group(
        RollingGroup::new("completions", gate())
            .completed_by(&unrelated)
            .member(&member)
            .completed_by(&unrelated),
    );
    stack.rolling_group(
        RollingGroup::new("ahead", gate())
            .member(&member_two)
            .completed_by(&waits_for_later)
            .member(&later),
    );
    let errors: Vec<String> = stack
        .build()
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "rolling group `backwards` in stack `dev`: `on-base` rolls before `base`, which it depends on: list `base` first",
            "rolling group `again` in stack `dev`: `base` is a member of `backwards` too: a resource rolls in one group",
            "rolling group `again` in stack `dev`: `lookup` is a data source, which never changes: only resources roll",
            "rolling group `foreign` in stack `dev`: `stranger` is a resource of stack `other`: a group rolls its own stack's resources",
            "rolling group `circular` in stack `dev`: its gate reads `reader`, which depends on its member `peer`: the roll would wait for itself; let `reader` start without `peer`",
            "rolling group `completions` in stack `dev`: `unrelated` completes no member: call completed_by after the member it completes",
            "rolling group `completions` in stack `dev`: `unrelated` completes `member` but does not depend on it: make it read one of `member`'s outputs or depend on it",
            "rolling group `ahead` in stack `dev`: `waits` completes `member-two` but depends on `later`, which rolls after it: the roll would wait for itself; let `waits` read only what is known before `later` changes",
        ]
    );
}

/// A gate that always passes and asks for its own order.
struct Ordering(fn(&[String]) -> Vec<String>);

#[async_trait]
impl Gate for Ordering {
    fn describe(&self) -> String {
        "its own order".to_owned()
    }

    async fn ask(&self, _: GatePhase, _: &str, _: &Value) -> GateAnswer {
        GateAnswer::Pass
    }

    async fn order(&self, members: &[String], _: &Value) -> Vec<String> {
        (self.0)(members)
    }
}

fn ordered(size: i64, order: fn(&[String]) -> Vec<String>) -> Program {
    let mut stack = Stack::new("dev");
    let sized = || Inputs::new().with("size", size);
    let first = thing(&mut stack, "node-1", sized());
    let second = thing(&mut stack, "node-2", sized());
    let third = thing(&mut stack, "node-3", sized().with("on", second.id()));
    stack.rolling_group(
        RollingGroup::new("nodes", Ordering(order))
            .member(&first)
            .member(&second)
            .member(&third),
    );
    stack.build().unwrap()
}

/// The order the members were updated in.
fn update_order(provider: &TestProvider) -> Vec<String> {
    let mut updates: Vec<_> = provider
        .calls()
        .into_iter()
        .filter(|c| c.kind == CallKind::Update)
        .collect();
    updates.sort_by_key(|c| c.start);
    updates.into_iter().map(|c| c.name).collect()
}

#[tokio::test]
async fn a_gate_may_reorder_the_roll_but_never_before_what_a_member_depends_on() {
    // node-1 last (a cluster's leader, say).
    let (provider, engine, _dir) = setup(TestProvider::new());
    let leader_last = |members: &[String]| {
        let mut order = members.to_vec();
        order.rotate_left(1);
        order
    };
    assert!(up(&engine, &ordered(1, leader_last)).await.is_success());
    provider.reset_calls();
    assert!(up(&engine, &ordered(2, leader_last)).await.is_success());
    assert_eq!(update_order(&provider), ["node-2", "node-3", "node-1"]);
    // node-3 before node-2, which it depends on: the group's own order.
    let backwards = |members: &[String]| members.iter().rev().cloned().collect();
    provider.reset_calls();
    assert!(up(&engine, &ordered(3, backwards)).await.is_success());
    assert_eq!(update_order(&provider), ["node-1", "node-2", "node-3"]);
    // Not a reordering of the members: the group's own order.
    let nonsense = |_: &[String]| vec!["node-9".to_owned()];
    provider.reset_calls();
    assert!(up(&engine, &ordered(4, nonsense)).await.is_success());
    assert_eq!(update_order(&provider), ["node-1", "node-2", "node-3"]);
}

#[tokio::test]
async fn a_stop_while_a_delete_first_member_is_down_brings_it_back_behind_its_gate_first() {
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["size"]));
    let (asked, stop) = (Asked::default(), StopSignal::new());
    let program = |size: i64| {
        let mut stack = Stack::new("dev");
        let options = || iac_core::ResourceOptions::new().delete_before_replace();
        let sized = || Inputs::new().with("size", size);
        let nodes: Vec<_> = (1..=3)
            .map(|n| thing_with(&mut stack, &format!("node-{n}"), sized(), options()))
            .collect();
        let gate = TestGate {
            asked: asked.clone(),
            answer: always,
            stop: Some((stop.clone(), StopWhen::Begins("node-1"))),
        };
        let mut group = RollingGroup::new("nodes", gate).interval(Duration::from_millis(10));
        for node in &nodes {
            group = group.member(node);
        }
        stack.rolling_group(group);
        stack.build().unwrap()
    };
    assert!(up(&engine, &program(1)).await.is_success());
    asked.lock().unwrap().clear();
    let changed = program(2);
    let plan = preview(&engine, &changed).await;
    let options = ApplyOptions {
        stop: stop.clone(),
        ..ApplyOptions::default()
    };
    let summary = engine.apply(&changed, &plan, &options).await.unwrap();
    assert!(summary.failed.is_empty(), "{summary}");
    // node-1 was down when the stop came: it is back, and its gate was asked after it.
    assert_eq!(provider.inputs_of("node-1").unwrap()["size"], 2);
    assert!(
        asked_at(&asked, GatePhase::After, "node-1").0
            >= spans(&provider, CallKind::Create, "node-1")
                .last()
                .unwrap()
                .1
    );
    let skipped: Vec<&str> = summary.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["node-2", "node-3"], "{summary}");
    assert_eq!(provider.inputs_of("node-2").unwrap()["size"], 1);
    assert_eq!(provider.inputs_of("node-3").unwrap()["size"], 1);
}

fn refuses_all(_: GatePhase, member: &str) -> GateAnswer {
    GateAnswer::Wait(format!("{member} may not go now"))
}

#[tokio::test]
async fn a_group_of_updates_only_rolls_what_changes_in_place_and_leaves_replacements_to_the_graph()
{
    let (provider, engine, _dir) = setup(TestProvider::new().replace_on(["image"]));
    let asked = Asked::default();
    let program = |size: i64, image: &str, answer: fn(GatePhase, &str) -> GateAnswer| {
        let mut stack = Stack::new("dev");
        let inputs = || Inputs::new().with("size", size).with("image", image);
        let nodes: Vec<_> = (1..=3)
            .map(|n| thing(&mut stack, &format!("node-{n}"), inputs()))
            .collect();
        let gate = TestGate {
            asked: asked.clone(),
            answer,
            stop: None,
        };
        let mut group = RollingGroup::new("nodes", gate)
            .updates_only()
            .timeout(Duration::from_millis(300))
            .interval(Duration::from_millis(10));
        for node in &nodes {
            group = group.member(node);
        }
        stack.rolling_group(group);
        stack.build().unwrap()
    };
    assert!(up(&engine, &program(1, "a", always)).await.is_success());

    // Changed in place: one at a time, behind the gate.
    let resized = program(2, "a", always);
    let plan = preview(&engine, &resized).await;
    assert_eq!(plan.record().rolls.len(), 1);
    assert!(up(&engine, &resized).await.is_success());
    let updated = |n: usize| spans(&provider, CallKind::Update, &format!("node-{n}"))[0];
    assert!(updated(1).1 <= updated(2).0 && updated(2).1 <= updated(3).0);
    assert!(asked_at(&asked, GatePhase::After, "node-3").0 >= updated(3).1);

    // Replaced: not rolled, so a gate that refuses everything is never asked.
    asked.lock().unwrap().clear();
    let reimaged = program(2, "b", refuses_all);
    let plan = preview(&engine, &reimaged).await;
    assert!(plan.record().rolls.is_empty(), "{:?}", plan.record().rolls);
    let summary = up(&engine, &reimaged).await;
    assert!(summary.is_success(), "{summary}");
    assert!(asked.lock().unwrap().is_empty());
    for n in 1..=3 {
        assert_eq!(
            provider.inputs_of(&format!("node-{n}")).unwrap()["image"],
            "b"
        );
    }
}

#[tokio::test]
async fn a_resource_the_gate_reads_replaced_in_the_same_apply_is_back_before_the_first_question() {
    // The admin API a cluster's gate asks, rebuilt while the brokers change: were the roll
    // to begin while the old API is stopped and the new one waits, the gate could not answer.
    let (provider, engine, _dir) = setup(
        TestProvider::new()
            .replace_on(["size"])
            .with_latency(Duration::from_millis(40)),
    );
    let asked = Asked::default();
    let program = |size: i64| {
        let mut stack = Stack::new("dev");
        let options = || iac_core::ResourceOptions::new().delete_before_replace();
        let sized = || Inputs::new().with("size", size);
        let api = thing_with(&mut stack, "api", sized(), options());
        let nodes: Vec<_> = (1..=2)
            .map(|n| thing_with(&mut stack, &format!("node-{n}"), sized(), options()))
            .collect();
        let gate = TestGate {
            asked: asked.clone(),
            answer: always,
            stop: None,
        };
        let mut group = RollingGroup::new("nodes", gate)
            .reads(&api)
            .interval(Duration::from_millis(10));
        for node in &nodes {
            group = group.member(node);
        }
        stack.rolling_group(group);
        stack.build().unwrap()
    };
    assert!(up(&engine, &program(1)).await.is_success());
    let summary = up(&engine, &program(2)).await;
    assert!(summary.is_success(), "{summary}");
    let back = spans(&provider, CallKind::Create, "api").last().unwrap().1;
    let (first_question, _) = asked_at(&asked, GatePhase::Before, "node-1");
    assert!(
        first_question >= back,
        "the gate was asked before the API it reads was back"
    );
}

#[tokio::test]
async fn a_member_completed_by_another_step_is_done_only_once_that_step_is() {
    // An AWS node: replaced (delete first: its address is fixed), then deployed onto; its
    // gate can only pass once the deployment ran, and the next node waits for both.
    let (provider, engine, _dir) = setup(
        TestProvider::new()
            .replace_on(["image"])
            .with_latency(Duration::from_millis(20)),
    );
    let asked = Asked::default();
    let program = |image: &str| {
        let mut stack = Stack::new("dev");
        let options = || iac_core::ResourceOptions::new().delete_before_replace();
        let gate = TestGate {
            asked: asked.clone(),
            answer: always,
            stop: None,
        };
        let mut group = RollingGroup::new("nodes", gate).interval(Duration::from_millis(10));
        for n in 1..=3 {
            let node = thing_with(
                &mut stack,
                &format!("node-{n}"),
                Inputs::new().with("image", image),
                options(),
            );
            let deploy = thing(
                &mut stack,
                &format!("deploy-{n}"),
                Inputs::new().with("onto", node.id()),
            );
            group = group.member(&node).completed_by(&deploy);
        }
        stack.rolling_group(group);
        stack.build().unwrap()
    };
    assert!(up(&engine, &program("a")).await.is_success());
    let reimaged = program("b");
    let plan = preview(&engine, &reimaged).await;
    let shown = plan.record().rolls[0].to_string();
    assert!(
        shown.starts_with(
            "nodes: node-1 (then deploy-1) → node-2 (then deploy-2) → node-3 (then deploy-3), gate: "
        ),
        "{shown}"
    );
    let summary = up(&engine, &reimaged).await;
    assert!(summary.is_success(), "{summary}");
    let deployed = |n: usize| spans(&provider, CallKind::Update, &format!("deploy-{n}"))[0];
    let deleted = |n: usize| spans(&provider, CallKind::Delete, &format!("node-{n}"))[0];
    for n in 1..=3 {
        let (after, _) = asked_at(&asked, GatePhase::After, &format!("node-{n}"));
        assert!(
            after >= deployed(n).1,
            "node-{n}'s gate asked before its deployment"
        );
        if n < 3 {
            assert!(
                deleted(n + 1).0 >= after,
                "node-{} taken down before node-{n} passed its gate",
                n + 1
            );
        }
    }
    assert!(
        asked
            .lock()
            .unwrap()
            .iter()
            .all(|(_, _, m, _)| m.starts_with("node-")),
        "the gate is asked about members only"
    );
}
