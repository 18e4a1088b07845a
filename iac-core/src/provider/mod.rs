//! The provider contract: how the engine asks a provider to check, diff, create, read,
//! update and delete one resource, and the registry of providers by type token.
//!
//! The engine only ever talks to resources through this trait. A provider validates inputs in
//! `check` (before any mutation), says per property whether a change is an in-place update or
//! needs replacement in `diff`, and performs the CRUD calls. Errors carry the provider's own
//! code and message, never swallowed.
//!
//! What every provider needs besides the contract lives in the submodules: [`known`] (typed
//! reading of inputs, check helpers), [`retry`] (retries and waits with a deadline),
//! [`ownership`] (the tags that name a resource's stack), [`diff_table`] (a kind's declared
//! diff table).

pub mod diff_table;
pub mod kinds;
pub mod known;
pub mod ownership;
pub mod retry;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use litemap::LiteMap;
use serde::{Deserialize, Serialize};

use crate::property::{Properties, PropertyMap};

/// An input the provider refuses, with the property it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// The input property at fault (empty when the problem is about the resource as a whole).
    pub property: String,
    /// What is wrong and what to do about it.
    pub reason: String,
}

impl CheckFailure {
    /// A failure about one property.
    pub fn new(property: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            property: property.into(),
            reason: reason.into(),
        }
    }
}

/// An error a provider returns from a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ProviderError {
    /// The provider's (or cloud API's) error code, if it has one.
    pub code: Option<String>,
    /// The message.
    pub message: String,
    /// The call changed nothing: the API refused it, or it was never sent. A failed create
    /// that is not `refused` may have made its resource (a lost answer, a later call of a
    /// multi-call create failing): the engine keeps its pending operation, and the next
    /// refresh or apply looks the resource up before anything is created again.
    pub refused: bool,
}

impl ProviderError {
    /// An error with a message only, whose call may have changed something.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            refused: false,
        }
    }

    /// An error with the API's error code, whose call may have changed something.
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            message: message.into(),
            refused: false,
        }
    }

    /// The same error, saying the call changed nothing.
    pub fn refused(mut self) -> Self {
        self.refused = true;
        self
    }

    /// The same error, saying something may have changed (a later step of a multi-call
    /// create failed after its resource was made).
    pub fn after_changes(mut self) -> Self {
        self.refused = false;
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One changed input property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyChange {
    /// The property.
    pub key: String,
    /// Whether the change can only be made by replacing the resource.
    pub replace: bool,
}

/// What a provider says about a change of inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffResponse {
    /// Changed properties; empty means no change.
    pub changes: Vec<PropertyChange>,
    /// The replacement must delete the old resource first (e.g. a unique name).
    pub delete_before_replace: bool,
}

impl DiffResponse {
    /// Every changed key, replacing when the key is in `replace_keys`, else in place.
    pub fn from_keys(changed: Vec<String>, replace_keys: &[&str]) -> Self {
        Self {
            changes: changed
                .into_iter()
                .map(|key| PropertyChange {
                    replace: replace_keys.contains(&key.as_str()),
                    key,
                })
                .collect(),
            delete_before_replace: false,
        }
    }
}

/// An input that is exactly an output property of another resource of the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputReference {
    /// The referenced resource's name.
    pub resource: String,
    /// Its output property (`id` for the provider id).
    pub property: String,
}

/// A resource's inputs that are exactly another resource's output, by input name, in key
/// order (a sorted list: a plan holds one for every resource until its relations are checked).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct References(LiteMap<String, InputReference>);

impl References {
    /// What the input `key` references, when it is a reference.
    pub fn get(&self, key: &str) -> Option<&InputReference> {
        self.0.get(key)
    }

    /// Every reference, by input name in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &InputReference)> {
        self.0.iter()
    }

    /// How many inputs are references.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no input is a reference.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, InputReference)> for References {
    fn from_iter<I: IntoIterator<Item = (String, InputReference)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Arguments of [`Provider::check`] and [`Provider::check_related`].
#[derive(Debug)]
pub struct CheckRequest<'a> {
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// Planned inputs (some may be unknown).
    pub inputs: &'a Properties,
    /// Inputs that are exactly another resource's output, even while unknown: a provider can
    /// follow them to check relations (a subnet inside its network) before anything exists.
    pub references: &'a References,
}

/// Arguments of [`Provider::diff`].
#[derive(Debug)]
pub struct DiffRequest<'a> {
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// The provider id.
    pub id: &'a str,
    /// Inputs recorded in state.
    pub old_inputs: &'a PropertyMap,
    /// Outputs recorded in state.
    pub old_outputs: &'a PropertyMap,
    /// Planned inputs (some may be unknown).
    pub new_inputs: &'a Properties,
}

impl DiffRequest<'_> {
    /// Keys whose values differ (unknown counts as changed).
    pub fn changed_keys(&self) -> Vec<String> {
        self.new_inputs.changed_keys(self.old_inputs)
    }
}

/// Arguments of [`Provider::create`].
#[derive(Debug)]
pub struct CreateRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// Inputs, all known.
    pub inputs: &'a PropertyMap,
    /// Unique to this create (the same for every retry of it): for APIs that deduplicate
    /// requests by a client token.
    pub idempotency_token: &'a str,
}

