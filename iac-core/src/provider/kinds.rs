//! The dispatch of a provider with several resource types: its kinds by type token.

use std::collections::BTreeMap;

use crate::ProviderError;

/// A provider's kinds by type token (`K` is the provider's own kind trait, as `dyn Kind`).
pub struct Kinds<K: ?Sized> {
    provider: &'static str,
    kinds: BTreeMap<&'static str, Box<K>>,
}

impl<K: ?Sized> std::fmt::Debug for Kinds<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kinds")
            .field("provider", &self.provider)
            .field("tokens", &self.tokens())
            .finish()
    }
}

impl<K: ?Sized> Kinds<K> {
    /// The kinds of the provider named `provider` (in errors: "the AWS provider …").
    pub fn new(
        provider: &'static str,
        kinds: impl IntoIterator<Item = (&'static str, Box<K>)>,
    ) -> Self {
        Self {
            provider,
            kinds: kinds.into_iter().collect(),
        }
    }

    /// Every type token, sorted.
    pub fn tokens(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    /// The kind of `token`; a token the provider does not have is refused (nothing changed).
    pub fn get(&self, token: &str) -> Result<&K, ProviderError> {
        self.kinds.get(token).map(|k| k.as_ref()).ok_or_else(|| {
            ProviderError::new(format!(
                "the {} provider has no type `{token}`",
                self.provider
            ))
            .refused()
        })
    }
}
