//! `aws:ec2:RouteTable`, `aws:ec2:Route` and `aws:ec2:RouteTableAssociation`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType};

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::cidr::check_cidr;
use crate::{
    Aws, AwsKind, Route, RouteArgs, RouteTable, RouteTableArgs, RouteTableAssociation,
    RouteTableAssociationArgs, RouteTableAssociationValues, RouteTableValues, RouteValues, Tagging,
    aws_error, deleted, found, lookup, with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{needed, require};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `RouteTable` (rendered in the provider's RESOURCES.md).
pub(crate) const ROUTE_TABLE_TABLE: DiffTable = DiffTable {
    type_token: RouteTable::TYPE,
    rows: &[
        DiffRow {
            inputs: &["vpc_id"],
            change: Change::Replace,
            note: "",
        },
        DiffRow {
            inputs: &["tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct RouteTableKind;
/// The diff table of `Route` (rendered in the provider's RESOURCES.md).
pub(crate) const ROUTE_TABLE: DiffTable = DiffTable {
    type_token: Route::TYPE,
    rows: &[
        DiffRow {
            inputs: &["route_table_id", "destination_cidr_block"],
            change: Change::Replace,
            note: "",
        },
        DiffRow {
            inputs: &["gateway_id"],
            change: Change::InPlace,
            note: "ReplaceRoute",
        },
    ],
};

pub(crate) struct RouteKind;
/// The diff table of `RouteTableAssociation` (rendered in the provider's RESOURCES.md).
pub(crate) const ASSOCIATION_TABLE: DiffTable = DiffTable {
    type_token: RouteTableAssociation::TYPE,
    rows: &[DiffRow {
        inputs: &["subnet_id", "route_table_id"],
        change: Change::Replace,
        note: "AWS gives a moved association a new id",
    }],
};

pub(crate) struct AssociationKind;

async fn describe_table(
    aws: &Aws,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    Ok(found(
        aws.ec2
            .describe_route_tables()
            .route_table_ids(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeRouteTables", e)),
    )?
    .and_then(|out| out.route_tables().first().cloned()))
}

#[async_trait]
impl AwsKind for RouteTableKind {
    fn token(&self) -> &'static str {
        RouteTable::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ROUTE_TABLE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &RouteTableArgs::required(), &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let table = RouteTableValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .create_route_table()
            .vpc_id(table.vpc_id)
            .client_token(r.idempotency_token)
            .tag_specifications(tag_spec(
                ResourceType::RouteTable,
                r.stack,
                r.name,
                &table.tags,
            ))
            .send()
            .await
            .map_err(|e| aws_error("CreateRouteTable", e))?;
        Ok(out
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| ProviderError::new("CreateRouteTable returned no id"))?
            .to_owned())
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let table = match r.id {
            Some(id) => describe_table(aws, id).await?,
            None => aws
                .ec2
                .describe_route_tables()
                .set_filters(Some(owner_filters(r.stack, r.name)))
                .send()
                .await
                .map_err(|e| aws_error("DescribeRouteTables", e))?
                .route_tables()
                .first()
                .cloned(),
        };
        let Some(table) = table else { return Ok(None) };
        let inputs = RouteTableValues {
            vpc_id: table.vpc_id().unwrap_or_default().to_owned(),
            tags: user_tags(r.stack, r.name, table.tags()),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: table.route_table_id().unwrap_or_default().to_owned(),
            outputs: inputs.clone(),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            RouteTableValues::from_known(r.old_inputs)?,
            RouteTableValues::from_known(r.new_inputs)?,
        );
        update_tags(aws, r, &old.tags, &new.tags).await?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .delete_route_table()
                    .route_table_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteRouteTable", e)),
            )
        })
        .await
    }
}

/// A route's id: `<route table>_<destination>`.
fn route_id(table: &str, destination: &str) -> String {
    format!("{table}_{destination}")
}

#[async_trait]
impl AwsKind for RouteKind {
    fn token(&self) -> &'static str {
        Route::TYPE
    }
    fn tagging(&self) -> Tagging {
        Tagging::Untagged
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ROUTE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &RouteArgs::required(), &mut failures);
        check_cidr(inputs, "destination_cidr_block", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let route = RouteValues::from_known(r.inputs)?;
        aws.ec2_once
            .create_route()
            .route_table_id(&route.route_table_id)
            .destination_cidr_block(&route.destination_cidr_block)
            .gateway_id(&route.gateway_id)
            .send()
            .await
            .map_err(|e| aws_error("CreateRoute", e))?;
        Ok(route_id(
            &route.route_table_id,
            &route.destination_cidr_block,
        ))
    }

    /// The route to the destination, when it goes where this one should (a route an
    /// earlier run made, or exactly the one asked for).
    async fn find(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let asked = RouteValues::from_known(r.inputs)?;
        let Some(found) = describe_table(aws, &asked.route_table_id).await? else {
            return Ok(None);
        };
        let same = found.routes().iter().any(|route| {
            route.destination_cidr_block() == Some(&asked.destination_cidr_block)
                && route.gateway_id() == Some(&asked.gateway_id)
        });
        Ok(same.then(|| route_id(&asked.route_table_id, &asked.destination_cidr_block)))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = RouteValues::from_recorded(r.inputs)?;
        let (table_id, destination) = (
            needed(&recorded.route_table_id, "route_table_id")?,
            needed(&recorded.destination_cidr_block, "destination_cidr_block")?,
        );
        let Some(table) = describe_table(aws, table_id).await? else {
            return Ok(None);
        };
        let Some(route) = table
            .routes()
            .iter()
            .find(|route| route.destination_cidr_block() == Some(destination))
        else {
            return Ok(None);
        };
        let now = RouteValues {
            route_table_id: table_id.to_owned(),
            destination_cidr_block: destination.to_owned(),
            gateway_id: route.gateway_id().unwrap_or_default().to_owned(),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: route_id(table_id, destination),
            outputs: now.clone(),
            inputs: Some(now),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let route = RouteValues::from_known(r.new_inputs)?;
        aws.ec2
            .replace_route()
            .route_table_id(route.route_table_id)
            .destination_cidr_block(route.destination_cidr_block)
            .gateway_id(route.gateway_id)
            .send()
            .await
            .map_err(|e| aws_error("ReplaceRoute", e))?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        let route = RouteValues::from_known(r.inputs)?;
        deleted(
            aws.ec2
                .delete_route()
                .route_table_id(route.route_table_id)
                .destination_cidr_block(route.destination_cidr_block)
                .send()
                .await
                .map_err(|e| aws_error("DeleteRoute", e)),
        )
    }
}

#[async_trait]
impl AwsKind for AssociationKind {
    fn token(&self) -> &'static str {
        RouteTableAssociation::TYPE
    }
    fn tagging(&self) -> Tagging {
        Tagging::Untagged
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ASSOCIATION_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(
            inputs,
            &RouteTableAssociationArgs::required(),
            &mut failures,
        );
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let association = RouteTableAssociationValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .associate_route_table()
            .route_table_id(association.route_table_id)
            .subnet_id(association.subnet_id)
            .send()
            .await
            .map_err(|e| aws_error("AssociateRouteTable", e))?;
        Ok(out
            .association_id()
            .ok_or_else(|| ProviderError::new("AssociateRouteTable returned no association id"))?
            .to_owned())
    }

    /// The subnet's association, when it is with this route table.
    async fn find(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let asked = RouteTableAssociationValues::from_known(r.inputs)?;
        let Some(found) = self.read(aws, &lookup(r)).await? else {
            return Ok(None);
        };
        let now = RouteTableAssociationValues::from_recorded(&found.outputs)?;
        Ok((now.route_table_id == asked.route_table_id).then_some(found.id))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = RouteTableAssociationValues::from_recorded(r.inputs)?;
        let subnet = needed(&recorded.subnet_id, "subnet_id")?;
        let out = aws
            .ec2
            .describe_route_tables()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(subnet)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("DescribeRouteTables", e))?;
        let found = out.route_tables().iter().find_map(|t| {
            t.associations()
                .iter()
                .find(|a| {
                    a.subnet_id() == Some(subnet)
                        && r.id
                            .is_none_or(|id| a.route_table_association_id() == Some(id))
                })
                .map(|a| {
                    (
                        t.route_table_id().unwrap_or_default(),
                        a.route_table_association_id().unwrap_or_default(),
                    )
                })
        });
        let Some((table, association)) = found else {
            return Ok(None);
        };
        let now = RouteTableAssociationValues {
            route_table_id: table.to_owned(),
            subnet_id: subnet.to_owned(),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: association.to_owned(),
            outputs: now.clone(),
            inputs: Some(now),
        }))
    }

    async fn update(
        &self,
        _aws: &Aws,
        r: &UpdateRequest<'_>,
    ) -> Result<PropertyMap, ProviderError> {
        // Every input replaces; nothing is left to change in place.
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        deleted(
            aws.ec2
                .disassociate_route_table()
                .association_id(r.id)
                .send()
                .await
                .map_err(|e| aws_error("DisassociateRouteTable", e)),
        )
    }
}
