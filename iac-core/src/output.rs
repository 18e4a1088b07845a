//! `Output<T>`: a value that may only be known after apply.
//!
//! An output is a lazy computation over the resolved outputs of other resources. It carries
//! the set of resources it depends on (the edges of the graph) and whether it is secret.
//! Every derivation (`map`, `zip`, `all`) unions the dependencies and ORs the secret flag, and
//! an unknown input makes the derived value unknown. Evaluation happens only inside the
//! engine, against a [`Resolve`] that knows which outputs exist at that moment.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Identifies a registered resource: the stack instance it belongs to and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRef {
    pub(crate) stack: StackId,
    pub(crate) stack_name: Arc<str>,
    pub(crate) name: Arc<str>,
    /// Its place among its stack's registrations (and its program's nodes): found without a
    /// lookup by name.
    pub(crate) index: usize,
}

impl ResourceRef {
    /// The resource's name within its stack.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the stack the resource was registered in.
    pub fn stack_name(&self) -> &str {
        &self.stack_name
    }
}

/// A process-unique identity of one `Stack` value, so references across stacks are caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StackId(pub(crate) u64);

/// Why an output could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A resource does not expose the requested output property.
    #[error("resource `{resource}` has no output `{property}`")]
    MissingProperty {
        /// The resource that was read.
        resource: String,
        /// The property that does not exist.
        property: String,
    },
    /// A stack reference does not give the output asked for.
    #[error(
        "resource `{resource}` has no output `{property}`: the referenced stack exports none of that name, or keeps it secret (name it in the reference's secrets to read it)"
    )]
    MissingReferenceOutput {
        /// The stack reference.
        resource: String,
        /// The output asked for.
        property: String,
    },
    /// A value did not have the type the program expected.
    #[error("output `{property}` of resource `{resource}` is not of the expected type: {reason}")]
    WrongType {
        /// The resource that was read.
        resource: String,
        /// The property that was read.
        property: String,
        /// What serde said.
        reason: String,
    },
    /// A value could not be turned into JSON.
    #[error("a value could not be serialised to JSON: {0}")]
    Serialize(String),
    /// A program's derivation ([`Output::try_map`]) refused its input.
    #[error("{0}")]
    Derive(String),
}

/// Gives access to resolved resource outputs while outputs are evaluated.
///
/// `Ok(None)` means "not known yet" (the resource is still to be created or changed).
pub trait Resolve {
    /// The value of `property` of `resource`; the special property `id` is the provider id.
    fn property(&self, resource: &ResourceRef, property: &str) -> Result<Option<Value>, EvalError>;
}

type EvalFn<T> = dyn Fn(&dyn Resolve) -> Result<Option<T>, EvalError> + Send + Sync;

/// A value known now or only after apply, with its dependencies and a secret flag.
pub struct Output<T> {
    eval: Arc<EvalFn<T>>,
    deps: Dependencies,
    secret: bool,
    /// Set when the value is exactly one output property of one resource (no derivation).
    origin: Option<Origin>,
}

/// The resources a value depends on, sorted, each once: a slice, since most values depend on
/// none or one (a set would allocate a whole tree node for one).
type Dependencies = Arc<[ResourceRef]>;

fn no_dependencies() -> Dependencies {
    Arc::new([])
}

/// `refs` sorted, each once.
fn dependencies(refs: impl Iterator<Item = ResourceRef>) -> Dependencies {
    let mut refs: Vec<ResourceRef> = refs.collect();
    refs.sort();
    refs.dedup();
    refs.into()
}

/// The resource output property a value is exactly equal to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) resource: Arc<str>,
    pub(crate) property: Arc<str>,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Self {
            eval: Arc::clone(&self.eval),
            deps: Arc::clone(&self.deps),
            secret: self.secret,
            origin: self.origin.clone(),
        }
    }
}

