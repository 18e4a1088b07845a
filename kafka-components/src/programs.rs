//! The programs and files an environment file names on this machine: where they are (a
//! variable, `~/…` or a link resolved, so the state means one file whichever way it was
//! named), whether the Kafka folder is whole, which Java it is, and a fingerprint that
//! changes when a program is rebuilt.

/// `${NAME}` and `${NAME:-default}` replaced by the variable (or the default when it is
/// unset or empty); anything else is left as written.
fn expand_variables(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + end];
        let (name, default) = inner.split_once(":-").unwrap_or((inner, ""));
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => out.push_str(&value),
            _ => out.push_str(default),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A program or a file as the environment file names it: variables expanded, `~/…` in the
/// home folder, a path made absolute with its links resolved (the state means the same file
/// from any working directory, and whichever way a variable led to it: `scripts/setup.sh`
/// exports Kafka's versioned folder, the default names the link to it), a bare name left to
/// `PATH`.
pub(crate) fn program_path(program: &str) -> String {
    let program = expand_variables(program);
    let path = match (program.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => program.clone(),
    };
    if !path.contains('/') {
        return path;
    }
    std::fs::canonicalize(&path)
        .or_else(|_| std::path::absolute(&path))
        .map_or(path, |p| p.to_string_lossy().into_owned())
}

/// Why `java` cannot run Kafka 4.1 (it needs Java 17 or later), if it cannot.
pub(crate) fn java_problem(java: &str) -> Option<String> {
    // `java -XshowSettings:properties -version` prints the specification version: 17, 21 …
    let output = match std::process::Command::new(java)
        .args(["-XshowSettings:properties", "-version"])
        .output()
    {
        Ok(output) => output,
        Err(e) => return Some(format!("`{java}` does not run: {e}")),
    };
    let text = String::from_utf8_lossy(&output.stderr);
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.specification.version = "))
        .map(str::trim);
    match version.and_then(|v| v.parse::<u32>().ok()) {
        Some(major) if major >= 17 => None,
        _ => Some(format!(
            "`{java}` is Java {}: Kafka 4.1 needs Java 17 or later (Debian: openjdk-17-jre-headless)",
            version.unwrap_or("of an unknown version")
        )),
    }
}

/// The Kafka folder scripts/setup.sh makes: the jars, the JMX exporter agent and the
/// logging configuration.
pub(crate) struct KafkaHome(pub(crate) String);

impl KafkaHome {
    pub(crate) fn libs(&self) -> String {
        format!("{}/libs/*", self.0)
    }

    pub(crate) fn agent(&self) -> String {
        format!("{}/agent/jmx_prometheus_javaagent.jar", self.0)
    }

    pub(crate) fn logging(&self) -> String {
        format!("{}/config/log4j2.yaml", self.0)
    }

    /// What is missing, if anything.
    pub(crate) fn missing(&self) -> Option<&'static str> {
        let home = std::path::Path::new(&self.0);
        let has_server_jar = std::fs::read_dir(home.join("libs")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("kafka_2.13-") && name.ends_with(".jar")
            })
        });
        if !home.is_dir() {
            Some("is not a folder")
        } else if !has_server_jar {
            Some("has no Kafka server jar in libs/")
        } else if !std::path::Path::new(&self.agent()).is_file() {
            Some("has no JMX exporter agent (agent/jmx_prometheus_javaagent.jar)")
        } else if !std::path::Path::new(&self.logging()).is_file() {
            Some("has no logging configuration (config/log4j2.yaml)")
        } else {
            None
        }
    }
}

/// The program's size and modification time: a rebuilt binary restarts its service.
pub(crate) fn program_fingerprint(program: &str) -> String {
    let meta = iac_local::locate(program).and_then(|p| std::fs::metadata(p).ok());
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "program {program}: {} bytes, modified {modified}",
        meta.map_or(0, |m| m.len())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::{expand_variables, program_path};

    #[test]
    fn a_program_is_the_same_path_through_a_link_or_a_variable() {
        // scripts/setup.sh exports Kafka's versioned folder; the environment file's default
        // names the link to it: both are one folder, or every switch restarts the cluster.
        let dir = tempfile::tempdir().unwrap();
        let versioned = dir.path().join("kafka-1234");
        std::fs::create_dir(&versioned).unwrap();
        std::os::unix::fs::symlink(&versioned, dir.path().join("kafka")).unwrap();
        let through_link = program_path(&format!("{}/kafka", dir.path().display()));
        assert_eq!(through_link, program_path(&versioned.display().to_string()));
        assert!(through_link.ends_with("/kafka-1234"), "{through_link}");
        // A path that does not exist yet is still made absolute; a bare name is PATH's.
        assert!(program_path("not-yet/there").starts_with('/'));
        assert_eq!(program_path("prometheus"), "prometheus");
    }

    #[test]
    fn variables_and_defaults_are_expanded() {
        // PATH and HOME are set for any test run; the other name is never set.
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            expand_variables("${HOME}/bin/kafka"),
            format!("{home}/bin/kafka")
        );
        assert_eq!(
            expand_variables("${KAFKA_PLATFORM_NEVER_SET_ANYWHERE:-~/.cache/kafka}"),
            "~/.cache/kafka"
        );
        assert_eq!(expand_variables("java"), "java");
        assert_eq!(expand_variables("broken ${OPEN"), "broken ${OPEN");
    }
}
