//! `aws:ec2:InternetGateway` (with its VPC attachment).
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::{Aws, AwsKind, InternetGateway, aws_error, deleted, found, is_not_found, with_retries};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::string_map_value;
use iac_core::provider::known::{KnownInputs, map};
use iac_core::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, ProviderError, ReadRequest,
    ReadResponse, UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `InternetGateway` (rendered in the provider's RESOURCES.md).
pub(crate) const INTERNET_GATEWAY_TABLE: DiffTable = DiffTable {
    type_token: InternetGateway::TYPE,
    rows: &[
        DiffRow {
            inputs: &["vpc_id"],
            change: Change::InPlace,
            note: "detach, attach",
        },
        DiffRow {
            inputs: &["tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct InternetGatewayKind;

async fn attach(aws: &Aws, id: &str, vpc: &str) -> Result<(), ProviderError> {
    with_retries(&aws.settings, || async {
        aws.ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|e| aws_error("AttachInternetGateway", e))
    })
    .await
    .map(drop)
}

async fn detach(aws: &Aws, id: &str, vpc: &str) -> Result<(), ProviderError> {
    // Public IPs mapped in the VPC keep the gateway busy for a while after instances go.
    with_retries(&aws.settings, || async {
        match aws
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|e| aws_error("DetachInternetGateway", e))
        {
            Err(e) if is_not_found(&e) || e.code.as_deref() == Some("Gateway.NotAttached") => {
                Ok(())
            }
            other => other.map(drop),
        }
    })
    .await
}

#[async_trait]
impl AwsKind for InternetGatewayKind {
    fn token(&self) -> &'static str {
        InternetGateway::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &INTERNET_GATEWAY_TABLE
    }

    fn check(&self, _inputs: &Properties) -> Vec<CheckFailure> {
        Vec::new()
    }

    async fn create(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError> {
        let inputs = KnownInputs(r.inputs);
        let out = aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(
                ResourceType::InternetGateway,
                r.stack,
                r.name,
                &inputs.string_map("tags"),
            ))
            .send()
            .await
            .map_err(|e| aws_error("CreateInternetGateway", e))?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| ProviderError::new("CreateInternetGateway returned no id"))?
            .to_owned();
        if let Some(vpc) = inputs.opt_str("vpc_id") {
            attach(aws, &id, vpc).await?;
        }
        Ok(CreateResponse {
            id,
            outputs: r.inputs.clone(),
        })
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let call = aws.ec2.describe_internet_gateways();
        let call = match r.id {
            Some(id) => call.internet_gateway_ids(id),
            None => call.set_filters(Some(owner_filters(r.stack, r.name))),
        };
        let Some(out) = found(
            call.send()
                .await
                .map_err(|e| aws_error("DescribeInternetGateways", e)),
        )?
        else {
            return Ok(None);
        };
        let Some(gateway) = out.internet_gateways().first() else {
            return Ok(None);
        };
        let vpc = gateway.attachments().first().and_then(|a| a.vpc_id());
        let inputs = map([
            ("vpc_id", vpc.map_or(Value::Null, Value::from)),
            (
                "tags",
                string_map_value(&user_tags(r.stack, r.name, gateway.tags())),
            ),
        ]);
        Ok(Some(ReadResponse {
            id: gateway.internet_gateway_id().unwrap_or_default().to_owned(),
            outputs: inputs.clone(),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            KnownInputs(r.old_inputs).opt_str("vpc_id"),
            KnownInputs(r.new_inputs).opt_str("vpc_id"),
        );
        if old != new {
            if let Some(vpc) = old {
                detach(aws, r.id, vpc).await?;
            }
            if let Some(vpc) = new {
                attach(aws, r.id, vpc).await?;
            }
        }
        update_tags(aws, r).await?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        if let Some(vpc) = KnownInputs(r.inputs).opt_str("vpc_id") {
            detach(aws, r.id, vpc).await?;
        }
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteInternetGateway", e)),
            )
        })
        .await
    }
}
