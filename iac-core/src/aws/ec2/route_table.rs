//! `aws:ec2:RouteTable`, `aws:ec2:Route` and `aws:ec2:RouteTableAssociation`.
//!
//! | kind | input | change |
//! |---|---|---|
//! | RouteTable | `vpc_id` | replace |
//! | RouteTable | `tags` | in place |
//! | Route | `route_table_id`, `destination_cidr_block` | replace |
//! | Route | `gateway_id` | in place (ReplaceRoute) |
//! | RouteTableAssociation | `subnet_id`, `route_table_id` | replace (AWS gives a moved association a new id) |

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType};
use serde_json::Value;

use super::{owner_filters, tag_spec, tags_value, update_tags, user_tags};
use crate::ResourceType as _;
use crate::aws::props::{Inputs, check_cidr, map, require};
use crate::aws::{
    Aws, AwsKind, Route, RouteTable, RouteTableAssociation, aws_error, deleted, found, with_retries,
};
use crate::property::{Properties, PropertyMap};
use crate::provider::{
    CheckFailure, CreateRequest, CreateResponse, DeleteRequest, ProviderError, ReadRequest,
    ReadResponse, UpdateRequest,
};

pub(crate) struct RouteTableKind;
pub(crate) struct RouteKind;
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

    fn replace_on(&self) -> &'static [&'static str] {
        &["vpc_id"]
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &["vpc_id"], &mut failures);
        failures
    }

    async fn create(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError> {
        let inputs = Inputs(r.inputs);
        let out = with_retries(&aws.settings, || async {
            aws.ec2
                .create_route_table()
                .vpc_id(inputs.str("vpc_id")?)
                .tag_specifications(tag_spec(
                    ResourceType::RouteTable,
                    r.stack,
                    r.name,
                    &inputs.tags(),
                ))
                .send()
                .await
                .map_err(|e| aws_error("CreateRouteTable", e))
        })
        .await?;
        let id = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| ProviderError::new("CreateRouteTable returned no id"))?
            .to_owned();
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
        let inputs = map([
            ("vpc_id", Value::from(table.vpc_id().unwrap_or_default())),
            (
                "tags",
                tags_value(&user_tags(r.stack, r.name, table.tags())),
            ),
        ]);
        Ok(Some(ReadResponse {
            id: table.route_table_id().unwrap_or_default().to_owned(),
            outputs: inputs.clone(),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        update_tags(aws, r).await?;
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

    fn replace_on(&self) -> &'static [&'static str] {
        &["route_table_id", "destination_cidr_block"]
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(
            inputs,
            &["route_table_id", "destination_cidr_block", "gateway_id"],
            &mut failures,
        );
        check_cidr(inputs, "destination_cidr_block", &mut failures);
        failures
    }

    async fn create(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError> {
        let inputs = Inputs(r.inputs);
        let (table, destination) = (
            inputs.str("route_table_id")?,
            inputs.str("destination_cidr_block")?,
        );
        with_retries(&aws.settings, || async {
            aws.ec2
                .create_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .gateway_id(inputs.str("gateway_id")?)
                .send()
                .await
                .map_err(|e| aws_error("CreateRoute", e))
        })
        .await?;
        Ok(CreateResponse {
            id: route_id(table, destination),
            outputs: r.inputs.clone(),
        })
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let inputs = Inputs(r.inputs);
        let (table_id, destination) = (
            inputs.str("route_table_id")?,
            inputs.str("destination_cidr_block")?,
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
        let now = map([
            ("route_table_id", Value::from(table_id)),
            ("destination_cidr_block", Value::from(destination)),
            (
                "gateway_id",
                route.gateway_id().map_or(Value::Null, Value::from),
            ),
        ]);
        Ok(Some(ReadResponse {
            id: route_id(table_id, destination),
            outputs: now.clone(),
            inputs: Some(now),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let inputs = Inputs(r.new_inputs);
        aws.ec2
            .replace_route()
            .route_table_id(inputs.str("route_table_id")?)
            .destination_cidr_block(inputs.str("destination_cidr_block")?)
            .gateway_id(inputs.str("gateway_id")?)
            .send()
            .await
            .map_err(|e| aws_error("ReplaceRoute", e))?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        let inputs = Inputs(r.inputs);
        deleted(
            aws.ec2
                .delete_route()
                .route_table_id(inputs.str("route_table_id")?)
                .destination_cidr_block(inputs.str("destination_cidr_block")?)
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

    fn replace_on(&self) -> &'static [&'static str] {
        &["subnet_id", "route_table_id"]
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &["route_table_id", "subnet_id"], &mut failures);
        failures
    }

    async fn create(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError> {
        let inputs = Inputs(r.inputs);
        let out = with_retries(&aws.settings, || async {
            aws.ec2
                .associate_route_table()
                .route_table_id(inputs.str("route_table_id")?)
                .subnet_id(inputs.str("subnet_id")?)
                .send()
                .await
                .map_err(|e| aws_error("AssociateRouteTable", e))
        })
        .await?;
        let id = out
            .association_id()
            .ok_or_else(|| ProviderError::new("AssociateRouteTable returned no association id"))?
            .to_owned();
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
        let subnet = Inputs(r.inputs).str("subnet_id")?;
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
        let now = map([
            ("route_table_id", Value::from(table)),
            ("subnet_id", Value::from(subnet)),
        ]);
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
