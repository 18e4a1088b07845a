//! `aws:ec2:ElasticIp` (with its association).
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::{
    Aws, AwsKind, ElasticIp, ElasticIpValues, aws_error, deleted, found, wait_for, with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `ElasticIp` (rendered in the provider's RESOURCES.md).
pub(crate) const ELASTIC_IP_TABLE: DiffTable = DiffTable {
    type_token: ElasticIp::TYPE,
    rows: &[
        DiffRow {
            inputs: &["instance_id"],
            change: Change::InPlace,
            note: "disassociate, associate",
        },
        DiffRow {
            inputs: &["tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct ElasticIpKind;

type Address = aws_sdk_ec2::types::Address;

async fn describe(aws: &Aws, allocation: &str) -> Result<Option<Address>, ProviderError> {
    Ok(found(
        aws.ec2
            .describe_addresses()
            .allocation_ids(allocation)
            .send()
            .await
            .map_err(|e| aws_error("DescribeAddresses", e)),
    )?
    .and_then(|out| out.addresses().first().cloned()))
}

async fn associate(aws: &Aws, allocation: &str, instance: &str) -> Result<(), ProviderError> {
    with_retries(&aws.settings, || async {
        aws.ec2
            .associate_address()
            .allocation_id(allocation)
            .instance_id(instance)
            .send()
            .await
            .map_err(|e| aws_error("AssociateAddress", e))
    })
    .await
    .map(drop)
}

async fn disassociate(aws: &Aws, allocation: &str) -> Result<(), ProviderError> {
    let Some(association) = describe(aws, allocation)
        .await?
        .and_then(|a| a.association_id().map(str::to_owned))
    else {
        return Ok(());
    };
    deleted(
        aws.ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await
            .map_err(|e| aws_error("DisassociateAddress", e)),
    )
}

fn outputs(inputs: &PropertyMap, address: Option<&Address>) -> PropertyMap {
    let mut outputs = inputs.clone();
    outputs.insert(
        "public_ip".to_owned(),
        Value::from(address.and_then(|a| a.public_ip()).unwrap_or_default()),
    );
    outputs
}

#[async_trait]
impl AwsKind for ElasticIpKind {
    fn token(&self) -> &'static str {
        ElasticIp::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ELASTIC_IP_TABLE
    }

    fn check(&self, _inputs: &Properties) -> Vec<CheckFailure> {
        Vec::new()
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let out = aws
            .ec2_once
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(
                ResourceType::ElasticIp,
                r.stack,
                r.name,
                &ElasticIpValues::from_known(r.inputs)?.tags,
            ))
            .send()
            .await
            .map_err(|e| aws_error("AllocateAddress", e))?;
        Ok(out
            .allocation_id()
            .ok_or_else(|| ProviderError::new("AllocateAddress returned no allocation id"))?
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        if let Some(instance) = ElasticIpValues::from_known(r.inputs)?.instance_id {
            associate(aws, id, &instance).await?;
        }
        let address = wait_for(&aws.settings, "the new address to show", || {
            describe(aws, id)
        })
        .await?;
        Ok(outputs(r.inputs, Some(&address)))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let address = match r.id {
            Some(id) => describe(aws, id).await?,
            None => aws
                .ec2
                .describe_addresses()
                .set_filters(Some(owner_filters(r.stack, r.name)))
                .send()
                .await
                .map_err(|e| aws_error("DescribeAddresses", e))?
                .addresses()
                .first()
                .cloned(),
        };
        let Some(address) = address else {
            return Ok(None);
        };
        let inputs = ElasticIpValues {
            instance_id: address.instance_id().map(str::to_owned),
            tags: user_tags(r.stack, r.name, address.tags()),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: address.allocation_id().unwrap_or_default().to_owned(),
            outputs: outputs(&inputs, Some(&address)),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            ElasticIpValues::from_known(r.old_inputs)?,
            ElasticIpValues::from_known(r.new_inputs)?,
        );
        if old.instance_id != new.instance_id {
            disassociate(aws, r.id).await?;
            if let Some(instance) = &new.instance_id {
                associate(aws, r.id, instance).await?;
            }
        }
        update_tags(aws, r, &old.tags, &new.tags).await?;
        let address = describe(aws, r.id).await?;
        Ok(outputs(r.new_inputs, address.as_ref()))
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        disassociate(aws, r.id).await?;
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .release_address()
                    .allocation_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("ReleaseAddress", e)),
            )
        })
        .await
    }
}
