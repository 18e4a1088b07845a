//! Every environment file the project ships loads and passes every policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::Path;

use kafka_components::PlatformConfig;

#[test]
fn every_shipped_environment_passes_every_policy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let env = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut config = PlatformConfig::load(&dir, &env).unwrap_or_else(|e| panic!("{e}"));
        // As the CLI does.
        config
            .security
            .resolve_credentials_dir(&env, Path::new("/home/operator"));
        if let Err(e) = kafka_components::policy::check(&config) {
            panic!("{}: refused by policy:\n{e}", path.display());
        }
        checked.push(env);
    }
    checked.sort();
    assert_eq!(
        checked,
        ["dev", "local", "prod"],
        "a new environment file is checked too"
    );
}
