//! The local provider: resources on this machine — files, commands and long-running
//! processes — with the same contract as a cloud provider (check, diff, create, read, update,
//! delete), so a stack can stand a whole platform up on one machine from the same graph that
//! builds it in the cloud.
//!
//! - [`File`]: written atomically with its mode; refresh notices an edit or a deletion.
//! - [`Folder`]: a set of files replaced as one ([`write_folder`]): a reader sees the old set
//!   or the new one, never a mix.
//! - [`Command`]: `sh -c` at create (and update, and delete), output captured, a non-zero exit
//!   fails the step with the command's last lines.
//! - [`Service`]: a detached process, ready when its TCP or HTTP probe passes; recorded by pid
//!   *and* start time (a reused pid is never signalled); stopped with SIGTERM, then SIGKILL;
//!   marked with its stack and resource in its environment, so a process an interrupted
//!   create started is found again, never left running unknown to the state.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod command;
mod file;
mod folder;
mod process;
mod service;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use iac_core::provider::diff_table::DiffTable;
use iac_core::provider::kinds::Kinds;
use iac_core::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, Properties, PropertyMap, Provider, ProviderError, Providers, ReadRequest,
    ReadResponse, UpdateRequest,
};

pub use folder::{FolderError, write_folder};
pub use service::{http_get_body, locate};
pub use types::*;

/// One local resource type.
#[async_trait]
trait LocalKind: Send + Sync {
    fn token(&self) -> &'static str;
    fn diff_table(&self) -> &'static DiffTable;
    fn check(&self, inputs: &Properties) -> Vec<CheckFailure>;
    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError>;
    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError>;
    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError>;
    async fn delete(&self, request: &DeleteRequest<'_>) -> Result<(), ProviderError>;
}

/// The local provider: every kind, dispatched by type token.
pub struct LocalProvider {
    kinds: Kinds<dyn LocalKind>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider").finish_non_exhaustive()
    }
}

impl Default for LocalProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalProvider {
    /// The provider with every kind.
    pub fn new() -> Self {
        let kinds: Vec<Box<dyn LocalKind>> = vec![
            Box::new(file::FileKind),
            Box::new(folder::FolderKind),
            Box::new(command::CommandKind),
            Box::new(service::ServiceKind),
        ];
        Self {
            kinds: Kinds::new("local", kinds.into_iter().map(|k| (k.token(), k))),
        }
    }

    /// Every type token this provider handles.
    pub fn type_tokens(&self) -> Vec<&'static str> {
        self.kinds.tokens()
    }

    /// Registers this provider for all its type tokens.
    pub fn register(self, providers: &mut Providers) {
        let tokens = self.type_tokens();
        providers.register(Arc::new(self), tokens);
    }

    fn kind(&self, token: &str) -> Result<&dyn LocalKind, ProviderError> {
        self.kinds.get(token)
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn check(&self, request: &CheckRequest<'_>) -> Vec<CheckFailure> {
        match self.kind(request.type_token) {
            Ok(kind) => kind.check(request.inputs),
            Err(e) => vec![CheckFailure::new("", e.message)],
        }
    }

    fn diff(&self, request: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        Ok(self
            .kind(request.type_token)?
            .diff_table()
            .diff(request.changed_keys()))
    }

    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        self.kind(request.type_token)?.create(request).await
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        self.kind(request.type_token)?.read(request).await
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        self.kind(request.type_token)?.update(request).await
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        self.kind(request.type_token)?.delete(request).await
    }
}

/// How many lines of a command's output or a service's log an error shows.
const SHOWN_LINES: usize = 10;

/// The last lines of `text`, for an error. A stack trace's frames (`at …`, `... 3 more`) count
/// as one line, so the exception that says what went wrong is among them.
fn last_lines(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut frames = 0;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let frame = trimmed.starts_with("at ")
            || (trimmed.starts_with("... ") && trimmed.ends_with(" more"));
        if frame && line.len() > trimmed.len() {
            frames += 1;
            continue;
        }
        if frames > 0 {
            lines.push(format!("\t({frames} stack frames)"));
            frames = 0;
        }
        lines.push(line.to_owned());
    }
    if frames > 0 {
        lines.push(format!("\t({frames} stack frames)"));
    }
    lines[lines.len().saturating_sub(SHOWN_LINES)..].join("\n")
}

/// A removal: done when it is gone already.
fn removed(result: std::io::Result<()>, path: &str) -> Result<(), ProviderError> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(&format!("removing {path}"), &e))
        }
        _ => Ok(()),
    }
}

/// An I/O failure as a provider error naming what was being done.
fn io_error(what: &str, error: &std::io::Error) -> ProviderError {
    ProviderError::with_code("LocalIo", format!("{what}: {error}"))
}
