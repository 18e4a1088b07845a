//! Encryption of secret values at rest.
//!
//! A stack's secrets are encrypted with ChaCha20-Poly1305 under a key derived from a
//! passphrase with Argon2id. The state file stores the salt and an encrypted check value, so
//! a wrong passphrase is reported as such instead of as corrupt data. This module never writes
//! anything itself and never logs a plaintext.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PREFIX: &str = "enc:v1:";
const CHECK: &[u8] = b"iac-core secrets check v1";
const NONCE_LEN: usize = 12;

/// A passphrase for a stack's secrets. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(passphrase.into())
    }

    /// The variable [`Passphrase::from_env`] reads.
    pub const ENV: &'static str = "IAC_PASSPHRASE";

    /// The passphrase in `IAC_PASSPHRASE`, if that is set.
    pub fn from_env() -> Option<Self> {
        std::env::var(Self::ENV).ok().map(Self)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([secret])")
    }
}

/// Secrets failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// Secret values must be read or written, and no passphrase was given.
    #[error(
        "stack `{stack}` has secret values and no passphrase was given: give the engine the stack's passphrase (`Engine::with_passphrase`)"
    )]
    NoPassphrase {
        /// The stack.
        stack: String,
    },
    /// The passphrase does not open the stack's secrets.
    #[error(
        "the passphrase does not decrypt the secrets of stack `{stack}`: use the passphrase they were written with"
    )]
    WrongPassphrase {
        /// The stack.
        stack: String,
    },
    /// A ciphertext in the state is damaged.
    #[error(
        "secret `{what}` in the state of stack `{stack}` cannot be decrypted: the state file is damaged"
    )]
    Corrupt {
        /// The stack.
        stack: String,
        /// Which value.
        what: String,
    },
}

impl SecretsError {
    /// Whether the passphrase is missing or wrong (the user's to fix), as opposed to a
    /// damaged state.
    pub fn is_user_error(&self) -> bool {
        match self {
            SecretsError::NoPassphrase { .. } | SecretsError::WrongPassphrase { .. } => true,
            SecretsError::Corrupt { .. } => false,
        }
    }
}

/// Stored beside the secrets: how to derive the key and a value to verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionHeader {
    /// Key derivation function (`argon2id`).
    pub kdf: String,
    /// Base64 salt.
    pub salt: String,
    /// A known plaintext, encrypted, to detect a wrong passphrase.
    pub check: String,
}

/// An initialised cipher for one stack.
#[derive(Clone)]
pub(crate) struct Cipher {
    aead: ChaCha20Poly1305,
    stack: String,
}

impl Cipher {
    fn derive(passphrase: &Passphrase, salt: &[u8], stack: &str) -> Result<Self, SecretsError> {
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.0.as_bytes(), salt, &mut key)
            .map_err(|_| SecretsError::WrongPassphrase {
                stack: stack.to_owned(),
            })?;
        Ok(Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
            stack: stack.to_owned(),
        })
    }

    /// A fresh key and the header that lets it be derived again.
    pub(crate) fn create(
        passphrase: &Passphrase,
        stack: &str,
    ) -> Result<(Self, EncryptionHeader), SecretsError> {
        let salt: [u8; 16] = rand::random();
        let cipher = Self::derive(passphrase, &salt, stack)?;
        let check = cipher.seal_bytes(CHECK);
        Ok((
            cipher,
            EncryptionHeader {
                kdf: "argon2id".to_owned(),
                salt: BASE64.encode(salt),
                check,
            },
        ))
    }

    /// The key described by `header`, verified against its check value.
    pub(crate) fn open(
        passphrase: &Passphrase,
        header: &EncryptionHeader,
        stack: &str,
    ) -> Result<Self, SecretsError> {
        let corrupt = || SecretsError::Corrupt {
            stack: stack.to_owned(),
            what: "encryption header".to_owned(),
        };
        let salt = BASE64.decode(&header.salt).map_err(|_| corrupt())?;
        let cipher = Self::derive(passphrase, &salt, stack)?;
        match cipher.open_bytes(&header.check) {
            Some(check) if check == CHECK => Ok(cipher),
            _ => Err(SecretsError::WrongPassphrase {
                stack: stack.to_owned(),
            }),
        }
    }

    fn seal_bytes(&self, plaintext: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ciphertext = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(ciphertext);
        format!("{PREFIX}{}", BASE64.encode(bytes))
    }

    fn open_bytes(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = BASE64.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.aead.decrypt(Nonce::from_slice(nonce), ciphertext).ok()
    }

    /// Encrypts a JSON value into a string.
    pub(crate) fn seal(&self, value: &Value) -> Value {
        Value::String(self.seal_bytes(value.to_string().as_bytes()))
    }

    /// Decrypts what [`Cipher::seal`] produced; `what` names the value in errors.
    pub(crate) fn unseal(&self, sealed: &Value, what: &str) -> Result<Value, SecretsError> {
        let corrupt = || SecretsError::Corrupt {
            stack: self.stack.clone(),
            what: what.to_owned(),
        };
        let text = sealed.as_str().ok_or_else(corrupt)?;
        let plain = self.open_bytes(text).ok_or_else(corrupt)?;
        serde_json::from_slice(&plain).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let (cipher, header) = Cipher::create(&Passphrase::new("correct horse"), "dev").unwrap();
        let sealed = cipher.seal(&Value::from("hunter2"));
        assert!(!sealed.to_string().contains("hunter2"));
        let reopened = Cipher::open(&Passphrase::new("correct horse"), &header, "dev").unwrap();
        assert_eq!(
            reopened.unseal(&sealed, "x").unwrap(),
            Value::from("hunter2")
        );
        let wrong = Cipher::open(&Passphrase::new("wrong"), &header, "dev");
        assert!(matches!(wrong, Err(SecretsError::WrongPassphrase { .. })));
    }
}
