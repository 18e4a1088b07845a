//! The typed local resources a stack program registers. Type tokens are `local:<Kind>`.

use std::collections::BTreeMap;

/// Environment variables of a command or a service.
pub type Environment = BTreeMap<String, String>;

iac_core::resource! {
    /// A file with the given content, written atomically (a reader sees the old file or the
    /// new one, never half of one). Refresh notices an edit or a deletion; apply restores it.
    pub resource File("local:File") {
        args FileArgs, values FileValues {
            /// Where (absolute, or relative to the working directory); parent folders are made.
            path: String,
            /// The whole content (may be secret: the engine keeps it encrypted in state).
            content: String,
            /// Permission bits in octal (`"0644"`, the default; `"0600"` for a secret).
            mode: Option<String>,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// A folder holding exactly a set of files, replaced as one (readers see the old set or
    /// the new one, never a mix). Refresh notices a file edited, added or removed by hand.
    pub resource Folder("local:Folder") {
        args FolderArgs, values FolderValues {
            /// Where (absolute, or relative to the working directory).
            path: String,
            /// Each file's content by its path inside the folder (`prometheus/rules.yml`).
            files: BTreeMap<String, String>,
            /// Permission bits of every file in octal (default `"0644"`).
            mode: Option<String>,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// A command run by `sh -c` when the resource is created (and, when given, when its
    /// inputs change, and when it is deleted), like Pulumi's `command.local.Command`.
    pub resource Command("local:Command") {
        args CommandArgs, values CommandValues {
            /// Run at create; a change re-runs it (through `update` when given).
            create: String,
            /// Run when an input changes (default: `create` again).
            update: Option<String>,
            /// Run at delete.
            delete: Option<String>,
            /// Working directory.
            dir: Option<String>,
            /// Environment added to the CLI's (values may be secret; never printed).
            environment: Environment,
            /// Any change re-runs the command.
            triggers: Vec<String>,
        }
        outputs {
            /// What it printed on standard output (the last 64 KiB).
            stdout: String,
            /// What it printed on standard error (the last 64 KiB).
            stderr: String,
        }
    }
}

iac_core::resource! {
    /// A long-running process on this machine, detached from the CLI (its own process
    /// group, output to its log file), ready when its probe passes.
    pub resource Service("local:Service") {
        args ServiceArgs, values ServiceValues {
            /// The program (a path, or a name on `PATH`).
            program: String,
            /// Its arguments.
            args: Vec<String>,
            /// Environment added to the CLI's (values may be secret; never printed).
            environment: Environment,
            /// Working directory (made when missing).
            dir: Option<String>,
            /// Where its standard output and error go (appended).
            log_file: String,
            /// Ready when a TCP connection to this `host:port` opens; the port must be free
            /// before the start.
            ready_tcp: Option<String>,
            /// Ready when a GET of this `http://` URL answers `ready_status`.
            ready_http: Option<String>,
            /// The status `ready_http` must answer (default 200).
            ready_status: Option<i64>,
            /// A regular expression `ready_http`'s answer must also match somewhere in its
            /// body (e.g. a metric's line: `broker_state 3`).
            ready_body: Option<String>,
            /// How long it may take to become ready, in seconds (default 30).
            ready_timeout_secs: Option<i64>,
            /// How long a SIGTERM gets before SIGKILL, in seconds (default 10).
            stop_grace_secs: Option<i64>,
            /// Any change restarts it (e.g. a digest of the files it reads, or of its program).
            triggers: Vec<String>,
            /// Where its port is set, named when the port is taken (e.g. `ports.prometheus
            /// in stacks/envs/local.toml`).
            port_setting: Option<String>,
            /// Other `host:port`s it listens on, each with where that port is set: each must
            /// be free before the start, as the probe's, and a taken one names its setting.
            listens: BTreeMap<String, String>,
        }
        outputs {
            /// Its process id.
            pid: i64,
            /// Its start time (clock ticks after boot, `/proc/<pid>/stat`): a reused pid has
            /// another, and is never signalled.
            start_time: i64,
        }
    }
}
