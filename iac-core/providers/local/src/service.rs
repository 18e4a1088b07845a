//! `local:Service`: a detached long-running process, ready when its probe passes.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, Properties, PropertyMap,
    ProviderError, ReadRequest, ReadResponse, UpdateRequest,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{Process, RESOURCE_VAR, STACK_VAR};
use crate::{LocalKind, Service, ServiceArgs, ServiceValues, io_error, last_lines};

/// The diff table of `Service`: any change restarts it (stop first: its port is taken).
pub(crate) const SERVICE_TABLE: DiffTable = DiffTable {
    type_token: Service::TYPE,
    rows: &[
        DiffRow {
            inputs: &[
                "program",
                "args",
                "environment",
                "dir",
                "log_file",
                "ready_tcp",
                "ready_http",
                "ready_status",
                "ready_body",
                "ready_timeout_secs",
                "stop_grace_secs",
                "triggers",
            ],
            change: Change::ReplaceDeletingFirst,
            note: "restarted: stopped, then started with the new inputs",
        },
        DiffRow {
            inputs: &["port_setting", "listens"],
            change: Change::InPlace,
            note: "only checked before a start and named in errors",
        },
    ],
};

pub(crate) struct ServiceKind;

fn seconds(setting: Option<i64>, default: u64) -> Duration {
    let secs = setting
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

/// How long a stop waits between SIGTERM and SIGKILL.
fn stop_grace(service: &ServiceValues) -> Duration {
    seconds(service.stop_grace_secs, 10)
}

/// `host:port` of an `http://host:port/…` URL.
fn http_authority(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((authority, path))
}

fn resolve(address: &str) -> Option<SocketAddr> {
    address.to_socket_addrs().ok()?.next()
}

/// The `host:port` the service listens on: its probe's.
fn listened(service: &ServiceValues) -> Option<&str> {
    service.ready_tcp.as_deref().or_else(|| {
        service
            .ready_http
            .as_deref()
            .and_then(http_authority)
            .map(|(a, _)| a)
    })
}

/// Where `program` is: itself when it names a path, else the first match on `PATH`.
pub fn locate(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| program.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether the probe passes now; when it does not, the probe's input and what it found.
async fn probe(service: &ServiceValues) -> Result<(), (&'static str, String)> {
    if let Some(address) = &service.ready_tcp {
        return match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Ok(()),
            Err(e) => Err(("ready_tcp", format!("not ready: {e}"))),
        };
    }
    if let Some(url) = &service.ready_http {
        let want = service.ready_status.unwrap_or(200);
        let body = service
            .ready_body
            .as_deref()
            .and_then(|b| regex::Regex::new(b).ok());
        return match http_get(url, body.is_some()).await {
            Some((status, _)) if status != want => {
                Err(("ready_http", format!("not ready: answers {status}")))
            }
            Some((_, text)) => match body {
                Some(body) if !body.is_match(&text) => Err((
                    "ready_body",
                    format!("not ready: the answer does not match `{}`", body.as_str()),
                )),
                _ => Ok(()),
            },
            None => Err(("ready_http", "not ready: no answer".to_owned())),
        };
    }
    Ok(())
}

/// The status of a GET of `url` (plain HTTP/1.1; a probe needs no more) and, when `whole`,
/// the rest of the answer (at most 4 MiB): headers and body.
async fn http_get(url: &str, whole: bool) -> Option<(i64, String)> {
    const LIMIT: u64 = 4 << 20;
    let (authority, path) = http_authority(url)?;
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    let read = async {
        if whole {
            (&mut stream).take(LIMIT).read_to_end(&mut answer).await
        } else {
            answer.resize(64, 0);
            let read = stream.read(&mut answer).await;
            answer.truncate(*read.as_ref().unwrap_or(&0));
            read
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

/// The status and body of a GET of `url` (plain HTTP/1.1, `Connection: close`, at most
/// 4 MiB, 5 seconds), or `None` when nothing answers: what a rolling group's gate reads a
/// service's health with.
pub async fn http_get_body(url: &str) -> Option<(i64, String)> {
    let (status, answer) = http_get(url, true).await?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}

/// The log's path and its last lines, for an error.
fn log_tail(path: &str) -> String {
    format!(
        "{path} ends:\n{}",
        last_lines(&std::fs::read_to_string(path).unwrap_or_default())
    )
}

/// The recorded process of a service (from its id `pid:start_time`).
fn recorded(id: &str) -> Option<Process> {
    let (pid, start) = id.split_once(':')?;
    Some(Process {
        pid: pid.parse().ok()?,
        start_time: start.parse().ok()?,
    })
}

fn described(process: Process, inputs: &PropertyMap) -> (String, PropertyMap) {
    let mut outputs = inputs.clone();
    outputs.insert("pid".to_owned(), Value::from(process.pid));
    outputs.insert("start_time".to_owned(), Value::from(process.start_time));
    (format!("{}:{}", process.pid, process.start_time), outputs)
}

/// Starts the service and waits for its probe; on any failure nothing is left running.
async fn start(r: &CreateRequest<'_>) -> Result<Process, ProviderError> {
    let service = ServiceValues::from_known(r.inputs)?;
    refuse_taken_port(&service)?;
    let process = spawn(r, &service)?;
    ready(&service, process).await
}

/// Refuses to start a service whose port (its probe's, or one it `listens` on) another
/// process holds, naming what to change.
fn refuse_taken_port(service: &ServiceValues) -> Result<(), ProviderError> {
    let probed = listened(service).map(|address| (address, service.port_setting.as_deref()));
    let others = service
        .listens
        .iter()
        .map(|(address, setting)| (address.as_str(), Some(setting.as_str())));
    for (address, setting) in probed.into_iter().chain(others) {
        let free = resolve(address).is_some_and(|addr| TcpListener::bind(addr).is_ok());
        if !free {
            let change = match setting {
                Some(setting) => format!("change {setting}"),
                None => "give this service another port".to_owned(),
            };
            return Err(ProviderError::with_code(
                "PortTaken",
                format!("{address} is already taken by another process: stop it, or {change}"),
            )
            .refused());
        }
    }
    Ok(())
}

/// Starts the program in its own process group, its output appended to its log.
fn spawn(r: &CreateRequest<'_>, service: &ServiceValues) -> Result<Process, ProviderError> {
    let (program, log) = (&service.program, &service.log_file);
    if let Some(dir) = Path::new(log)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(&format!("creating {}", dir.display()), &e).refused())?;
    }
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| io_error(&format!("opening {log}"), &e).refused())
    };
    let mut command = std::process::Command::new(program);
    command
        .args(&service.args)
        .envs(&service.environment)
        .env(STACK_VAR, r.stack)
        .env(RESOURCE_VAR, r.name)
        .stdin(std::process::Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        // Its own process group: a Ctrl-C of the CLI does not reach it, and a stop reaches
        // whatever it started.
        .process_group(0);
    if let Some(dir) = &service.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(&format!("creating {dir}"), &e).refused())?;
        command.current_dir(dir);
    }
    let child = command
        .spawn()
        .map_err(|e| io_error(&format!("starting {program}"), &e).refused())?;
    let pid = i32::try_from(child.id()).map_err(|_| ProviderError::new("pid out of range"))?;
    Process::of(pid).ok_or_else(|| {
        ProviderError::with_code(
            "ServiceExited",
            format!("{program} exited at once:\n{}", log_tail(log)),
        )
        .refused()
    })
}

