//! `aws:ec2:Subnet`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::cidr::check_cidr;
use crate::{Aws, AwsKind, Subnet, aws_error, deleted, found, wait_for, with_retries};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::string_map_value;
use iac_core::provider::known::{KnownInputs, map, require};
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
        require(inputs, &["vpc_id", "cidr_block"], &mut failures);
        check_cidr(inputs, "cidr_block", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let inputs = KnownInputs(r.inputs);
        let out = aws
            .ec2_once
            .create_subnet()
            .vpc_id(inputs.str("vpc_id")?)
            .cidr_block(inputs.str("cidr_block")?)
            .set_availability_zone(inputs.opt_str("availability_zone").map(str::to_owned))
            .tag_specifications(tag_spec(
                ResourceType::Subnet,
                r.stack,
                r.name,
                &inputs.string_map("tags"),
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
        if KnownInputs(r.inputs).bool("map_public_ip_on_launch") {
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
        let recorded = |key: &str| r.inputs.get(key).cloned().unwrap_or(Value::Null);
        let inputs = map([
            ("vpc_id", Value::from(subnet.vpc_id().unwrap_or_default())),
            (
                "cidr_block",
                Value::from(subnet.cidr_block().unwrap_or_default()),
            ),
            // Left to AWS in the program: report it unset, so it is not drift.
            (
                "availability_zone",
                if recorded("availability_zone").is_null() {
                    Value::Null
                } else {
                    Value::from(zone)
                },
            ),
            (
                "map_public_ip_on_launch",
                if recorded("map_public_ip_on_launch").is_null() {
                    Value::Null
                } else {
                    Value::from(subnet.map_public_ip_on_launch().unwrap_or(false))
                },
            ),
            (
                "tags",
                string_map_value(&user_tags(r.stack, r.name, subnet.tags())),
            ),
        ]);
        let mut outputs = inputs.clone();
        outputs.insert("availability_zone".to_owned(), Value::from(zone));
        Ok(Some(ReadResponse {
            id: subnet.subnet_id().unwrap_or_default().to_owned(),
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let key = "map_public_ip_on_launch";
        let new = r.new_inputs.get(key).and_then(Value::as_bool);
        if new.is_some() && new != r.old_inputs.get(key).and_then(Value::as_bool) {
            set_public_ip(aws, r.id, new.unwrap_or(false)).await?;
        }
        update_tags(aws, r).await?;
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
