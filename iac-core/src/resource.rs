//! Resource handles, resource options and the traits that make resources typed.
//!
//! A handle ([`Resource<K>`]) is what registration returns: a name plus typed accessors for
//! outputs. It holds no values; reading an output yields an [`Output`] that the engine
//! evaluates later. The [`resource!`](crate::resource) macro declares a typed resource: its
//! type token, its argument struct and typed output accessors.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::output::{IntoInput, Output, ResourceRef};

/// A resource type known to the compiler: its type token and its arguments.
pub trait ResourceType: 'static {
    /// The type token providers are registered under, e.g. `aws:ec2:Vpc`.
    const TYPE: &'static str;
    /// Output properties that are always secret.
    const SECRET_OUTPUTS: &'static [&'static str] = &[];
    /// The typed arguments.
    type Args: IntoInputs;
}

/// Turns typed arguments into the engine's property inputs.
pub trait IntoInputs {
    /// The arguments as named JSON outputs.
    fn into_inputs(self) -> Inputs;
}

/// The inputs of one resource: property name to (possibly unknown) JSON value.
#[derive(Clone, Debug, Default)]
pub struct Inputs(pub(crate) BTreeMap<String, Output<Value>>);

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one input (builder style).
    pub fn with(mut self, key: &str, value: impl IntoInput) -> Self {
        self.set(key, value);
        self
    }

    /// Sets one input.
    pub fn set(&mut self, key: &str, value: impl IntoInput) {
        self.0.insert(key.to_owned(), value.into_input());
    }
}

impl IntoInputs for Inputs {
    fn into_inputs(self) -> Inputs {
        self
    }
}

/// A resource registered without a compile-time type (its type token is a string).
#[derive(Debug)]
pub enum Dynamic {}

/// A handle to a registered resource (or data source).
pub struct Resource<K: ?Sized = Dynamic> {
    pub(crate) reference: ResourceRef,
    pub(crate) secret_outputs: Arc<BTreeSet<String>>,
    pub(crate) kind: PhantomData<fn() -> K>,
}

impl<K: ?Sized> Clone for Resource<K> {
    fn clone(&self) -> Self {
        Self {
            reference: self.reference.clone(),
            secret_outputs: Arc::clone(&self.secret_outputs),
            kind: PhantomData,
        }
    }
}

impl<K: ?Sized> std::fmt::Debug for Resource<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({})", self.reference.name())
    }
}

impl<K: ?Sized> Resource<K> {
    /// The resource's name in its stack.
    pub fn name(&self) -> &str {
        self.reference.name()
    }

    /// The provider-assigned id, known after create.
    pub fn id(&self) -> Output<String> {
        self.output("id")
    }

    /// A typed output property; the engine reports a type mismatch as an error.
    pub fn output<T: DeserializeOwned + 'static>(&self, property: &str) -> Output<T> {
        self.json_output(property)
            .typed(self.reference.name.clone(), Arc::from(property))
    }

    /// An output property as raw JSON.
    pub fn json_output(&self, property: &str) -> Output<Value> {
        let secret = self.secret_outputs.contains(property);
        Output::property_of(self.reference.clone(), property, secret)
    }
}

/// Per-resource options, as in Pulumi and Terraform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOptions {
    /// Extra dependencies not expressed through inputs (resource names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Refuse any plan that deletes or replaces the resource.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    /// Input properties whose changes are ignored after creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<String>,
    /// Input properties whose change forces replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_on_changes: Vec<String>,
    /// Delete the old resource before creating its replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_before_replace: bool,
    /// Output properties to treat as secret in addition to the type's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_secret_outputs: Vec<String>,
    #[serde(skip)]
    pub(crate) foreign_dependencies: Vec<ResourceRef>,
}

impl ResourceOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Depends on another resource of the same stack.
    pub fn depends_on<K: ?Sized>(mut self, resource: &Resource<K>) -> Self {
        self.depends_on.push(resource.name().to_owned());
        self.foreign_dependencies.push(resource.reference.clone());
        self
    }

    /// Depends on a resource by name (it may be registered later).
    pub fn depends_on_name(mut self, name: impl Into<String>) -> Self {
        self.depends_on.push(name.into());
        self
    }

    /// Refuses delete and replace.
    pub fn protect(mut self) -> Self {
        self.protect = true;
        self
    }

    /// Ignores changes to these input properties.
    pub fn ignore_changes<I: Into<String>>(mut self, keys: impl IntoIterator<Item = I>) -> Self {
        self.ignore_changes.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Replaces the resource when one of these input properties changes.
    pub fn replace_on_changes<I: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = I>,
    ) -> Self {
        self.replace_on_changes
            .extend(keys.into_iter().map(Into::into));
        self
    }

    /// Deletes before creating the replacement.
    pub fn delete_before_replace(mut self) -> Self {
        self.delete_before_replace = true;
        self
    }

    /// Marks more output properties secret.
    pub fn secret_outputs<I: Into<String>>(mut self, keys: impl IntoIterator<Item = I>) -> Self {
        self.additional_secret_outputs
            .extend(keys.into_iter().map(Into::into));
        self
    }
}

/// Declares a typed resource: its type token, argument struct and typed outputs.
///
/// ```
/// iac_core::resource! {
///     /// A network.
///     pub resource Network("example:net:Network") {
///         args NetworkArgs {
///             /// The CIDR block.
///             cidr: String,
///         }
///         outputs {
///             /// The CIDR the provider assigned.
///             cidr: String,
///         }
///     }
/// }
/// let mut stack = iac_core::Stack::new("dev");
/// let net = stack.resource::<Network>("main", NetworkArgs { cidr: "10.0.0.0/16".into() });
/// let id: iac_core::Output<String> = net.id();
/// let cidr: iac_core::Output<String> = net.cidr();
/// ```
#[macro_export]
macro_rules! resource {
    (
        $(#[$meta:meta])*
        $vis:vis resource $name:ident($token:literal) {
            args $args:ident {
                $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
            }
            outputs {
                $( $(#[$ometa:meta])* $out:ident : $oty:ty ),* $(,)?
            }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis enum $name {}

        #[doc = concat!("Arguments of [`", stringify!($name), "`].")]
        #[derive(Clone, Debug, Default)]
        $vis struct $args {
            $( $(#[$fmeta])* pub $field: $crate::Output<$fty>, )*
        }

        impl $crate::IntoInputs for $args {
            fn into_inputs(self) -> $crate::Inputs {
                let mut inputs = $crate::Inputs::new();
                $( inputs.set(stringify!($field), self.$field); )*
                inputs
            }
        }

        impl $crate::ResourceType for $name {
            const TYPE: &'static str = $token;
            type Args = $args;
        }

        impl $crate::Resource<$name> {
            $(
                $(#[$ometa])*
                pub fn $out(&self) -> $crate::Output<$oty> {
                    self.output(stringify!($out))
                }
            )*
        }
    };
}