/// What a create returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateResponse {
    /// The provider id.
    pub id: String,
    /// Output properties.
    pub outputs: PropertyMap,
}

/// Arguments of [`Provider::read`].
#[derive(Debug)]
pub struct ReadRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// The provider id; `None` for a data source lookup, or for a create that was
    /// interrupted before its id was recorded (find it by name/tags if you can).
    pub id: Option<&'a str>,
    /// Inputs as recorded (or, for a data source, as given).
    pub inputs: &'a PropertyMap,
    /// Outputs as recorded (`None` for a lookup and a data source): what a provider with
    /// nothing to read back (a command that ran) reports unchanged.
    pub outputs: Option<&'a PropertyMap>,
    /// For the lookup of an interrupted create (`id` is `None`): when that create was sent.
    /// A provider whose API shows new objects only after a while keeps looking until that
    /// while has passed before it answers "not there".
    pub created_since: Option<SystemTime>,
}

/// What a read finds.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResponse {
    /// The provider id.
    pub id: String,
    /// The inputs as they are in the provider now (for drift), when it can tell.
    pub inputs: Option<PropertyMap>,
    /// Output properties as they are now.
    pub outputs: PropertyMap,
}

/// Arguments of [`Provider::import`].
#[derive(Debug)]
pub struct ImportRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The resource's type token.
    pub type_token: &'a str,
    /// The name the object gets in the stack.
    pub name: &'a str,
    /// The provider id of the object.
    pub id: &'a str,
}

/// Arguments of [`Provider::update`].
#[derive(Debug)]
pub struct UpdateRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// The provider id.
    pub id: &'a str,
    /// Inputs recorded in state.
    pub old_inputs: &'a PropertyMap,
    /// Outputs recorded in state.
    pub old_outputs: &'a PropertyMap,
    /// New inputs, all known.
    pub new_inputs: &'a PropertyMap,
}

/// Arguments of [`Provider::delete`].
#[derive(Debug)]
pub struct DeleteRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The resource's type token.
    pub type_token: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// The provider id.
    pub id: &'a str,
    /// Inputs recorded in state.
    pub inputs: &'a PropertyMap,
    /// Outputs recorded in state.
    pub outputs: &'a PropertyMap,
}

/// CRUD for the resource types a provider is registered for.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Validates inputs before anything is mutated. Skip unknown properties.
    fn check(&self, request: &CheckRequest<'_>) -> Vec<CheckFailure> {
        let _ = request;
        Vec::new()
    }

    /// Validates relations between resources: called once per plan with every resource this
    /// provider handles. Returns failures with the name of the resource at fault.
    fn check_related(&self, resources: &[CheckRequest<'_>]) -> Vec<(String, CheckFailure)> {
        let _ = resources;
        Vec::new()
    }

    /// Which properties changed and whether each needs replacement. The default treats every
    /// change as an in-place update.
    fn diff(&self, request: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        Ok(DiffResponse::from_keys(request.changed_keys(), &[]))
    }

    /// Creates the resource. Must be safe to retry (use `idempotency_token` where the API
    /// takes one) and must never make a second object when an answer is lost: look for the
    /// first one (by its ownership tags or natural key) before sending the create again.
    /// An error that is not [`ProviderError::refused`] leaves the create's outcome unknown.
    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError>;

    /// Reads the resource as it is now; `Ok(None)` when it no longer exists (a "not found"
    /// from any call of the read means gone). With no `id`, looks the resource up by what
    /// an interrupted create gave it (ownership tags, natural key).
    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError>;

    /// Updates the resource in place and returns its new outputs.
    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError>;

    /// Deletes the resource and waits until it is gone.
    async fn delete(&self, request: &DeleteRequest<'_>) -> Result<(), ProviderError>;

    /// Adopts an object that exists already as the stack's resource `name`: reads it by its
    /// id (its inputs as they are, so the next plan shows what the program would change),
    /// refuses one another stack or resource owns ([`ProviderError::refused`]), and marks it
    /// as this stack's where the provider can. `Ok(None)`: no such object. By default
    /// refused: the provider imports nothing.
    async fn import(
        &self,
        request: &ImportRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        Err(ProviderError::new(format!(
            "resources of type `{}` cannot be imported",
            request.type_token
        ))
        .refused())
    }
}

/// Providers by resource type token.
#[derive(Clone, Default)]
pub struct Providers {
    by_type: HashMap<String, Arc<dyn Provider>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<&String> = self.by_type.keys().collect();
        types.sort();
        f.debug_struct("Providers").field("types", &types).finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `provider` for each of `type_tokens`.
    pub fn register<I: Into<String>>(
        &mut self,
        provider: Arc<dyn Provider>,
        type_tokens: impl IntoIterator<Item = I>,
    ) -> &mut Self {
        for token in type_tokens {
            self.by_type.insert(token.into(), Arc::clone(&provider));
        }
        self
    }

    /// The provider for a type token.
    pub fn get(&self, type_token: &str) -> Option<&Arc<dyn Provider>> {
        self.by_type.get(type_token)
    }
}
