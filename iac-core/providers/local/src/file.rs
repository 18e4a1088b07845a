//! `local:File`: a file written atomically with its mode.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use async_trait::async_trait;
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, missing, require};
use iac_core::state::write_atomically;
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, Properties, PropertyMap,
    ProviderError, ReadRequest, ReadResponse, UpdateRequest,
};

use crate::{File, FileArgs, FileValues, LocalKind, io_error, removed};

/// The diff table of `File`.
pub(crate) const FILE_TABLE: DiffTable = DiffTable {
    type_token: File::TYPE,
    rows: &[
        DiffRow {
            inputs: &["path"],
            change: Change::Replace,
            note: "the new file is written, then the old one removed",
        },
        DiffRow {
            inputs: &["content", "mode"],
            change: Change::InPlace,
            note: "rewritten atomically",
        },
    ],
};

/// The mode when none is given.
pub(crate) const DEFAULT_MODE: u32 = 0o644;

pub(crate) struct FileKind;

pub(crate) fn parse_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
}

pub(crate) fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Writes `content` to `path` atomically (see [`write_atomically`]), making its folder.
fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    write_atomically(path, content, Some(mode))
}

/// The checks a file and a folder share: a path, and an octal mode.
pub(crate) fn check_path_and_mode(inputs: &Properties, failures: &mut Vec<CheckFailure>) {
    if known_str(inputs, "path").is_some_and(str::is_empty) {
        failures.push(CheckFailure::new("path", "is empty: give the path"));
    }
    if let Some(mode) = known_str(inputs, "mode")
        && parse_mode(mode).is_none()
    {
        failures.push(CheckFailure::new(
            "mode",
            format!("`{mode}` is not an octal mode: write it like \"0644\" or \"0600\""),
        ));
    }
}

/// The mode an argument asks for (else [`DEFAULT_MODE`]).
pub(crate) fn wanted_mode(mode: Option<&str>) -> u32 {
    mode.and_then(parse_mode).unwrap_or(DEFAULT_MODE)
}

/// The `mode` a read reports for files found with `found` modes: the recorded text while
/// every file has the mode it asks for (unset while that is the default), else the first
/// mode that differs.
pub(crate) fn reported_mode(
    recorded: Option<String>,
    found: impl IntoIterator<Item = u32>,
) -> Option<String> {
    let wanted = wanted_mode(recorded.as_deref());
    match found.into_iter().find(|m| *m != wanted) {
        Some(other) => Some(mode_text(other)),
        None => recorded,
    }
}

/// What a read found on disk, at `path`: the inputs as they are now, and the outputs.
pub(crate) fn found(path: String, now: PropertyMap) -> ReadResponse {
    ReadResponse {
        id: path,
        outputs: now.clone(),
        inputs: Some(now),
    }
}

/// The path a read looks at: the recorded one, or the argument's for a lookup.
pub(crate) fn read_path(id: Option<&str>, recorded: &str) -> Result<String, ProviderError> {
    match id {
        Some(id) => Ok(id.to_owned()),
        None if recorded.is_empty() => Err(missing("path")),
        None => Ok(recorded.to_owned()),
    }
}

fn write(inputs: &PropertyMap) -> Result<String, ProviderError> {
    let file = FileValues::from_known(inputs)?;
    write_atomic(
        Path::new(&file.path),
        file.content.as_bytes(),
        wanted_mode(file.mode.as_deref()),
    )
    .map_err(|e| io_error(&format!("writing {}", file.path), &e))?;
    Ok(file.path)
}

#[async_trait]
impl LocalKind for FileKind {
    fn token(&self) -> &'static str {
        File::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &FILE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &FileArgs::required(), &mut failures);
        check_path_and_mode(inputs, &mut failures);
        failures
    }

    async fn create(&self, r: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        let id = write(r.inputs)?;
        Ok(CreateResponse {
            id,
            outputs: r.inputs.clone(),
        })
    }

    /// What is on disk now: an edited content or mode is drift, a missing file is gone.
    async fn read(&self, r: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = FileValues::from_recorded(r.inputs)?;
        let path = read_path(r.id, &recorded.path)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&format!("reading {path}"), &e)),
        };
        let mode = fs::metadata(&path)
            .map_err(|e| io_error(&format!("reading {path}"), &e))?
            .permissions()
            .mode()
            & 0o7777;
        let now = FileValues {
            path: path.clone(),
            content: String::from_utf8_lossy(&bytes).into_owned(),
            mode: reported_mode(recorded.mode, [mode]),
        };
        Ok(Some(found(path, now.to_properties())))
    }

    async fn update(&self, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        write(r.new_inputs)?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        removed(fs::remove_file(r.id), r.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_text() {
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o755"), Some(0o755));
        assert_eq!(parse_mode("0999"), None);
        assert_eq!(parse_mode("77777"), None);
        assert_eq!(mode_text(0o600), "0600");
    }
}
