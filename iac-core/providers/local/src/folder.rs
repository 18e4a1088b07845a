//! `local:Folder`: a set of files replaced as one, and the swap it is written with.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::require;
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, Properties, PropertyMap,
    ProviderError, ReadRequest, ReadResponse, UpdateRequest,
};
use serde_json::Value;

use crate::file::{check_path_and_mode, found, read_path, reported_mode, wanted_mode};
use crate::{Folder, FolderArgs, FolderValues, LocalKind, io_error, removed};

/// The diff table of `Folder`.
pub(crate) const FOLDER_TABLE: DiffTable = DiffTable {
    type_token: Folder::TYPE,
    rows: &[
        DiffRow {
            inputs: &["path"],
            change: Change::Replace,
            note: "the new folder is written, then the old one removed",
        },
        DiffRow {
            inputs: &["files", "mode"],
            change: Change::InPlace,
            note: "the whole set is swapped in at once",
        },
    ],
};

/// A folder could not be written: the path at fault and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FolderError {
    /// The path.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |source| FolderError {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `dir` with exactly `files` (paths relative to it): written to a sibling temporary
/// folder first, then swapped in by rename, so readers see the old set or the new one, never
/// a mix.
pub fn write_folder<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    mode: u32,
) -> Result<(), FolderError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "folder".to_owned());
    fs::create_dir_all(parent).map_err(at(parent))?;
    let pid = std::process::id();
    let staging = parent.join(format!(".{name}.tmp-{pid}"));
    let previous = parent.join(format!(".{name}.old-{pid}"));
    let _ = fs::remove_dir_all(&staging);
    for (relative, contents) in files {
        let path = staging.join(relative);
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder).map_err(at(folder))?;
        }
        fs::write(&path, contents).map_err(at(&path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(at(&path))?;
    }
    let had_previous = dir.exists();
    if had_previous {
        fs::rename(dir, &previous).map_err(at(dir))?;
    }
    if let Err(e) = fs::rename(&staging, dir) {
        if had_previous {
            let _ = fs::rename(&previous, dir);
        }
        return Err(at(dir)(e));
    }
    let _ = fs::remove_dir_all(&previous);
    Ok(())
}

/// Every file under `dir`, by its path relative to it, with its mode.
fn read_tree(dir: &Path) -> std::io::Result<BTreeMap<String, (String, u32)>> {
    let mut found = BTreeMap::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                folders.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let contents = String::from_utf8_lossy(&fs::read(&path)?).into_owned();
            let mode = entry.metadata()?.permissions().mode() & 0o7777;
            found.insert(relative, (contents, mode));
        }
    }
    Ok(found)
}

pub(crate) struct FolderKind;

fn write(inputs: &PropertyMap) -> Result<String, ProviderError> {
    let folder = FolderValues::from_known(inputs)?;
    write_folder(
        Path::new(&folder.path),
        folder.files.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
        wanted_mode(folder.mode.as_deref()),
    )
    .map_err(|e| io_error(&format!("writing {}", folder.path), &e.source))?;
    Ok(folder.path)
}

#[async_trait]
impl LocalKind for FolderKind {
    fn token(&self) -> &'static str {
        Folder::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &FOLDER_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &FolderArgs::required(), &mut failures);
        check_path_and_mode(inputs, &mut failures);
        if let Some(files) = inputs.known("files").and_then(Value::as_object) {
            for name in files.keys() {
                let inside = !name.is_empty()
                    && Path::new(name)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_)));
                if !inside {
                    failures.push(CheckFailure::new(
                        "files",
                        format!("`{name}` is not a path inside the folder (relative, no `..`)"),
                    ));
                }
            }
        }
        failures
    }

    async fn create(&self, r: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        let id = write(r.inputs)?;
        Ok(CreateResponse {
            id,
            outputs: r.inputs.clone(),
        })
    }

    /// The files there now: one edited, added or removed by hand is drift.
    async fn read(&self, r: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = FolderValues::from_recorded(r.inputs)?;
        let path = read_path(r.id, &recorded.path)?;
        let tree = match read_tree(Path::new(&path)) {
            Ok(tree) => tree,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&format!("reading {path}"), &e)),
        };
        let now = FolderValues {
            path: path.clone(),
            mode: reported_mode(recorded.mode, tree.values().map(|(_, m)| *m)),
            files: tree
                .into_iter()
                .map(|(k, (contents, _))| (k, contents))
                .collect(),
        };
        Ok(Some(found(path, now.to_properties())))
    }

    async fn update(&self, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        write(r.new_inputs)?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        removed(fs::remove_dir_all(r.id), r.id)
    }
}
