//! The catalog table's schema, created where no template does (the local stack, tests).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use lifeboat_ports::{PortError, PortResult};

use super::{DynamoDbCatalog, INDEX_BY_LOCATION, INDEX_BY_RESOURCE, INDEX_BY_STATUS, TTL_ATTRIBUTE, build_err};
use crate::port_error;

impl DynamoDbCatalog {
    /// Creates the catalog table with Lifeboat's schema if it does not exist (local stack
    /// and tests; in AWS the SAM template owns it). Returns once the table is active.
    pub async fn ensure_table(&self) -> PortResult<()> {
        let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let gsi = |name: &str, pk: &str, sk: &str| -> PortResult<GlobalSecondaryIndex> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash).map_err(build_err)?)
                .key_schema(key(sk, KeyType::Range).map_err(build_err)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_err)
        };
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(build_err)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_err)?)
            .global_secondary_indexes(gsi(INDEX_BY_RESOURCE, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(gsi(INDEX_BY_STATUS, "gsi2pk", "gsi2sk")?)
            .global_secondary_indexes(gsi(INDEX_BY_LOCATION, "gsi3pk", "gsi3sk")?);
        for a in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"] {
            req = req.attribute_definitions(attr(a).map_err(build_err)?);
        }
        match req.send().await.map_err(|e| port_error("CreateTable", e)) {
            Ok(_) | Err(PortError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        for _ in 0..60 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| port_error("DescribeTable", e))?;
            if out
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE")
            {
                let ttl = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(build_err)?;
                // Already-enabled TTL is reported as a validation error: that is fine.
                let _ = self
                    .client
                    .update_time_to_live()
                    .table_name(&self.table)
                    .time_to_live_specification(ttl)
                    .send()
                    .await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(PortError::Unavailable(format!(
            "table {} did not become ACTIVE",
            self.table
        )))
    }
}
