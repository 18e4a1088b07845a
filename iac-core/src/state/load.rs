//! Reading a stack's state: as stored (secrets sealed), and opened with the passphrase.

use std::sync::Arc;

use super::{Checkpoint, StateBackend, StateError};
use crate::secrets::{Cipher, Passphrase, SecretsError};

/// A stack's state as read: opened, and as stored.
pub(crate) struct Loaded {
    /// The state with secrets opened.
    pub(crate) plain: Option<Checkpoint>,
    /// The state as stored, only when it differs from `plain` (the stack has secrets).
    pub(crate) sealed: Option<Checkpoint>,
    /// The stack's cipher, once it has secrets.
    pub(crate) cipher: Option<Cipher>,
}

/// The stored state of `stack` as it is on disk (secrets still sealed), read off the async
/// workers.
pub(crate) async fn load_sealed(
    backend: &Arc<dyn StateBackend>,
    stack: &str,
) -> Result<Option<Checkpoint>, StateError> {
    let backend = Arc::clone(backend);
    let name = stack.to_owned();
    tokio::task::spawn_blocking(move || backend.load(&name))
        .await
        .map_err(|e| StateError::ReadInterrupted {
            stack: stack.to_owned(),
            reason: e.to_string(),
        })?
}

/// The stored state of `stack`, opened with the passphrase (needed only when it has
/// secrets): what the engine plans against, and what a stack reference reads.
pub(crate) async fn load_state(
    backend: &Arc<dyn StateBackend>,
    passphrase: Option<&Passphrase>,
    stack: &str,
) -> Result<Loaded, StateError> {
    let sealed = load_sealed(backend, stack).await?;
    let cipher = match sealed.as_ref().and_then(|c| c.encryption.as_ref()) {
        Some(header) => {
            let passphrase = passphrase.ok_or_else(|| SecretsError::NoPassphrase {
                stack: stack.to_owned(),
            })?;
            Some(Cipher::open(passphrase, header, stack)?)
        }
        None => None,
    };
    // Without secrets the stored state is the plain one: keep a single copy.
    let (plain, sealed) = match (sealed, &cipher) {
        (Some(stored), Some(_)) => {
            let mut plain = stored.clone();
            plain.unseal(cipher.as_ref())?;
            (Some(plain), Some(stored))
        }
        (stored, _) => (stored, None),
    };
    Ok(Loaded {
        plain,
        sealed,
        cipher,
    })
}
