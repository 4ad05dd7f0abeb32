//! The endpoint switch (SSM parameters, Route 53 records) and the DR reports (S3).

use super::{
    DnsRecords, Parameters, PerRegion, PortError, PortResult, ProvideErrorMetadata, Region, Reports, SdkConfig,
    async_trait, port_error,
};

fn ssm_client(base: &SdkConfig, region: &Region) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(base)
            .region(aws_sdk_ssm::config::Region::new(region.to_string()))
            .interceptor(crate::calls::CountCalls)
            .build(),
    )
}

/// [`DnsRecords`] over Route 53 (a global service: one client).
pub struct Route53Records {
    client: aws_sdk_route53::Client,
}

impl std::fmt::Debug for Route53Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53Records").finish_non_exhaustive()
    }
}

impl Route53Records {
    pub fn new(base: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(base)
                    .interceptor(crate::calls::CountCalls)
                    .build(),
            ),
        }
    }

    async fn change(
        &self,
        zone: &str,
        action: aws_sdk_route53::types::ChangeAction,
        name: &str,
        value: &str,
        ttl: i64,
    ) -> PortResult<()> {
        use aws_sdk_route53::types::{Change, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
        let invalid = |e: aws_sdk_route53::error::BuildError| PortError::Invalid(format!("DNS change for {name}: {e}"));
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(value).build().map_err(invalid)?)
            .build()
            .map_err(invalid)?;
        let batch = ChangeBatch::builder()
            .comment("Lifeboat DR endpoint switch")
            .changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| port_error("ChangeResourceRecordSets", e))?;
        Ok(())
    }
}

#[async_trait]
impl DnsRecords for Route53Records {
    async fn cname(&self, zone: &str, name: &str) -> PortResult<Option<String>> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(aws_sdk_route53::types::RrType::Cname)
            .send()
            .await
            .map_err(|e| port_error("ListResourceRecordSets", e))?;
        let want = lifeboat_domain::dr::plan::fqdn(name);
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| {
                lifeboat_domain::dr::plan::fqdn(r.name()) == want
                    && r.r#type() == &aws_sdk_route53::types::RrType::Cname
            })
            .and_then(|r| r.resource_records().first())
            .map(|v| v.value().to_owned()))
    }

    async fn upsert_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()> {
        self.change(zone, aws_sdk_route53::types::ChangeAction::Upsert, name, value, ttl)
            .await
    }

    async fn delete_cname(&self, zone: &str, name: &str, value: &str, ttl: i64) -> PortResult<()> {
        match self
            .change(zone, aws_sdk_route53::types::ChangeAction::Delete, name, value, ttl)
            .await
        {
            // Already gone (Route 53 answers InvalidChangeBatch: not found).
            Err(PortError::Invalid(m) | PortError::NotFound(m)) if m.contains("not found") => Ok(()),
            other => other,
        }
    }
}

/// [`Parameters`] over SSM Parameter Store.
pub struct SsmParameters {
    clients: PerRegion<aws_sdk_ssm::Client>,
}

impl std::fmt::Debug for SsmParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmParameters").finish_non_exhaustive()
    }
}

impl SsmParameters {
    pub fn new(base: SdkConfig) -> Self {
        Self {
            clients: PerRegion::new(base, ssm_client),
        }
    }

    fn client(&self, region: &Region) -> PortResult<aws_sdk_ssm::Client> {
        self.clients.get(region)
    }
}

#[async_trait]
impl Parameters for SsmParameters {
    async fn get(&self, region: &Region, name: &str) -> PortResult<Option<String>> {
        match self.client(region)?.get_parameter().name(name).send().await {
            Ok(o) => Ok(o.parameter().and_then(|p| p.value()).map(str::to_owned)),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(port_error("GetParameter", e)),
        }
    }

    async fn put(&self, region: &Region, name: &str, value: &str) -> PortResult<()> {
        self.client(region)?
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| port_error("PutParameter", e))?;
        Ok(())
    }

    async fn delete(&self, region: &Region, name: &str) -> PortResult<()> {
        match self.client(region)?.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(()),
            Err(e) => Err(port_error("DeleteParameter", e)),
        }
    }
}

/// [`Reports`] in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Reports {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Reports {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl Reports for S3Reports {
    async fn put(&self, key: &str, body: &[u8]) -> PortResult<String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("PutObject", e))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}