impl<T> fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field(
                "deps",
                &self.deps.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> Output<T> {
    /// A value known at registration.
    pub fn known(value: T) -> Self {
        Self::from_fn(no_dependencies(), false, move |_| Ok(Some(value.clone())))
    }

    /// A known value that must never be shown or stored in plaintext.
    pub fn secret(value: T) -> Self {
        Self::known(value).into_secret()
    }
}

impl<T: 'static> Output<T> {
    pub(crate) fn from_fn(
        deps: Dependencies,
        secret: bool,
        eval: impl Fn(&dyn Resolve) -> Result<Option<T>, EvalError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            eval: Arc::new(eval),
            deps,
            secret,
            origin: None,
        }
    }

    /// The resource output this value is exactly equal to, if it is one.
    pub(crate) fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// A value that is never known before apply (useful to model computed inputs in tests).
    pub fn unknown() -> Self {
        Self::from_fn(no_dependencies(), false, |_| Ok(None))
    }

    /// The same value, marked secret; everything derived from it stays secret.
    pub fn into_secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Whether the value is secret.
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// The resources this value depends on.
    pub fn dependencies(&self) -> impl Iterator<Item = &ResourceRef> {
        self.deps.iter()
    }

    /// Evaluates the output: `Ok(None)` while it is unknown.
    pub fn resolve(&self, resolver: &dyn Resolve) -> Result<Option<T>, EvalError> {
        (self.eval)(resolver)
    }

    /// Derives a new output; unknown stays unknown, secret stays secret.
    pub fn map<U: 'static>(self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Output<U> {
        self.try_map(move |v| Ok(f(v)))
    }

    /// Derives a new output that can fail: the error (which names what to fix) fails the
    /// preview or the step that needs the value.
    pub fn try_map<U: 'static>(
        self,
        f: impl Fn(T) -> Result<U, String> + Send + Sync + 'static,
    ) -> Output<U> {
        let mut mapped = self.convert(move |v| f(v).map_err(EvalError::Derive));
        mapped.origin = None;
        mapped
    }

    /// A change of representation (not of value): the origin is kept.
    fn convert<U: 'static>(
        self,
        f: impl Fn(T) -> Result<U, EvalError> + Send + Sync + 'static,
    ) -> Output<U> {
        let eval = self.eval;
        Output {
            eval: Arc::new(move |r| eval(r)?.map(&f).transpose()),
            deps: self.deps,
            secret: self.secret,
            origin: self.origin,
        }
    }

    /// Combines two outputs; the pair is known when both are.
    pub fn zip<U: 'static>(self, other: Output<U>) -> Output<(T, U)> {
        let deps = dependencies(self.deps.iter().chain(other.deps.iter()).cloned());
        let (a, b) = (self.eval, other.eval);
        Output::from_fn(deps, self.secret || other.secret, move |r| {
            Ok(match (a(r)?, b(r)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            })
        })
    }

    /// Combines many outputs of one type; the list is known when every element is.
    pub fn all(outputs: impl IntoIterator<Item = Output<T>>) -> Output<Vec<T>> {
        let outputs: Vec<Output<T>> = outputs.into_iter().collect();
        let deps = dependencies(outputs.iter().flat_map(|o| o.deps.iter().cloned()));
        let secret = outputs.iter().any(|o| o.secret);
        Output::from_fn(deps, secret, move |r| {
            let mut values = Vec::with_capacity(outputs.len());
            for output in &outputs {
                match output.resolve(r)? {
                    Some(v) => values.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(values))
        })
    }
}

impl<T: Serialize + 'static> Output<T> {
    /// The value as JSON, as the engine stores it.
    pub fn into_json(self) -> Output<Value> {
        self.convert(|v| serde_json::to_value(v).map_err(|e| EvalError::Serialize(e.to_string())))
    }
}

impl Output<Value> {
    /// A JSON output read as a typed value; a type mismatch is an evaluation error.
    pub(crate) fn typed<T: DeserializeOwned + 'static>(
        self,
        resource: Arc<str>,
        property: Arc<str>,
    ) -> Output<T> {
        self.convert(move |v| {
            serde_json::from_value(v).map_err(|e| EvalError::WrongType {
                resource: resource.to_string(),
                property: property.to_string(),
                reason: e.to_string(),
            })
        })
    }

    pub(crate) fn property_of(resource: ResourceRef, property: &str, secret: bool) -> Self {
        let property: Arc<str> = Arc::from(property);
        let deps: Dependencies = Arc::new([resource.clone()]);
        let origin = Origin {
            resource: Arc::clone(&resource.name),
            property: Arc::clone(&property),
        };
        let mut output = Output::from_fn(deps, secret, move |r| r.property(&resource, &property));
        output.origin = Some(origin);
        output
    }
}

/// Anything that can be an input: a plain value (serialised now) or an output of another
/// resource (evaluated when its resource is known).
pub trait IntoInput {
    /// The value as a JSON output.
    fn into_input(self) -> Output<Value>;
}

impl<T: Serialize + 'static> IntoInput for Output<T> {
    fn into_input(self) -> Output<Value> {
        self.into_json()
    }
}

