//! Stack references: a stack program reads another stack's outputs through the engine.
//!
//! [`Stack::reference`] registers a data source of the one type the engine itself provides,
//! [`STACK_REFERENCE`]: read while planning, from the same backend (and with the same
//! passphrase) as the stack's own state, so the other stack's outputs are known at preview.
//! A secret output of the other stack is read only when the reference names it, and stays
//! secret in this one.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::output::Output;
use crate::property::PropertyMap;
use crate::provider::{
    CreateRequest, CreateResponse, DeleteRequest, Provider, ProviderError, ReadRequest,
    ReadResponse, UpdateRequest,
};
use crate::resource::{Inputs, Resource, ResourceOptions};
use crate::secrets::Passphrase;
use crate::stack::{NodeKind, Stack};
use crate::state::StateBackend;

/// The type token of a stack reference.
pub const STACK_REFERENCE: &str = "iac:stack:Reference";

/// Another stack's outputs, as a data source of this one.
#[derive(Debug, Clone)]
pub struct StackReference {
    resource: Resource,
    stack: String,
}

impl StackReference {
    /// The other stack's output `key` (secret if the reference named it secret).
    pub fn output<T: DeserializeOwned + 'static>(&self, key: &str) -> Output<T> {
        self.resource.output(key)
    }

    /// The referenced stack.
    pub fn stack(&self) -> &str {
        &self.stack
    }
}

impl AsRef<Resource> for StackReference {
    fn as_ref(&self) -> &Resource {
        &self.resource
    }
}

impl Stack {
    /// Reads the outputs of the stack `other` (same backend) as the data source `name`:
    /// known at preview. An output `other` keeps secret is read only when named in
    /// `secrets`, and is secret here too.
    pub fn reference<I: Into<String>>(
        &mut self,
        name: &str,
        other: &str,
        secrets: impl IntoIterator<Item = I>,
    ) -> StackReference {
        let secrets: BTreeSet<String> = secrets.into_iter().map(Into::into).collect();
        let inputs = Inputs::new().with("stack", other).with(
            "secrets",
            Value::from(secrets.iter().cloned().collect::<Vec<_>>()),
        );
        let resource = self.add(
            NodeKind::DataSource,
            STACK_REFERENCE,
            name,
            inputs,
            ResourceOptions::new().secret_outputs(secrets),
        );
        StackReference {
            resource,
            stack: other.to_owned(),
        }
    }
}

/// Reads other stacks' outputs from the engine's backend.
pub(crate) struct ReferenceProvider {
    pub(crate) backend: Arc<dyn StateBackend>,
    pub(crate) passphrase: Option<Passphrase>,
}

fn data_source_only() -> ProviderError {
    ProviderError::new(format!(
        "`{STACK_REFERENCE}` is a data source: register it with Stack::reference"
    ))
    .refused()
}

#[async_trait]
impl Provider for ReferenceProvider {
    async fn create(&self, _: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        Err(data_source_only())
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        let Some(other) = request.inputs.get("stack").and_then(Value::as_str) else {
            return Err(ProviderError::new("a stack reference names no stack").refused());
        };
        if other == request.stack {
            return Err(ProviderError::new(format!(
                "stack `{other}` cannot reference itself: use its resources' outputs directly"
            ))
            .refused());
        }
        let named: BTreeSet<&str> = request
            .inputs
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let opened = crate::state::load::load_state(&self.backend, self.passphrase.as_ref(), other)
            .await
            .map_err(|e| {
                let error = ProviderError::new(format!("cannot read stack `{other}`: {e}"));
                if e.is_user_error() {
                    error.refused()
                } else {
                    error
                }
            })?;
        let Some(state) = opened.plain else {
            return Err(ProviderError::new(format!(
                "stack `{other}` has no state in this backend: apply it first"
            ))
            .refused());
        };
        let outputs: PropertyMap = state
            .outputs
            .into_iter()
            .filter(|(key, _)| !state.secret_outputs.contains(key) || named.contains(key.as_str()))
            .collect();
        Ok(Some(ReadResponse {
            id: other.to_owned(),
            inputs: None,
            outputs,
        }))
    }

    async fn update(&self, _: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        Err(data_source_only())
    }

    async fn delete(&self, _: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        Err(data_source_only())
    }
}
