//! Registration errors: a table of bad programs and the exact message each must produce.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{thing, thing_with};
use iac_core::{Inputs, ResourceOptions, Stack};

fn errors_of(build: impl FnOnce() -> Stack) -> String {
    match build().build() {
        Ok(_) => "built fine".to_owned(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_programs_fail_with_exact_messages() {
    type Case = (&'static str, Box<dyn FnOnce() -> Stack>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "duplicate name",
            Box::new(|| {
                let mut s = Stack::new("dev");
                thing(&mut s, "vpc", Inputs::new());
                s.register(
                    "test:Other",
                    "vpc",
                    Inputs::new(),
                    ResourceOptions::default(),
                );
                s
            }),
            "resource name `vpc` is registered twice in stack `dev` (as test:Thing and as test:Other): give each resource a unique name",
        ),
        (
            "cycle through depends_on",
            Box::new(|| {
                let mut s = Stack::new("dev");
                thing_with(
                    &mut s,
                    "a",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("b"),
                );
                thing_with(
                    &mut s,
                    "b",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("c"),
                );
                thing_with(
                    &mut s,
                    "c",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("a"),
                );
                s
            }),
            "dependency cycle in stack `dev`: a -> b -> c -> a (each depends on the next): remove one of these references or depends_on entries",
        ),
        (
            "cycle through an input reference and depends_on",
            Box::new(|| {
                let mut s = Stack::new("dev");
                let a = thing_with(
                    &mut s,
                    "a",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("b"),
                );
                thing(&mut s, "b", Inputs::new().with("parent", a.id()));
                s
            }),
            "dependency cycle in stack `dev`: a -> b -> a (each depends on the next): remove one of these references or depends_on entries",
        ),
        (
            "self dependency",
            Box::new(|| {
                let mut s = Stack::new("dev");
                thing_with(
                    &mut s,
                    "a",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("a"),
                );
                s
            }),
            "dependency cycle in stack `dev`: a -> a (each depends on the next): remove one of these references or depends_on entries",
        ),
        (
            "reference into another stack",
            Box::new(|| {
                let mut other = Stack::new("shared");
                let vpc = thing(&mut other, "vpc", Inputs::new());
                let mut s = Stack::new("dev");
                thing(&mut s, "subnet", Inputs::new().with("vpc_id", vpc.id()));
                s
            }),
            "resource `subnet` in stack `dev` references `vpc` of stack `shared`: a stack may only reference its own resources; pass the value in as configuration instead",
        ),
        (
            "depends_on a handle of another stack",
            Box::new(|| {
                let mut other = Stack::new("shared");
                let vpc = thing(&mut other, "vpc", Inputs::new());
                let mut s = Stack::new("dev");
                thing(&mut s, "vpc", Inputs::new());
                thing_with(
                    &mut s,
                    "subnet",
                    Inputs::new(),
                    ResourceOptions::new().depends_on(&vpc),
                );
                s
            }),
            "resource `subnet` in stack `dev` references `vpc` of stack `shared`: a stack may only reference its own resources; pass the value in as configuration instead",
        ),
        (
            "unknown depends_on name",
            Box::new(|| {
                let mut s = Stack::new("dev");
                thing_with(
                    &mut s,
                    "a",
                    Inputs::new(),
                    ResourceOptions::new().depends_on_name("nope"),
                );
                s
            }),
            "resource `a` in stack `dev` depends on `nope`, which is not registered: fix the name in depends_on or register it",
        ),
        (
            "invalid stack name",
            Box::new(|| Stack::new("my stack")),
            "invalid stack name `my stack`: use 1-100 characters of [A-Za-z0-9._-], not starting with `.`",
        ),
        (
            "invalid resource name",
            Box::new(|| {
                let mut s = Stack::new("dev");
                thing(&mut s, "", Inputs::new());
                s
            }),
            "invalid resource name ``: use a non-empty name without spaces or control characters",
        ),
    ];
    for (what, build, expected) in cases {
        assert_eq!(errors_of(build), expected, "case: {what}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut s = Stack::new("dev");
    thing(&mut s, "a", Inputs::new());
    thing(&mut s, "a", Inputs::new());
    thing_with(
        &mut s,
        "b",
        Inputs::new(),
        ResourceOptions::new().depends_on_name("ghost"),
    );
    let errors = s.build().expect_err("two problems").0;
    assert_eq!(errors.len(), 2);
}

#[test]
fn a_valid_program_orders_dependencies_first_and_keeps_registration_order() {
    let mut s = Stack::new("dev");
    let vpc = thing(&mut s, "vpc", Inputs::new());
    let b = thing(&mut s, "subnet-b", Inputs::new().with("vpc", vpc.id()));
    thing(&mut s, "subnet-a", Inputs::new().with("vpc", vpc.id()));
    thing(&mut s, "instance", Inputs::new().with("subnet", b.id()));
    thing_with(
        &mut s,
        "early",
        Inputs::new(),
        ResourceOptions::new().depends_on_name("instance"),
    );
    let program = s.build().expect("valid");
    assert_eq!(
        program.topological_names().collect::<Vec<_>>(),
        ["vpc", "subnet-b", "subnet-a", "instance", "early"]
    );
    assert_eq!(program.len(), 5);
}
