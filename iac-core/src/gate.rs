//! Rolling groups: resources that change one at a time, each behind a health gate.
//!
//! A group lists its members in the order they roll. In an apply, the members the plan
//! updates or replaces change one after another, whatever the parallelism, and each is
//! preceded by the gate's question *before* (may this member be taken down now?) and
//! followed by its question *after* (is the whole healthy again?), asked until the answer
//! is yes or the group's timeout runs out. A gate that never says yes fails its member: the
//! members after it are skipped and stay as they were; what was done is recorded. Members
//! the plan creates, deletes or leaves alone are not rolled. Everything else runs in
//! parallel as usual.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::output::{IntoInput, Output, ResourceRef};
use crate::resource::Resource;

/// When a gate is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatePhase {
    /// Before the member is touched: may it be taken down now?
    Before,
    /// After the member changed: is the whole healthy again?
    After,
}

impl GatePhase {
    /// `before` or `after`.
    pub fn word(self) -> &'static str {
        match self {
            GatePhase::Before => "before",
            GatePhase::After => "after",
        }
    }
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    /// Go on.
    Pass,
    /// Not now, and why: asked again until the timeout, when the last reason is the error.
    Wait(String),
}

/// The health check of a rolling group: an ordinary read (of the cluster, through its
/// API), asked before and after each member that rolls.
#[async_trait]
pub trait Gate: Send + Sync {
    /// What it checks, for the preview: `no under-replicated partition (GET …/cluster/health)`.
    fn describe(&self) -> String;

    /// Asks the gate about `member` (its name in the stack) at `phase`; `input` is the
    /// group's input ([`RollingGroup::input`]) as resolved now (`null` without one).
    async fn ask(&self, phase: GatePhase, member: &str, input: &Value) -> GateAnswer;

    /// The order to roll `members` in (the group's order, those the plan changes), asked
    /// once as the apply begins: a cluster's leader last, say. Anything but a reordering
    /// of `members` that keeps each after what it depends on is ignored.
    async fn order(&self, members: &[String], input: &Value) -> Vec<String> {
        let _ = input;
        members.to_vec()
    }
}

/// How long a gate may take to pass unless the group says otherwise.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a gate that said "not now" is asked again unless the group says otherwise.
pub const DEFAULT_GATE_INTERVAL: Duration = Duration::from_secs(1);

/// A rolling group, as a stack program declares it ([`crate::Stack::rolling_group`]).
pub struct RollingGroup {
    pub(crate) name: String,
    pub(crate) members: Vec<ResourceRef>,
    /// The resource that completes a member ([`RollingGroup::completed_by`]), with the
    /// member (none when no member was added before it).
    pub(crate) completions: Vec<(Option<ResourceRef>, ResourceRef)>,
    pub(crate) gate: Arc<dyn Gate>,
    pub(crate) input: Output<Value>,
    /// Resources the gate reads through besides those of its input.
    pub(crate) reads: Vec<ResourceRef>,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
    pub(crate) updates_only: bool,
}

impl fmt::Debug for RollingGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingGroup")
            .field("name", &self.name)
            .field(
                "members",
                &self
                    .members
                    .iter()
                    .map(ResourceRef::name)
                    .collect::<Vec<_>>(),
            )
            .field("gate", &self.gate.describe())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RollingGroup {
    /// A group named `name` (in errors and the preview) whose members pass `gate`.
    pub fn new(name: impl Into<String>, gate: impl Gate + 'static) -> Self {
        Self {
            name: name.into(),
            members: Vec::new(),
            completions: Vec::new(),
            gate: Arc::new(gate),
            input: Output::known(Value::Null),
            reads: Vec::new(),
            timeout: DEFAULT_GATE_TIMEOUT,
            interval: DEFAULT_GATE_INTERVAL,
            updates_only: false,
        }
    }

    /// The next member, in the order the group rolls.
    pub fn member(mut self, resource: &impl AsRef<Resource>) -> Self {
        self.members.push(resource.as_ref().reference.clone());
        self
    }

    /// The member added last is complete only once `step` is applied too: a resource that
    /// depends on it and finishes what its change began (the deployment onto a replaced
    /// machine). When both change, the gate's question after the member is asked once
    /// `step` is done, and the next member waits for it. `step` must depend on the member
    /// and on no later one.
    pub fn completed_by(mut self, step: &impl AsRef<Resource>) -> Self {
        let member = self.members.last().cloned();
        self.completions
            .push((member, step.as_ref().reference.clone()));
        self
    }

    /// What the gate reads, resolved when it is asked (an address another resource
    /// outputs): the members roll only after what it depends on is applied.
    pub fn input(mut self, input: impl IntoInput) -> Self {
        self.input = input.into_input();
        self
    }

    /// A resource the gate reads through (the API it asks), though the input names none of
    /// its outputs: the members roll only after it is applied, so a reader replaced in the
    /// same apply is back before the first question.
    pub fn reads(mut self, resource: &impl AsRef<Resource>) -> Self {
        self.reads.push(resource.as_ref().reference.clone());
        self
    }

    /// How long each question may go unanswered by a yes (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a gate that said "not now" is asked again (default every second).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Rolls the members the plan updates in place, not those it replaces: for members
    /// that come back only after a later step that cannot complete each on its own (see
    /// [`RollingGroup::completed_by`]), whose gate could never pass in between.
    pub fn updates_only(mut self) -> Self {
        self.updates_only = true;
        self
    }
}

/// A validated rolling group of a program.
pub(crate) struct ProgramGroup {
    pub(crate) name: String,
    /// Member node indices, in rolling order.
    pub(crate) members: Vec<usize>,
    /// The node that completes a member, by the member's node.
    pub(crate) completions: HashMap<usize, usize>,
    pub(crate) gate: Arc<dyn Gate>,
    pub(crate) input: Output<Value>,
    /// Nodes the input depends on.
    pub(crate) input_deps: Vec<usize>,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
    /// Only members the plan updates roll ([`RollingGroup::updates_only`]).
    pub(crate) updates_only: bool,
}

impl fmt::Debug for ProgramGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramGroup")
            .field("name", &self.name)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}