impl<T: Serialize> IntoInput for T {
    fn into_input(self) -> Output<Value> {
        match serde_json::to_value(&self) {
            Ok(value) => Output::known(value),
            Err(e) => {
                let error = EvalError::Serialize(e.to_string());
                Output::from_fn(no_dependencies(), false, move |_| Err(error.clone()))
            }
        }
    }
}

impl<T: Clone + Send + Sync + 'static> From<T> for Output<T> {
    fn from(value: T) -> Self {
        Self::known(value)
    }
}

impl From<&str> for Output<String> {
    fn from(value: &str) -> Self {
        Self::known(value.to_owned())
    }
}

/// An optional string input given as a plain `&str`: `private_ip: "10.0.1.10".into()`.
impl From<&str> for Output<Option<String>> {
    fn from(value: &str) -> Self {
        Self::known(Some(value.to_owned()))
    }
}

/// A string list given as `&str`s: `owners: vec!["amazon"].into()`.
impl From<Vec<&str>> for Output<Vec<String>> {
    fn from(values: Vec<&str>) -> Self {
        Self::known(values.into_iter().map(str::to_owned).collect())
    }
}

/// Integer inputs (ports, sizes) from the integer types programs hold them in.
macro_rules! integer_inputs {
    ($($from:ty),*) => {$(
        impl From<$from> for Output<i64> {
            fn from(value: $from) -> Self {
                Self::known(i64::from(value))
            }
        }
        impl From<$from> for Output<Option<i64>> {
            fn from(value: $from) -> Self {
                Self::known(Some(i64::from(value)))
            }
        }
    )*};
}
integer_inputs!(u8, u16, u32, i32);

/// An optional integer given as a plain `i64`: `from_port: 22_i64.into()`.
impl From<i64> for Output<Option<i64>> {
    fn from(value: i64) -> Self {
        Self::known(Some(value))
    }
}

impl<T: Clone + Default + Send + Sync + 'static> Default for Output<T> {
    fn default() -> Self {
        Self::known(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_input_shapes_convert_without_ceremony() {
        let known = |o: &Output<Value>| o.resolve(&Fixed(None)).ok().flatten();
        let ip: Output<Option<String>> = "10.0.1.10".into();
        let owners: Output<Vec<String>> = vec!["amazon", "self"].into();
        let port: Output<i64> = 9092u16.into();
        let size: Output<Option<i64>> = 30i32.into();
        assert_eq!(
            known(&ip.map(|v| json_value(&v))),
            Some(Value::from("10.0.1.10"))
        );
        assert_eq!(
            known(&owners.map(|v| json_value(&v))),
            Some(serde_json::json!(["amazon", "self"]))
        );
        assert_eq!(known(&port.map(Value::from)), Some(Value::from(9092)));
        assert_eq!(known(&size.map(|v| json_value(&v))), Some(Value::from(30)));
    }

    fn json_value<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap_or(Value::Null)
    }

    struct Fixed(Option<Value>);
    impl Resolve for Fixed {
        fn property(&self, _: &ResourceRef, _: &str) -> Result<Option<Value>, EvalError> {
            Ok(self.0.clone())
        }
    }

    fn reference(name: &str) -> Output<Value> {
        let r = ResourceRef {
            stack: StackId(1),
            stack_name: Arc::from("s"),
            name: Arc::from(name),
            index: 0,
        };
        Output::property_of(r, "id", false)
    }

    #[test]
    fn unknown_and_secret_propagate_through_every_derivation() {
        let secret = Output::secret("pw".to_string());
        let dep = reference("vpc").typed::<String>(Arc::from("vpc"), Arc::from("id"));
        let derived = Output::all([dep.clone().zip(secret).map(|(a, b)| format!("{a}:{b}"))])
            .map(|v| v.join(","));
        assert!(derived.is_secret());
        assert_eq!(
            derived.dependencies().map(|d| d.name()).collect::<Vec<_>>(),
            ["vpc"]
        );
        assert_eq!(derived.resolve(&Fixed(None)), Ok(None));
        assert_eq!(
            derived.resolve(&Fixed(Some(Value::from("vpc-1")))),
            Ok(Some("vpc-1:pw".to_string()))
        );
        assert!(!dep.is_secret());
    }

    #[test]
    fn a_type_mismatch_names_resource_and_property() {
        let out = reference("vpc").typed::<u32>(Arc::from("vpc"), Arc::from("id"));
        let err = out
            .resolve(&Fixed(Some(Value::from("x"))))
            .expect_err("a string is not a u32");
        assert!(err.to_string().starts_with("output `id` of resource `vpc`"));
    }
}
