//! Resource handles, resource options and the traits that make resources typed.
//!
//! A handle ([`Resource`]) is what registration returns: a name plus accessors for outputs;
//! a typed resource's handle wraps one and adds an accessor per output. It holds no values; reading an output yields an [`Output`] that the engine
//! evaluates later. The [`resource!`](crate::resource) macro declares a typed resource: its
//! type token, its argument struct and typed output accessors.

use std::collections::BTreeSet;
use std::sync::Arc;

use litemap::LiteMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::output::{IntoInput, Output, ResourceRef};

/// A resource type known to the compiler: its type token, its arguments, and the typed
/// handle registration returns (usually declared with [`resource!`](crate::resource)).
pub trait ResourceType: Sized + 'static {
    /// The type token providers are registered under, e.g. `aws:ec2:Vpc`.
    const TYPE: &'static str;
    /// Output properties that are always secret.
    const SECRET_OUTPUTS: &'static [&'static str] = &[];
    /// The typed arguments.
    type Args: IntoInputs;
    /// Wraps the untyped handle of a registered resource.
    fn from_resource(resource: Resource) -> Self;
}

/// Turns typed arguments into the engine's property inputs.
pub trait IntoInputs {
    /// The arguments as named JSON outputs.
    fn into_inputs(self) -> Inputs;
}

/// The inputs of one resource: property name to (possibly unknown) JSON value. A sorted
/// list, not a tree: a program holds one for every resource it registers.
#[derive(Clone, Debug, Default)]
pub struct Inputs(pub(crate) LiteMap<String, Output<Value>>);

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

/// A handle to a registered resource or data source. Typed handles wrap one.
#[derive(Clone)]
pub struct Resource {
    pub(crate) reference: ResourceRef,
    pub(crate) secret_outputs: Arc<BTreeSet<String>>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({})", self.reference.name())
    }
}

impl AsRef<Resource> for Resource {
    fn as_ref(&self) -> &Resource {
        self
    }
}

impl Resource {
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
    /// Names the resource had before (as the stack recorded them, prefix included): a
    /// recorded resource of such a name that is no longer registered is moved to this one,
    /// not replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip)]
    pub(crate) foreign_dependencies: Vec<ResourceRef>,
}

impl ResourceOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Depends on another resource of the same stack.
    pub fn depends_on(mut self, resource: &impl AsRef<Resource>) -> Self {
        let resource = resource.as_ref();
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

    /// The resource was registered under these names before: what the stack records under
    /// one of them is moved to the new name (state and dependents), not replaced.
    pub fn aliases<I: Into<String>>(mut self, names: impl IntoIterator<Item = I>) -> Self {
        self.aliases.extend(names.into_iter().map(Into::into));
        self
    }

    /// Marks more output properties secret.
    pub fn secret_outputs<I: Into<String>>(mut self, keys: impl IntoIterator<Item = I>) -> Self {
        self.additional_secret_outputs
            .extend(keys.into_iter().map(Into::into));
        self
    }
}

