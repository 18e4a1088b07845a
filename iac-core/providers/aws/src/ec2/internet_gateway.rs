//! `aws:ec2:InternetGateway` (with its VPC attachment).
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::create::is_duplicate;
use crate::{
    Aws, AwsKind, InternetGateway, InternetGatewayValues, aws_error, deleted, found, is_not_found,
    with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
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

/// Attaches the gateway to `vpc`; already attached there (an earlier run's lost answer) is
/// done.
async fn attach(aws: &Aws, id: &str, vpc: &str) -> Result<(), ProviderError> {
    let attached = with_retries(&aws.settings, || async {
        aws.ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|e| aws_error("AttachInternetGateway", e))
    })
    .await;
    match attached {
        Err(e) if is_duplicate(&e) => {
            let out = aws
                .ec2
                .describe_internet_gateways()
                .internet_gateway_ids(id)
                .send()
                .await
                .map_err(|e| aws_error("DescribeInternetGateways", e))?;
            let there = out
                .internet_gateways()
                .iter()
                .flat_map(|g| g.attachments())
                .any(|a| a.vpc_id() == Some(vpc));
            if there { Ok(()) } else { Err(e) }
        }
        other => other.map(drop),
    }
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

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let out = aws
            .ec2_once
            .create_internet_gateway()
            .tag_specifications(tag_spec(
                ResourceType::InternetGateway,
                r.stack,
                r.name,
                &InternetGatewayValues::from_known(r.inputs)?.tags,
            ))
            .send()
            .await
            .map_err(|e| aws_error("CreateInternetGateway", e))?;
        Ok(out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| ProviderError::new("CreateInternetGateway returned no id"))?
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        if let Some(vpc) = InternetGatewayValues::from_known(r.inputs)?.vpc_id {
            attach(aws, id, &vpc).await?;
        }
        Ok(r.inputs.clone())
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
        let inputs = InternetGatewayValues {
            vpc_id: gateway
                .attachments()
                .first()
                .and_then(|a| a.vpc_id())
                .map(str::to_owned),
            tags: user_tags(r.stack, r.name, gateway.tags()),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: gateway.internet_gateway_id().unwrap_or_default().to_owned(),
            outputs: inputs.clone(),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            InternetGatewayValues::from_known(r.old_inputs)?,
            InternetGatewayValues::from_known(r.new_inputs)?,
        );
        if old.vpc_id != new.vpc_id {
            if let Some(vpc) = &old.vpc_id {
                detach(aws, r.id, vpc).await?;
            }
            if let Some(vpc) = &new.vpc_id {
                attach(aws, r.id, vpc).await?;
            }
        }
        update_tags(aws, r, &old.tags, &new.tags).await?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        if let Some(vpc) = InternetGatewayValues::from_recorded(r.inputs)?.vpc_id {
            detach(aws, r.id, &vpc).await?;
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
