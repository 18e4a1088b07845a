//! `aws:ec2:Vpc`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, VpcAttributeName};
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::cidr::check_cidr;
use crate::{
    Aws, AwsKind, Vpc, VpcArgs, VpcValues, aws_error, deleted, found, wait_for, with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `Vpc` (rendered in the provider's RESOURCES.md).
pub(crate) const VPC_TABLE: DiffTable = DiffTable {
    type_token: Vpc::TYPE,
    rows: &[
        DiffRow {
            inputs: &["cidr_block"],
            change: Change::Replace,
            note: "",
        },
        DiffRow {
            inputs: &["enable_dns_hostnames", "enable_dns_support", "tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct VpcKind;

async fn set_attribute(
    aws: &Aws,
    id: &str,
    attribute: VpcAttributeName,
    value: bool,
) -> Result<(), ProviderError> {
    let v = AttributeBooleanValue::builder().value(value).build();
    let call = aws.ec2.modify_vpc_attribute().vpc_id(id);
    let call = match attribute {
        VpcAttributeName::EnableDnsHostnames => call.enable_dns_hostnames(v),
        _ => call.enable_dns_support(v),
    };
    call.send()
        .await
        .map_err(|e| aws_error("ModifyVpcAttribute", e))?;
    Ok(())
}

async fn get_attribute(
    aws: &Aws,
    id: &str,
    attribute: VpcAttributeName,
) -> Result<bool, ProviderError> {
    let out = aws
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcAttribute", e))?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value
        .and_then(AttributeBooleanValue::value)
        .unwrap_or(false))
}

/// The DNS attributes a VPC's arguments set (`None`: left to AWS).
fn attributes(vpc: &VpcValues) -> [(Option<bool>, VpcAttributeName); 2] {
    [
        (
            vpc.enable_dns_hostnames,
            VpcAttributeName::EnableDnsHostnames,
        ),
        (vpc.enable_dns_support, VpcAttributeName::EnableDnsSupport),
    ]
}

#[async_trait]
impl AwsKind for VpcKind {
    fn token(&self) -> &'static str {
        Vpc::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &VPC_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &VpcArgs::required(), &mut failures);
        check_cidr(inputs, "cidr_block", &mut failures);
        if let Some(cidr) =
            known_str(inputs, "cidr_block").and_then(|c| c.parse::<crate::Cidr>().ok())
            && !(16..=28).contains(&cidr.prefix())
        {
            failures.push(CheckFailure::new(
                "cidr_block",
                format!("{cidr}: a VPC block must be /16 to /28"),
            ));
        }
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let vpc = VpcValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .create_vpc()
            .cidr_block(vpc.cidr_block)
            .tag_specifications(tag_spec(ResourceType::Vpc, r.stack, r.name, &vpc.tags))
            .send()
            .await
            .map_err(|e| aws_error("CreateVpc", e))?;
        Ok(out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| ProviderError::new("CreateVpc returned no VPC id"))?
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        for (value, attribute) in attributes(&VpcValues::from_known(r.inputs)?) {
            if let Some(value) = value {
                with_retries(&aws.settings, || {
                    set_attribute(aws, id, attribute.clone(), value)
                })
                .await?;
            }
        }
        // The main route table shows a moment after the VPC does.
        wait_for(&aws.settings, "the VPC's main route table", || async {
            let outputs = read_outputs(aws, id, r.inputs).await?;
            let shown = outputs
                .get("main_route_table_id")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            Ok(shown.then_some(outputs))
        })
        .await
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let call = aws.ec2.describe_vpcs();
        let call = match r.id {
            Some(id) => call.vpc_ids(id),
            None => call.set_filters(Some(owner_filters(r.stack, r.name))),
        };
        let Some(out) = found(call.send().await.map_err(|e| aws_error("DescribeVpcs", e)))? else {
            return Ok(None);
        };
        let Some(vpc) = out.vpcs().first() else {
            return Ok(None);
        };
        let id = vpc.vpc_id().unwrap_or_default().to_owned();
        let recorded = VpcValues::from_recorded(r.inputs)?;
        // An attribute the program leaves to AWS stays unset, so it never shows as drift.
        let mut found = [None, None];
        for (slot, (asked, attribute)) in found.iter_mut().zip(attributes(&recorded)) {
            if asked.is_some() {
                *slot = Some(get_attribute(aws, &id, attribute).await?);
            }
        }
        let [enable_dns_hostnames, enable_dns_support] = found;
        let now = VpcValues {
            cidr_block: vpc.cidr_block().unwrap_or_default().to_owned(),
            enable_dns_hostnames,
            enable_dns_support,
            tags: user_tags(r.stack, r.name, vpc.tags()),
        };
        let inputs = now.to_properties();
        let outputs = read_outputs(aws, &id, &inputs).await?;
        Ok(Some(ReadResponse {
            id,
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            VpcValues::from_known(r.old_inputs)?,
            VpcValues::from_known(r.new_inputs)?,
        );
        for ((old, _), (new, attribute)) in attributes(&old).into_iter().zip(attributes(&new)) {
            if let Some(value) = new.filter(|v| old != Some(*v)) {
                set_attribute(aws, r.id, attribute, value).await?;
            }
        }
        update_tags(aws, r, &old.tags, &new.tags).await?;
        read_outputs(aws, r.id, r.new_inputs).await
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .delete_vpc()
                    .vpc_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteVpc", e)),
            )
        })
        .await
    }
}

/// Outputs: the inputs plus the main route table.
async fn read_outputs(
    aws: &Aws,
    id: &str,
    inputs: &PropertyMap,
) -> Result<PropertyMap, ProviderError> {
    let tables = aws
        .ec2
        .describe_route_tables()
        .filters(Filter::builder().name("vpc-id").values(id).build())
        .filters(
            Filter::builder()
                .name("association.main")
                .values("true")
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("DescribeRouteTables", e))?;
    let main = tables
        .route_tables()
        .first()
        .and_then(|t| t.route_table_id())
        .unwrap_or_default();
    let mut outputs = inputs.clone();
    outputs.insert("main_route_table_id".to_owned(), Value::from(main));
    Ok(outputs)
}