/// Declares a typed resource: its type token, its argument struct, the same arguments as its
/// provider receives them, and a typed handle with one accessor per argument and per computed
/// output (plus `id()` and `resource_name()`).
///
/// `args NetArgs, values NetValues` names both argument structs: a stack program fills
/// `NetArgs` (each field an [`Output`], possibly another resource's), the provider reads
/// `NetValues::from_known(inputs)` (each field its plain type, an unset one its type's default;
/// a required argument unset, or a value of another type, is an error naming the input). An
/// argument is required unless it is an `Option` or a collection
/// ([`Argument::REQUIRED`](crate::provider::known::Argument)); `NetArgs::required()` lists the
/// required ones for the provider's `check`.
///
/// An argument's accessor reads the value the provider recorded for it, with the argument's
/// type, or with the type after `=>` when the provider always fills it in (an optional
/// argument the cloud chooses when it is unset). Computed outputs are those that are no
/// argument. `Args::FIELDS` lists the arguments (a provider's diff table is tested against it).
/// An optional `secret [a, b]` after the outputs names outputs that are always secret
/// (encrypted in state, `[secret]` in previews, secret in everything derived from them).
///
/// ```
/// iac_core::resource! {
///     /// A network.
///     pub resource Network("example:net:Network") {
///         args NetworkArgs, values NetworkValues {
///             /// The CIDR block.
///             cidr: String,
///             /// The zone (the provider picks one when unset).
///             zone: Option<String> => String,
///         }
///         outputs {
///             /// The gateway address the provider assigned.
///             gateway: String,
///             /// Its administrator's password.
///             admin_password: String,
///         }
///         secret [admin_password]
///     }
/// }
/// let mut stack = iac_core::Stack::new("dev");
/// let net = stack.resource::<Network>("main", NetworkArgs { cidr: "10.0.0.0/16".into(), ..Default::default() });
/// let id: iac_core::Output<String> = net.id();
/// let cidr: iac_core::Output<String> = net.cidr();
/// let zone: iac_core::Output<String> = net.zone();
/// let gateway: iac_core::Output<String> = net.gateway();
/// assert!(net.admin_password().is_secret() && !gateway.is_secret());
/// assert_eq!(net.resource_name(), "main");
/// assert_eq!(NetworkArgs::FIELDS, ["cidr", "zone"]);
/// assert_eq!(NetworkArgs::required(), ["cidr"]);
/// assert!(stack.build().is_ok());
///
/// // What the provider reads: unset is the default, a missing required argument is named.
/// let known = iac_core::PropertyMap::from([
///     ("cidr".to_owned(), "10.0.0.0/16".into()),
///     ("zone".to_owned(), serde_json::Value::Null),
/// ]);
/// let values = NetworkValues::from_known(&known).unwrap();
/// assert_eq!((values.cidr.as_str(), values.zone), ("10.0.0.0/16", None));
/// let missing = NetworkValues::from_known(&Default::default()).err().unwrap();
/// assert_eq!(missing.to_string(), "MissingInput: input `cidr` is required");
/// ```
#[macro_export]
macro_rules! resource {
    (
        $(#[$meta:meta])*
        $vis:vis resource $name:ident($token:literal) {
            args $args:ident, values $values:ident {
                $( $(#[$fmeta:meta])* $field:ident : $fty:ty $(=> $aty:ty)? ),* $(,)?
            }
            outputs {
                $( $(#[$ometa:meta])* $out:ident : $oty:ty ),* $(,)?
            }
            $( secret [ $( $secret:ident ),* $(,)? ] )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name($crate::Resource);

        #[doc = concat!("Arguments of [`", stringify!($name), "`].")]
        #[derive(Clone, Debug, Default)]
        $vis struct $args {
            $( $(#[$fmeta])* pub $field: $crate::Output<$fty>, )*
        }

        impl $args {
            /// The argument names, as the provider sees them.
            pub const FIELDS: &'static [&'static str] = &[$( stringify!($field) ),*];

            /// The arguments a stack must set (neither an `Option` nor a collection).
            pub fn required() -> ::std::vec::Vec<&'static str> {
                [$( (
                    stringify!($field),
                    <$fty as $crate::provider::known::Argument>::REQUIRED,
                ) ),*]
                .into_iter()
                .filter_map(|(field, required)| required.then_some(field))
                .collect()
            }
        }

        #[doc = concat!(
            "The arguments of [`", stringify!($name), "`] as its provider receives them: ",
            "every one known, an unset one its type's default."
        )]
        #[derive(Clone, Default)]
        $vis struct $values {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        impl $values {
            /// Reads the arguments from the known inputs of a create, update or delete: a
            /// required argument unset, or a value of another type, is an error naming it.
            pub fn from_known(
                inputs: &$crate::PropertyMap,
            ) -> ::core::result::Result<Self, $crate::ProviderError> {
                Self::read(inputs, $crate::provider::known::Unset::Refused)
            }

            /// Reads what a read request records, which may be nothing (an import): unset
            /// is the default even where the argument is required.
            pub fn from_recorded(
                inputs: &$crate::PropertyMap,
            ) -> ::core::result::Result<Self, $crate::ProviderError> {
                Self::read(inputs, $crate::provider::known::Unset::Default)
            }

            fn read(
                inputs: &$crate::PropertyMap,
                unset: $crate::provider::known::Unset,
            ) -> ::core::result::Result<Self, $crate::ProviderError> {
                use $crate::provider::known::argument;
                ::core::result::Result::Ok(Self {
                    $( $field: argument(inputs, stringify!($field), unset)?, )*
                })
            }

            /// The arguments as the property map a read reports (`None` is `null`).
            pub fn to_properties(&self) -> $crate::PropertyMap {
                let mut properties = $crate::PropertyMap::new();
                $( properties.insert(
                    stringify!($field).to_owned(),
                    $crate::provider::known::property(&self.$field),
                ); )*
                properties
            }
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
            const SECRET_OUTPUTS: &'static [&'static str] = &[$($( stringify!($secret) ),*)?];
            type Args = $args;
            fn from_resource(resource: $crate::Resource) -> Self {
                Self(resource)
            }
        }

        impl ::core::convert::AsRef<$crate::Resource> for $name {
            fn as_ref(&self) -> &$crate::Resource {
                &self.0
            }
        }

        impl $name {
            /// The resource's name in its stack.
            pub fn resource_name(&self) -> &str {
                self.0.name()
            }

            /// The provider-assigned id, known after create.
            pub fn id(&self) -> $crate::Output<String> {
                self.0.id()
            }

            $(
                $(#[$fmeta])*
                pub fn $field(&self) -> $crate::Output<$crate::__resource_arg_type!($fty $(=> $aty)?)> {
                    self.0.output(stringify!($field))
                }
            )*

            $(
                $(#[$ometa])*
                pub fn $out(&self) -> $crate::Output<$oty> {
                    self.0.output(stringify!($out))
                }
            )*
        }
    };
}

/// The type of an argument's accessor in [`resource!`]: the argument's, or the one after `=>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __resource_arg_type {
    ($fty:ty) => {
        $fty
    };
    ($fty:ty => $aty:ty) => {
        $aty
    };
}
