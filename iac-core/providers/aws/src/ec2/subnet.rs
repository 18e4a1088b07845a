//! `aws:ec2:Subnet`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::cidr::check_cidr;
use crate::{
    Aws, AwsKind, Subnet, SubnetArgs, SubnetValues, aws_error, deleted, found, wait_for,
    with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::require;
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `Subnet` (rendered in the provider's RESOURCES.md).
pub(crate) const SUBNET_TABLE: DiffTable = DiffTable {
    type_token: Subnet::TYPE,
    rows: &[
        DiffRow {
            inputs: &["vpc_id", "cidr_block", "availability_zone"],
            change: Change::Replace,
            note: "",
        },
        DiffRow {
            inputs: &["map_public_ip_on_launch", "tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct SubnetKind;

async fn set_public_ip(aws: &Aws, id: &str, value: bool) -> Result<(), ProviderError> {
    aws.ec2
        .modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(value).build())
        .send()
        .await
        .map_err(|e| aws_error("ModifySubnetAttribute", e))?;
    Ok(())
}

#[async_trait]
impl AwsKind for SubnetKind {
    fn token(&self) -> &'static str {
        Subnet::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &SUBNET_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &SubnetArgs::required(), &mut failures);
        check_cidr(inputs, "cidr_block", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let subnet = SubnetValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .create_subnet()
            .vpc_id(subnet.vpc_id)
            .cidr_block(subnet.cidr_block)
            .set_availability_zone(subnet.availability_zone)
            .tag_specifications(tag_spec(
                ResourceType::Subnet,
                r.stack,
                r.name,
                &subnet.tags,
            ))
            .send()
            .await
            .map_err(|e| aws_error("CreateSubnet", e))?;
        Ok(out
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or_else(|| ProviderError::new("CreateSubnet returned no subnet"))?
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        if SubnetValues::from_known(r.inputs)?.map_public_ip_on_launch == Some(true) {
            with_retries(&aws.settings, || set_public_ip(aws, id, true)).await?;
        }
        let subnet = wait_for(&aws.settings, "the new subnet to show", || async {
            found(
                aws.ec2
                    .describe_subnets()
                    .subnet_ids(id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeSubnets", e)),
            )
            .map(|out| out.and_then(|out| out.subnets().first().cloned()))
        })
        .await?;
        let mut outputs = r.inputs.clone();
        outputs.insert(
            "availability_zone".to_owned(),
            Value::from(subnet.availability_zone().unwrap_or_default()),
        );
        Ok(outputs)
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let call = aws.ec2.describe_subnets();
        let call = match r.id {
            Some(id) => call.subnet_ids(id),
            None => call.set_filters(Some(owner_filters(r.stack, r.name))),
        };
        let Some(out) = found(
            call.send()
                .await
                .map_err(|e| aws_error("DescribeSubnets", e)),
        )?
        else {
            return Ok(None);
        };
        let Some(subnet) = out.subnets().first() else {
            return Ok(None);
        };
        let zone = subnet.availability_zone().unwrap_or_default();
        let recorded = SubnetValues::from_recorded(r.inputs)?;
        let inputs = SubnetValues {
            vpc_id: subnet.vpc_id().unwrap_or_default().to_owned(),
            cidr_block: subnet.cidr_block().unwrap_or_default().to_owned(),
            // Left to AWS in the program: report it unset, so it is not drift.
            availability_zone: recorded.availability_zone.map(|_| zone.to_owned()),
            map_public_ip_on_launch: recorded
                .map_public_ip_on_launch
                .map(|_| subnet.map_public_ip_on_launch().unwrap_or(false)),
            tags: user_tags(r.stack, r.name, subnet.tags()),
        }
        .to_properties();
        let mut outputs = inputs.clone();
        outputs.insert("availability_zone".to_owned(), Value::from(zone));
        Ok(Some(ReadResponse {
            id: subnet.subnet_id().unwrap_or_default().to_owned(),
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            SubnetValues::from_known(r.old_inputs)?,
            SubnetValues::from_known(r.new_inputs)?,
        );
        if let Some(public) = new.map_public_ip_on_launch
            && old.map_public_ip_on_launch != Some(public)
        {
            set_public_ip(aws, r.id, public).await?;
        }
        update_tags(aws, r, &old.tags, &new.tags).await?;
        let mut outputs = r.new_inputs.clone();
        outputs.insert(
            "availability_zone".to_owned(),
            r.old_outputs
                .get("availability_zone")
                .cloned()
                .unwrap_or(Value::Null),
        );
        Ok(outputs)
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .delete_subnet()
                    .subnet_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteSubnet", e)),
            )
        })
        .await
    }
}
