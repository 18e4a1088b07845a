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

#[test]
fn the_platform_defaults_in_code_are_prod_s_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let prod = PlatformConfig::load(&dir, "prod").unwrap();
    let site = prod.aws().unwrap();
    let mut built = PlatformConfig::on_aws(
        &site.aws.region,
        site.network.operator_cidr,
        &site.ssh.public_key,
    );
    // prod is the SASL_SSL platform; the defaults are PLAINTEXT. prod builds the services
    // from this workspace; the defaults expect them built.
    built.security.protocol = prod.security.protocol;
    if let Some(built) = built.aws_mut() {
        built.deploy.build.clone_from(&site.deploy.build);
    }
    assert_eq!(built, prod);
    // Another region's defaults pass every policy too.
    kafka_components::policy::check(&PlatformConfig::on_aws(
        "us-east-1",
        "198.51.100.7/32".parse().unwrap(),
        &prod.aws().unwrap().ssh.public_key,
    ))
    .unwrap();
}
