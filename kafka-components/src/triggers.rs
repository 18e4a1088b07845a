//! What re-runs a deployment step or restarts a local service: a digest of the rendered
//! files and credentials it reads (one of its triggers), so a changed line reaches exactly
//! what reads it.

use std::collections::BTreeMap;

use iac_core::SKETCH_MARK;
use sha2::{Digest, Sha256};

/// The variable holding the digest of the credentials a step or a service reads: a change
/// re-runs or restarts it. A digest of secrets is a secret too: it stays in the environment,
/// encrypted in state, and the triggers stay readable in a preview.
pub(crate) const CREDENTIALS_DIGEST: &str = "KAFKA_PLATFORM_CREDENTIALS_DIGEST";

/// A digest of the files of `files` under the paths `reads` (a file, or a folder ending in
/// `/`); the engine's mark where one of them is a preview's sketch (a digest would hide what
/// is not known yet). A path under which there is no file is refused, naming it: a digest
/// of nothing would never change, and what reads it would never restart.
pub(crate) fn digest<S: AsRef<str>>(
    files: &BTreeMap<String, String>,
    reads: &[S],
) -> Result<String, String> {
    let unread = reads
        .iter()
        .find(|r| !files.keys().any(|path| path.starts_with(r.as_ref())));
    if let Some(missing) = unread {
        return Err(format!(
            "there is no file at `{}`, which a service or step reads (there are {})",
            missing.as_ref(),
            files.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let read = || {
        files
            .iter()
            .filter(|(path, _)| reads.iter().any(|r| path.starts_with(r.as_ref())))
    };
    if read().any(|(_, contents)| contents.contains(SKETCH_MARK)) {
        return Ok(SKETCH_MARK.to_owned());
    }
    let mut hash = Sha256::new();
    for (path, contents) in read() {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(contents.as_bytes());
        hash.update([0]);
    }
    Ok(format!("sha256:{:x}", hash.finalize()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::digest;

    #[test]
    fn a_digest_changes_with_what_it_reads_only_and_refuses_a_path_with_nothing_under_it() {
        let files = |worker: &str, rules: &str| {
            BTreeMap::from([
                ("connect/worker.properties".to_owned(), worker.to_owned()),
                ("jmx/broker.yml".to_owned(), rules.to_owned()),
                ("jmx/controller.yml".to_owned(), "rules".to_owned()),
            ])
        };
        let of = |files: &BTreeMap<String, String>, reads: &[&str]| match digest(files, reads) {
            Ok(digest) => digest,
            Err(e) => panic!("{e}"),
        };
        let before = files("a", "x");
        assert_eq!(of(&before, &["jmx/"]), of(&files("b", "x"), &["jmx/"]));
        assert_ne!(of(&before, &["jmx/"]), of(&files("a", "y"), &["jmx/"]));
        assert_ne!(
            of(&before, &["connect/worker.properties"]),
            of(&files("b", "x"), &["connect/worker.properties"])
        );
        let Err(refused) = digest(&before, &["jmx/", "connect/http-source-connector.json"]) else {
            panic!("a digest of nothing is refused");
        };
        assert!(
            refused.starts_with("there is no file at `connect/http-source-connector.json`, which a service or step reads"),
            "{refused}"
        );
    }
}