/// Waits for the started service's probe to pass; stops it again when it does not in time.
async fn ready(service: &ServiceValues, process: Process) -> Result<Process, ProviderError> {
    let (program, log) = (&service.program, &service.log_file);
    let timeout = seconds(service.ready_timeout_secs, 30);
    let deadline = Instant::now() + timeout;
    loop {
        if !process.is_running() {
            return Err(ProviderError::with_code(
                "ServiceExited",
                format!("{program} exited before it was ready:\n{}", log_tail(log)),
            )
            .refused());
        }
        if probe(service).await.is_ok() {
            return Ok(process);
        }
        if Instant::now() >= deadline {
            process.stop(stop_grace(service)).await;
            return Err(ProviderError::with_code(
                "ServiceNotReady",
                format!(
                    "{program} was not ready after {}s (stopped again):\n{}",
                    timeout.as_secs(),
                    log_tail(log)
                ),
            )
            .refused());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[async_trait]
impl LocalKind for ServiceKind {
    fn token(&self) -> &'static str {
        Service::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &SERVICE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &ServiceArgs::required(), &mut failures);
        for key in ["program", "log_file"] {
            if known_str(inputs, key).is_some_and(str::is_empty) {
                failures.push(CheckFailure::new(key, "is empty"));
            }
        }
        if let Some(program) = known_str(inputs, "program").filter(|p| !p.is_empty())
            && locate(program).is_none()
        {
            let what = if program.contains('/') {
                "is not a file"
            } else {
                "is not on PATH"
            };
            failures.push(CheckFailure::new("program", format!("`{program}` {what}")));
        }
        if let Some(address) = known_str(inputs, "ready_tcp")
            && resolve(address).is_none()
        {
            failures.push(CheckFailure::new(
                "ready_tcp",
                format!("`{address}` is not a host:port"),
            ));
        }
        if let Some(pattern) = known_str(inputs, "ready_body") {
            if !inputs.is_unknown("ready_http") && known_str(inputs, "ready_http").is_none() {
                failures.push(CheckFailure::new(
                    "ready_body",
                    "needs ready_http: the body is that answer's",
                ));
            }
            if let Err(e) = regex::Regex::new(pattern) {
                failures.push(CheckFailure::new(
                    "ready_body",
                    format!("`{pattern}` is not a regular expression: {e}"),
                ));
            }
        }
        if let Some(url) = known_str(inputs, "ready_http")
            && http_authority(url).is_none()
        {
            failures.push(CheckFailure::new(
                "ready_http",
                format!("`{url}` is not an http:// URL"),
            ));
        }
        for key in ["ready_timeout_secs", "stop_grace_secs", "ready_status"] {
            if inputs
                .known(key)
                .and_then(Value::as_i64)
                .is_some_and(|v| v < 0)
            {
                failures.push(CheckFailure::new(key, "must not be negative"));
            }
        }
        failures
    }

    async fn create(&self, r: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        // A process an interrupted create started is this one: adopted, not started twice.
        let process = match Process::marked(r.stack, r.name) {
            Some(running) => running,
            None => start(r).await?,
        };
        let (id, outputs) = described(process, r.inputs);
        Ok(CreateResponse { id, outputs })
    }

    /// Running (its pid with its start time) is there; anything else is gone, so the next
    /// apply starts it again. Running but failing its probe is drift on the probe's input
    /// (`ready_http: "http://…" => "not ready: answers 503"`), which the next apply repairs by
    /// a restart. Without an id: the process marked as this resource.
    async fn read(&self, r: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        let process = match r.id {
            Some(id) => recorded(id).filter(Process::is_running),
            None => Process::marked(r.stack, r.name),
        };
        let Some(process) = process else {
            return Ok(None);
        };
        let inputs = match probe(&ServiceValues::from_recorded(r.inputs)?).await {
            Ok(()) => None,
            Err((key, found)) => {
                let mut now = r.inputs.clone();
                now.insert(key.to_owned(), Value::from(found));
                Some(now)
            }
        };
        let (id, outputs) = described(process, r.inputs);
        Ok(Some(ReadResponse {
            id,
            inputs,
            outputs,
        }))
    }

    async fn update(&self, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        // Every input restarts it (the diff table replaces); nothing changes in place.
        Ok(r.old_outputs.clone())
    }

    async fn delete(&self, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        if let Some(process) = recorded(r.id) {
            process
                .stop(stop_grace(&ServiceValues::from_recorded(r.inputs)?))
                .await;
        }
        Ok(())
    }
}
