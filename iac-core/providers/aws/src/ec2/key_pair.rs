//! `aws:ec2:KeyPair` (an imported public key).
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::ResourceType;
use serde_json::Value;

use super::{tag_spec, update_tags, user_tags};
use crate::{Aws, AwsKind, KeyPair, aws_error, deleted, found};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::string_map_value;
use iac_core::provider::known::{KnownInputs, known_str, map, require};
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, ProviderError, ReadRequest,
    ReadResponse, UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

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
        require(inputs, &["key_name", "public_key"], &mut failures);
        if let Some(key) = known_str(inputs, "public_key") {
            let kind = key.split_whitespace().next().unwrap_or("");
            if !matches!(
                kind,
                "ssh-rsa"
                    | "ssh-ed25519"
                    | "ecdsa-sha2-nistp256"
                    | "ecdsa-sha2-nistp384"
                    | "ecdsa-sha2-nistp521"
            ) {
                failures.push(CheckFailure::new(
                    "public_key",
                    "is not an OpenSSH public key (it should start with ssh-ed25519, ssh-rsa or ecdsa-sha2-…)",
                ));
            }
        }
        failures
    }

    async fn create(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError> {
        let inputs = KnownInputs(r.inputs);
        let name = inputs.str("key_name")?;
        let out = aws
            .ec2
            .import_key_pair()
            .key_name(name)
            .public_key_material(Blob::new(inputs.str("public_key")?.as_bytes()))
            .tag_specifications(tag_spec(
                ResourceType::KeyPair,
                r.stack,
                r.name,
                &inputs.string_map("tags"),
            ))
            .send()
            .await
            .map_err(|e| aws_error("ImportKeyPair", e))?;
        let mut outputs = r.inputs.clone();
        outputs.insert(
            "key_fingerprint".to_owned(),
            Value::from(out.key_fingerprint().unwrap_or_default()),
        );
        let id = out.key_pair_id().unwrap_or(name).to_owned();
        Ok(CreateResponse { id, outputs })
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let name = KnownInputs(r.inputs).str("key_name")?;
        let Some(out) = found(
            aws.ec2
                .describe_key_pairs()
                .key_names(name)
                .send()
                .await
                .map_err(|e| aws_error("DescribeKeyPairs", e)),
        )?
        else {
            return Ok(None);
        };
        let Some(key) = out.key_pairs().first() else {
            return Ok(None);
        };
        let inputs = map([
            ("key_name", Value::from(key.key_name().unwrap_or_default())),
            // AWS does not return the public key; what was imported is what is recorded.
            (
                "public_key",
                r.inputs.get("public_key").cloned().unwrap_or(Value::Null),
            ),
            (
                "tags",
                string_map_value(&user_tags(r.stack, r.name, key.tags())),
            ),
        ]);
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
        update_tags(aws, r).await?;
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
                .key_name(KnownInputs(r.inputs).str("key_name")?)
                .send()
                .await
                .map_err(|e| aws_error("DeleteKeyPair", e)),
        )
    }
}
