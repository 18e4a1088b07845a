//! # iac-core
//!
//! Infrastructure as code in ordinary Rust. A stack program registers typed resources whose
//! inputs are [`Output`]s of other resources; those references are the edges of a dependency
//! graph. The [`Engine`] diffs the graph against the stack's recorded state into a [`Plan`]
//! (printable, serialisable), then applies it as a parallel walk of the DAG, checkpointing
//! state after every step.
//!
//! ```no_run
//! use iac_core::{Engine, FileBackend, Inputs, Providers, Stack, ApplyOptions};
//! # async fn run(providers: Providers) -> Result<(), Box<dyn std::error::Error>> {
//! let mut stack = Stack::new("dev");
//! let vpc = stack.register("aws:ec2:Vpc", "main", Inputs::new().with("cidr_block", "10.0.0.0/16"), Default::default());
//! stack.register("aws:ec2:Subnet", "subnet-a", Inputs::new().with("vpc_id", vpc.id()), Default::default());
//! let program = stack.build()?;
//! let engine = Engine::new(providers, FileBackend::new(".iac/state"));
//! let plan = engine.preview(&program).await?;
//! println!("{}", plan.render());
//! let summary = engine.apply(&program, &plan, &ApplyOptions::default()).await?;
//! assert!(summary.is_success());
//! # Ok(()) }
//! ```
//!
//! The engine knows no resource type: it sees [`Provider`]s registered per type token and
//! JSON inputs and outputs. Nothing in it talks to a cloud API directly.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod apply;
mod change;
mod engine;
mod errors;
mod evaluate;
mod gate;
mod output;
mod plan;
mod preview;
mod progress;
mod property;
pub mod provider;
mod record;
mod reference;
mod refresh;
mod resource;
mod roll;
mod secrets;
mod stack;
pub mod state;
mod target;
pub mod testing;

pub use apply::{
    ApplyEvent, ApplyOptions, ApplySummary, DEFAULT_PARALLELISM, FailedStep, OrderingError,
    SkipReason, SkippedStep, StopSignal,
};
pub use change::FORCED_REPLACEMENT;
pub use engine::{Engine, EngineError};
pub use errors::ErrorList;
pub use gate::{
    DEFAULT_GATE_INTERVAL, DEFAULT_GATE_TIMEOUT, Gate, GateAnswer, GatePhase, RollingGroup,
};
pub use output::{EvalError, IntoInput, Output, Resolve, ResourceRef};
pub use plan::{Plan, PlanError, PlanErrors, PlanOptions};
pub use preview::render as render_preview;
pub use progress::{Progress, confirm};
pub use property::{Properties, PropertyMap, PropertyValue};
pub use provider::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, ImportRequest, InputReference, PropertyChange, Provider, ProviderError,
    Providers, ReadRequest, ReadResponse, References, UpdateRequest,
};
pub use record::{
    BaseState, InterruptedOperation, Move, Operation, PLAN_VERSION, PlanFileError, PlanRecord,
    PropertyDiff, RollRecord, SKETCH_MARK, Shown, StepCounts, StepRecord,
};
pub use reference::{STACK_REFERENCE, StackReference};
pub use refresh::{Drift, DriftRecord, ReadFailure, RefreshReport};
pub use resource::{Inputs, IntoInputs, Resource, ResourceOptions, ResourceType};
pub use secrets::{EncryptionHeader, Passphrase, SecretsError};
pub use stack::{NodeKind, Program, RegistrationError, RegistrationErrors, Stack};
pub use state::FileBackend;
pub use target::Targets;
