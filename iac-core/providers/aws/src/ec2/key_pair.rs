//! `aws:ec2:KeyPair` (an imported public key).
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{KeyPairInfo, ResourceType};
use serde_json::Value;

use super::{owned, tag_spec, update_tags, user_tags};
use crate::{
    Aws, AwsKind, KeyPair, KeyPairArgs, KeyPairValues, aws_error, deleted, found, wait_for,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, needed, require};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The key pair of that name, if it exists.
async fn describe(aws: &Aws, name: &str) -> Result<Option<KeyPairInfo>, ProviderError> {
    Ok(found(
        aws.ec2
            .describe_key_pairs()
            .key_names(name)
            .send()
            .await
            .map_err(|e| aws_error("DescribeKeyPairs", e)),
    )?
    .and_then(|out| out.key_pairs().first().cloned()))
}

/// The diff table of `KeyPair` (rendered in the provider's RESOURCES.md).
pub(crate) const KEY_PAIR_TABLE: DiffTable = DiffTable {
    type_token: KeyPair::TYPE,
    rows: &[
        DiffRow {
            inputs: &["key_name", "public_key"],
            change: Change::ReplaceDeletingFirst,
            note: "names are unique",
        },
        DiffRow {
            inputs: &["tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

/// An OpenSSH public key: `<type> <base64 body> [comment]`, whose body decodes and names the
/// same type (AWS refuses anything else, after the rest of the stack exists).
fn check_public_key(key: &str) -> Result<(), String> {
    use base64::Engine as _;
    let mut fields = key.split_whitespace();
    let kind = fields.next().unwrap_or("");
    if !matches!(
        kind,
        "ssh-rsa"
            | "ssh-ed25519"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
    ) {
        return Err("is not an OpenSSH public key (it should start with ssh-ed25519, ssh-rsa or ecdsa-sha2-…)".to_owned());
    }
    let body = fields
        .next()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| {
            format!(
                "is a `{kind}` key whose body is not base64: copy the whole line of the .pub file"
            )
        })?;
    // The body starts with the type again, as a length-prefixed string.
    let named = body
        .get(..4)
        .and_then(|len| <[u8; 4]>::try_from(len).ok())
        .map(|len| u32::from_be_bytes(len) as usize)
        .and_then(|len| body.get(4..4 + len));
    if named != Some(kind.as_bytes()) {
        return Err(format!(
            "is a `{kind}` key whose body does not decode to a {kind} key: copy the whole line of the .pub file"
        ));
    }
    Ok(())
}

pub(crate) struct KeyPairKind;

#[async_trait]
impl AwsKind for KeyPairKind {
    fn token(&self) -> &'static str {
        KeyPair::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &KEY_PAIR_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &KeyPairArgs::required(), &mut failures);
        if let Some(key) = known_str(inputs, "public_key")
            && let Err(reason) = check_public_key(key)
        {
            failures.push(CheckFailure::new("public_key", reason));
        }
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let key = KeyPairValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .import_key_pair()
            .key_name(&key.key_name)
            .public_key_material(Blob::new(key.public_key.as_bytes()))
            .tag_specifications(tag_spec(ResourceType::KeyPair, r.stack, r.name, &key.tags))
            .send()
            .await
            .map_err(|e| aws_error("ImportKeyPair", e))?;
        Ok(out.key_pair_id().unwrap_or(&key.key_name).to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        _id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        let name = KeyPairValues::from_known(r.inputs)?.key_name;
        let key = wait_for(&aws.settings, "the imported key pair to show", || {
            describe(aws, &name)
        })
        .await?;
        let mut outputs = r.inputs.clone();
        outputs.insert(
            "key_fingerprint".to_owned(),
            Value::from(key.key_fingerprint().unwrap_or_default()),
        );
        Ok(outputs)
    }

    fn removal(&self, r: &CreateRequest<'_>) -> Option<String> {
        let name = KeyPairValues::from_known(r.inputs).ok()?.key_name;
        Some(format!("aws ec2 delete-key-pair --key-name {name}"))
    }

    /// The key pair of that name, when this stack's resource owns it.
    async fn find(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let name = KeyPairValues::from_known(r.inputs)?.key_name;
        Ok(describe(aws, &name)
            .await?
            .filter(|key| owned(r.stack, r.name, key.tags()))
            .map(|key| key.key_pair_id().unwrap_or(&name).to_owned()))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = KeyPairValues::from_recorded(r.inputs)?;
        let name = needed(&recorded.key_name, "key_name")?;
        let Some(key) = describe(aws, name).await? else {
            return Ok(None);
        };
        let inputs = KeyPairValues {
            key_name: key.key_name().unwrap_or_default().to_owned(),
            // AWS does not return the public key; what was imported is what is recorded.
            public_key: recorded.public_key.clone(),
            tags: user_tags(r.stack, r.name, key.tags()),
        }
        .to_properties();
        let mut outputs = inputs.clone();
        outputs.insert(
            "key_fingerprint".to_owned(),
            Value::from(key.key_fingerprint().unwrap_or_default()),
        );
        Ok(Some(ReadResponse {
            id: key.key_pair_id().unwrap_or(name).to_owned(),
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            KeyPairValues::from_known(r.old_inputs)?,
            KeyPairValues::from_known(r.new_inputs)?,
        );
        update_tags(aws, r, &old.tags, &new.tags).await?;
        let mut outputs = r.new_inputs.clone();
        outputs.insert(
            "key_fingerprint".to_owned(),
            r.old_outputs
                .get("key_fingerprint")
                .cloned()
                .unwrap_or(Value::Null),
        );
        Ok(outputs)
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        deleted(
            aws.ec2
                .delete_key_pair()
                .key_name(KeyPairValues::from_known(r.inputs)?.key_name)
                .send()
                .await
                .map_err(|e| aws_error("DeleteKeyPair", e)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::check_public_key;

    #[test]
    fn a_public_key_must_decode_to_its_stated_type() {
        let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr operator@dev";
        assert_eq!(check_public_key(good), Ok(()));
        let as_rsa = good.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(
            check_public_key(&as_rsa),
            Err("is a `ssh-rsa` key whose body does not decode to a ssh-rsa key: copy the whole line of the .pub file".to_owned())
        );
        assert!(
            check_public_key("ssh-ed25519 not*base64").is_err_and(|e| e.contains("not base64"))
        );
        assert!(check_public_key("ssh-ed25519 AAAA").is_err());
        assert!(
            check_public_key("hello").is_err_and(|e| e.starts_with("is not an OpenSSH public key"))
        );
    }
}
