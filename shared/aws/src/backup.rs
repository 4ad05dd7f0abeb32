//! AWS Backup: on-demand backup jobs, the recovery points of a vault, and Vault Lock, in
//! one region (the caller builds one adapter per region).
//!
//! The local emulator (moto 5.2.5) has vaults and vault lock configuration but no backup
//! jobs and no recovery point listing, so this adapter is tested with `aws-smithy-mocks`
//! only (`shared/aws/tests/aws_backup.rs`).

use async_trait::async_trait;
use aws_sdk_backup::Client;
use aws_sdk_backup::types::{Lifecycle, RecoveryPointByBackupVault};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{port_error, to_chrono};
use lifeboat_ports::{BackupJob, BackupJobState, BackupService, PortError, PortResult, VaultLock, VaultRecoveryPoint};

/// [`BackupService`] over the AWS Backup API of one region.
#[derive(Debug, Clone)]
pub struct AwsBackupService {
    client: Client,
}

impl AwsBackupService {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn recovery_point(rp: &RecoveryPointByBackupVault) -> Option<VaultRecoveryPoint> {
    Some(VaultRecoveryPoint {
        recovery_point_arn: rp.recovery_point_arn()?.to_owned(),
        resource_arn: rp.resource_arn().unwrap_or_default().to_owned(),
        resource_type: rp.resource_type().unwrap_or_default().to_owned(),
        status: rp.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        created_at: rp.creation_date().and_then(to_chrono),
        completed_at: rp.completion_date().and_then(to_chrono),
        delete_at: rp
            .calculated_lifecycle()
            .and_then(|l| l.delete_at())
            .and_then(to_chrono),
        encryption_key_arn: rp.encryption_key_arn().map(str::to_owned),
        is_encrypted: rp.is_encrypted(),
    })
}

#[async_trait]
impl BackupService for AwsBackupService {
    async fn start_backup_job(
        &self,
        vault: &str,
        resource_arn: &str,
        iam_role_arn: &str,
        idempotency_token: &str,
        delete_after_days: Option<i64>,
    ) -> PortResult<BackupJob> {
        let out = self
            .client
            .start_backup_job()
            .backup_vault_name(vault)
            .resource_arn(resource_arn)
            .iam_role_arn(iam_role_arn)
            .idempotency_token(idempotency_token)
            .set_lifecycle(delete_after_days.map(|days| Lifecycle::builder().delete_after_days(days).build()))
            .send()
            .await
            .map_err(|e| port_error("StartBackupJob", e))?;
        let job_id = out.backup_job_id().ok_or_else(|| {
            PortError::Unavailable(format!("StartBackupJob {resource_arn}: response carried no job id"))
        })?;
        Ok(BackupJob {
            job_id: job_id.to_owned(),
            resource_arn: resource_arn.to_owned(),
            // StartBackupJob reports no state: every job begins CREATED.
            state: BackupJobState::Created,
            recovery_point_arn: out.recovery_point_arn().map(str::to_owned),
            status_message: None,
            size_bytes: None,
        })
    }

    async fn describe_backup_job(&self, job_id: &str) -> PortResult<Option<BackupJob>> {
        let out = match self.client.describe_backup_job().backup_job_id(job_id).send().await {
            Ok(out) => out,
            Err(e) => {
                return match port_error("DescribeBackupJob", e) {
                    PortError::NotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        Ok(Some(BackupJob {
            job_id: out.backup_job_id().unwrap_or(job_id).to_owned(),
            resource_arn: out.resource_arn().unwrap_or_default().to_owned(),
            state: out
                .state()
                .map_or(BackupJobState::Created, |s| BackupJobState::from_aws(s.as_str())),
            recovery_point_arn: out.recovery_point_arn().map(str::to_owned),
            status_message: out.status_message().map(str::to_owned),
            size_bytes: out
                .backup_size_in_bytes()
                .and_then(|b| u64::try_from(b).ok())
                .filter(|b| *b > 0),
        }))
    }

    async fn recovery_points(&self, vault: &str, resource_arn: Option<&str>) -> PortResult<Vec<VaultRecoveryPoint>> {
        let all = self
            .client
            .list_recovery_points_by_backup_vault()
            .backup_vault_name(vault)
            .set_by_resource_arn(resource_arn.map(str::to_owned))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| port_error("ListRecoveryPointsByBackupVault", e))?;
        Ok(all.iter().filter_map(recovery_point).collect())
    }

    async fn delete_recovery_point(&self, vault: &str, recovery_point_arn: &str) -> PortResult<()> {
        match self
            .client
            .delete_recovery_point()
            .backup_vault_name(vault)
            .recovery_point_arn(recovery_point_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                // Vault Lock's retention, or a job using the point: AWS Backup answers
                // InvalidResourceStateException (InvalidRequestException for a lock).
                let locked = matches!(
                    e.code(),
                    Some("InvalidResourceStateException" | "InvalidRequestException")
                );
                match port_error("DeleteRecoveryPoint", e) {
                    PortError::NotFound(_) => Ok(()),
                    PortError::Invalid(m) if locked => Err(PortError::InvalidState(m)),
                    other => Err(other),
                }
            }
        }
    }

    async fn vault_lock(&self, vault: &str) -> PortResult<VaultLock> {
        let out = self
            .client
            .describe_backup_vault()
            .backup_vault_name(vault)
            .send()
            .await
            .map_err(|e| port_error("DescribeBackupVault", e))?;
        Ok(VaultLock {
            locked: out.locked().unwrap_or(false),
            min_retention_days: out.min_retention_days(),
            max_retention_days: out.max_retention_days(),
            lock_date: out.lock_date().and_then(to_chrono),
        })
    }
}
