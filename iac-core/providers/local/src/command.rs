//! `local:Command`: `sh -c` at create, update and delete.

use async_trait::async_trait;
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, Properties, PropertyMap,
    ProviderError, ReadRequest, ReadResponse, UpdateRequest,
};
use serde_json::Value;

use crate::{Command, CommandArgs, CommandValues, LocalKind, io_error, last_lines};

/// The diff table of `Command`.
pub(crate) const COMMAND_TABLE: DiffTable = DiffTable {
    type_token: Command::TYPE,
    rows: &[
        DiffRow {
            inputs: &["create", "update", "dir", "environment", "triggers"],
            change: Change::InPlace,
            note: "runs `update` (or `create` again)",
        },
        DiffRow {
            inputs: &["delete"],
            change: Change::InPlace,
            note: "recorded, not run",
        },
    ],
};

/// How much of each output stream is kept.
const KEPT: usize = 64 * 1024;

pub(crate) struct CommandKind;

/// The last `KEPT` bytes, cut at a character boundary.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut start = text.len().saturating_sub(KEPT);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Runs `script` with the inputs' directory and environment; its captured output, or an
/// error with its exit status and last lines. The environment's values are never shown.
async fn run(script: &str, inputs: &CommandValues) -> Result<(String, String), ProviderError> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .envs(&inputs.environment)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = &inputs.dir {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .await
        .map_err(|e| io_error("starting sh", &e).refused())?;
    let (stdout, stderr) = (tail(&output.stdout), tail(&output.stderr));
    if output.status.success() {
        return Ok((stdout, stderr));
    }
    let status = output.status.code().map_or_else(
        || "was killed by a signal".to_owned(),
        |c| format!("exited {c}"),
    );
    let shown = match (last_lines(&stderr), last_lines(&stdout)) {
        (e, _) if !e.is_empty() => e,
        (_, o) => o,
    };
    // A script of many lines is named by its first: its output says what went wrong.
    let named = match script.split_once('\n') {
        Some((first, _)) => format!("{first} …"),
        None => script.to_owned(),
    };
    Err(ProviderError::with_code(
        "CommandFailed",
        format!("`{named}` {status}:\n{shown}"),
    ))
}

fn outputs(inputs: &PropertyMap, (stdout, stderr): (String, String)) -> PropertyMap {
    let mut outputs = inputs.clone();
    outputs.insert("stdout".to_owned(), Value::from(stdout));
    outputs.insert("stderr".to_owned(), Value::from(stderr));
    outputs
}

#[async_trait]
impl LocalKind for CommandKind {
    fn token(&self) -> &'static str {
        Command::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &COMMAND_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &CommandArgs::required(), &mut failures);
        if known_str(inputs, "create").is_some_and(|c| c.trim().is_empty()) {
            failures.push(CheckFailure::new(
                "create",
                "is empty: give the command to run",
            ));
        }
        failures
    }

    async fn create(&self, r: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        let command = CommandValues::from_known(r.inputs)?;
        let ran = run(&command.create, &command).await?;
        Ok(CreateResponse {
            id: format!("{}/{}", r.stack, r.name),
            outputs: outputs(r.inputs, ran),
        })
    }

    /// A command has nothing to read back: it is what was recorded.
    async fn read(&self, r: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        Ok(r.id.map(|id| ReadResponse {
            id: id.to_owned(),
            inputs: None,
            outputs: r.outputs.cloned().unwrap_or_else(|| r.inputs.clone()),
        }))
    }

    async fn update(&self, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let changed = r
            .new_inputs
            .iter()
            .any(|(key, value)| key != "delete" && r.old_inputs.get(key) != Some(value));
        if !changed {
            let mut kept = r.old_outputs.clone();
            kept.insert(
                "delete".to_owned(),
                r.new_inputs.get("delete").cloned().unwrap_or(Value::Null),
            );
            return Ok(kept);
        }
        let command = CommandValues::from_known(r.new_inputs)?;
        let script = command.update.as_ref().unwrap_or(&command.create);
        Ok(outputs(r.new_inputs, run(script, &command).await?))
    }

    async fn delete(&self, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        let command = CommandValues::from_recorded(r.inputs)?;
        match &command.delete {
            Some(script) => run(script, &command).await.map(drop),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tail_of_a_long_output_is_kept() {
        let long = "é".repeat(KEPT);
        let kept = tail(long.as_bytes());
        assert!(kept.len() <= KEPT && kept.chars().all(|c| c == 'é'));
        assert_eq!(last_lines("1\n2\n3"), "1\n2\n3");
        let many: String = (1..=20).map(|i| format!("{i}\n")).collect();
        assert_eq!(last_lines(&many).lines().next(), Some("11"));
        // The JMX exporter's agent failing to bind: the cause survives its 30 frames.
        let trace: String = std::iter::once("java.net.BindException: Address already in use\n")
            .chain(std::iter::repeat_n(
                "\tat sun.nio.ch.Net.bind(Net.java:555)\n",
                30,
            ))
            .chain(["\t... 4 more\n", "Prometheus JMX Exporter exiting\n"])
            .collect();
        assert_eq!(
            last_lines(&trace),
            "java.net.BindException: Address already in use\n\t(31 stack frames)\nPrometheus JMX Exporter exiting"
        );
    }
}
