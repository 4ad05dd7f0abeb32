//! AWS Backup in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::Utc;
use lifeboat_ports::{BackupJob, BackupJobState, BackupService, PortError, PortResult, VaultLock, VaultRecoveryPoint};

use crate::{FAKE_ACCOUNT, lock};

/// Operations of [`InMemoryBackupService`], for scripting failures and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupServiceOp {
    StartJob,
    DescribeJob,
    RecoveryPoints,
    VaultLock,
    DeleteRecoveryPoint,
}

/// The `BackupSizeInBytes` a completed fake job reports.
pub const COMPLETED_JOB_BYTES: u64 = 3 << 30;

/// One `start_backup_job` request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupJobRequest {
    pub vault: String,
    pub resource_arn: String,
    pub iam_role_arn: String,
    pub idempotency_token: String,
    pub delete_after_days: Option<i64>,
}

#[derive(Debug, Default)]
struct BackupServiceState {
    vaults: BTreeMap<String, (VaultLock, Vec<VaultRecoveryPoint>)>,
    jobs: BTreeMap<String, (BackupJob, BackupJobRequest)>,
    /// Idempotency token → job id.
    tokens: HashMap<String, String>,
    requests: Vec<BackupJobRequest>,
}

/// AWS Backup in one region. Same contract as `AwsBackupService`: a repeated idempotency
/// token returns the job it started first; unknown vaults are `NotFound`; unknown jobs are
/// `None`. Jobs stay `Created` until a test moves them (`complete_job`, `fail_job`,
/// `set_job_state`); completing one stores its recovery point in the vault.
#[derive(Debug)]
pub struct InMemoryBackupService {
    region: String,
    state: Mutex<BackupServiceState>,
    next_id: AtomicUsize,
    failures: Mutex<VecDeque<(BackupServiceOp, PortError)>>,
    calls: Mutex<HashMap<BackupServiceOp, usize>>,
}

impl Default for InMemoryBackupService {
    fn default() -> Self {
        Self::in_region("us-east-1")
    }
}

impl InMemoryBackupService {
    /// AWS Backup in us-east-1.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_region(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            state: Mutex::default(),
            next_id: AtomicUsize::new(0),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// Adds (or replaces the lock of) a vault.
    pub fn add_vault(&self, vault: &str, lock_state: VaultLock) {
        let mut state = lock(&self.state);
        match state.vaults.get_mut(vault) {
            Some((current, _)) => *current = lock_state,
            None => {
                state.vaults.insert(vault.to_owned(), (lock_state, Vec::new()));
            }
        }
    }

    /// An unlocked vault.
    pub fn add_unlocked_vault(&self, vault: &str) {
        self.add_vault(
            vault,
            VaultLock {
                locked: false,
                min_retention_days: None,
                max_retention_days: None,
                lock_date: None,
            },
        );
    }

    /// Stores a recovery point in an existing vault (`false` if there is no such vault).
    pub fn add_recovery_point(&self, vault: &str, rp: VaultRecoveryPoint) -> bool {
        match lock(&self.state).vaults.get_mut(vault) {
            Some((_, points)) => {
                points.push(rp);
                true
            }
            None => false,
        }
    }

    /// The recovery points a vault holds now.
    pub fn recovery_points_in(&self, vault: &str) -> Vec<VaultRecoveryPoint> {
        lock(&self.state)
            .vaults
            .get(vault)
            .map(|(_, points)| points.clone())
            .unwrap_or_default()
    }

    pub fn set_job_state(&self, job_id: &str, state: BackupJobState, status_message: Option<&str>) {
        if let Some((job, _)) = lock(&self.state).jobs.get_mut(job_id) {
            job.state = state;
            job.status_message = status_message.map(str::to_owned);
        }
    }

    /// Completes a job: its recovery point appears in its vault, `COMPLETED`, encrypted,
    /// deleted after the requested days; the job reports [`COMPLETED_JOB_BYTES`].
    pub fn complete_job(&self, job_id: &str) {
        let mut state = lock(&self.state);
        let Some((job, request)) = state.jobs.get_mut(job_id) else {
            return;
        };
        job.state = BackupJobState::Completed;
        job.size_bytes = Some(COMPLETED_JOB_BYTES);
        let now = Utc::now();
        let rp = VaultRecoveryPoint {
            recovery_point_arn: job.recovery_point_arn.clone().unwrap_or_default(),
            resource_arn: job.resource_arn.clone(),
            resource_type: fake_resource_type(&job.resource_arn).to_owned(),
            status: "COMPLETED".to_owned(),
            created_at: Some(now),
            completed_at: Some(now),
            delete_at: request.delete_after_days.map(|d| now + chrono::Duration::days(d)),
            encryption_key_arn: Some(format!("arn:aws:kms:{}:{FAKE_ACCOUNT}:key/backup-vault", self.region)),
            is_encrypted: true,
        };
        let vault = request.vault.clone();
        if let Some((_, points)) = state.vaults.get_mut(&vault) {
            points.push(rp);
        }
    }

    /// Fails a job with AWS Backup's `status_message`.
    pub fn fail_job(&self, job_id: &str, status_message: &str) {
        self.set_job_state(job_id, BackupJobState::Failed, Some(status_message));
    }

    pub fn jobs(&self) -> Vec<BackupJob> {
        lock(&self.state).jobs.values().map(|(j, _)| j.clone()).collect()
    }

    /// Every `start_backup_job` request received, in order (repeats included).
    pub fn requests(&self) -> Vec<BackupJobRequest> {
        lock(&self.state).requests.clone()
    }

    /// The next call of `op` fails with `error` (queued in order).
    pub fn fail_next(&self, op: BackupServiceOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    pub fn calls(&self, op: BackupServiceOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, op: BackupServiceOp) -> PortResult<()> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        let mut failures = lock(&self.failures);
        if let Some(i) = failures.iter().position(|(o, _)| *o == op)
            && let Some((_, e)) = failures.remove(i)
        {
            return Err(e);
        }
        Ok(())
    }
}

/// AWS Backup's resource type for an ARN, roughly as AWS Backup reports it.
fn fake_resource_type(resource_arn: &str) -> &'static str {
    let service = resource_arn.split(':').nth(2).unwrap_or_default();
    match service {
        "rds" if resource_arn.contains(":cluster:") => "Aurora",
        "rds" => "RDS",
        "dynamodb" => "DynamoDB",
        "s3" => "S3",
        "ec2" => "EC2",
        "elasticfilesystem" => "EFS",
        _ => "Other",
    }
}

#[async_trait]
impl BackupService for InMemoryBackupService {
    async fn start_backup_job(
        &self,
        vault: &str,
        resource_arn: &str,
        iam_role_arn: &str,
        idempotency_token: &str,
        delete_after_days: Option<i64>,
    ) -> PortResult<BackupJob> {
        self.enter(BackupServiceOp::StartJob)?;
        let request = BackupJobRequest {
            vault: vault.to_owned(),
            resource_arn: resource_arn.to_owned(),
            iam_role_arn: iam_role_arn.to_owned(),
            idempotency_token: idempotency_token.to_owned(),
            delete_after_days,
        };
        let mut state = lock(&self.state);
        state.requests.push(request.clone());
        if !state.vaults.contains_key(vault) {
            return Err(PortError::NotFound(format!("backup vault {vault}")));
        }
        if let Some(job_id) = state.tokens.get(idempotency_token)
            && let Some((job, _)) = state.jobs.get(job_id)
        {
            return Ok(job.clone());
        }
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let job = BackupJob {
            job_id: format!("job-{n:08}"),
            resource_arn: resource_arn.to_owned(),
            state: BackupJobState::Created,
            recovery_point_arn: Some(format!(
                "arn:aws:backup:{}:{FAKE_ACCOUNT}:recovery-point:rp-{n:08}",
                self.region
            )),
            status_message: None,
            size_bytes: None,
        };
        state.tokens.insert(idempotency_token.to_owned(), job.job_id.clone());
        state.jobs.insert(job.job_id.clone(), (job.clone(), request));
        Ok(job)
    }

    async fn describe_backup_job(&self, job_id: &str) -> PortResult<Option<BackupJob>> {
        self.enter(BackupServiceOp::DescribeJob)?;
        Ok(lock(&self.state).jobs.get(job_id).map(|(j, _)| j.clone()))
    }

    async fn recovery_points(&self, vault: &str, resource_arn: Option<&str>) -> PortResult<Vec<VaultRecoveryPoint>> {
        self.enter(BackupServiceOp::RecoveryPoints)?;
        let state = lock(&self.state);
        let (_, points) = state
            .vaults
            .get(vault)
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))?;
        Ok(points
            .iter()
            .filter(|rp| resource_arn.is_none_or(|arn| rp.resource_arn == arn))
            .cloned()
            .collect())
    }

    async fn delete_recovery_point(&self, vault: &str, recovery_point_arn: &str) -> PortResult<()> {
        self.enter(BackupServiceOp::DeleteRecoveryPoint)?;
        let mut state = lock(&self.state);
        let (lock_state, points) = state
            .vaults
            .get_mut(vault)
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))?;
        let Some(i) = points.iter().position(|p| p.recovery_point_arn == recovery_point_arn) else {
            return Ok(());
        };
        let min_days = lock_state.min_retention_days.unwrap_or(0);
        let young = points[i]
            .created_at
            .is_some_and(|c| Utc::now() - c < chrono::Duration::days(min_days));
        if lock_state.locked && young {
            return Err(PortError::InvalidState(format!(
                "vault {vault} is locked: {recovery_point_arn} is younger than its {min_days}-day minimum retention"
            )));
        }
        points.remove(i);
        Ok(())
    }

    async fn vault_lock(&self, vault: &str) -> PortResult<VaultLock> {
        self.enter(BackupServiceOp::VaultLock)?;
        lock(&self.state)
            .vaults
            .get(vault)
            .map(|(l, _)| l.clone())
            .ok_or_else(|| PortError::NotFound(format!("backup vault {vault}")))
    }
}

#[cfg(test)]
mod table_backup_and_backup_service_fakes {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;
    use crate::tables::{InMemoryTableBackups, TableBackupOp};
    use lifeboat_ports::{SnapshotStatus, TableBackups};

    #[tokio::test]
    async fn table_backups_keep_the_adapter_contract() {
        let fake = InMemoryTableBackups::new();
        let table_arn = fake.add_table("orders");

        let err = fake.create_backup("missing", "lb-x").await.unwrap_err();
        assert!(matches!(err, PortError::NotFound(_)), "{err:?}");

        let first = fake.create_backup("orders", "lb-gold-orders-1800").await.unwrap();
        let again = fake.create_backup("orders", "lb-gold-orders-1800").await.unwrap();
        assert_eq!(again, first);
        assert_eq!(first.table_arn, table_arn);
        assert!(first.backup_arn.starts_with(&format!("{table_arn}/backup/")));
        fake.create_backup("orders", "manual").await.unwrap();
        assert_eq!(
            fake.list_backups("orders", "lb-").await.unwrap(),
            std::slice::from_ref(&first)
        );
        assert_eq!(fake.list_backups("missing", "").await.unwrap(), []);
        assert_eq!(
            fake.describe_backup(&first.backup_arn).await.unwrap(),
            Some(first.clone())
        );

        fake.set_new_status(SnapshotStatus::Creating);
        let creating = fake.create_backup("orders", "lb-gold-orders-1900").await.unwrap();
        let err = fake.delete_backup(&creating.backup_arn).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");

        fake.delete_backup(&first.backup_arn).await.unwrap();
        fake.delete_backup(&first.backup_arn).await.unwrap();
        assert_eq!(fake.describe_backup(&first.backup_arn).await.unwrap(), None);

        fake.fail_next(TableBackupOp::Create, PortError::Throttled("scripted".into()));
        assert!(fake.create_backup("orders", "lb-gold-orders-2000").await.is_err());
        assert!(fake.create_backup("orders", "lb-gold-orders-2000").await.is_ok());
        assert_eq!(fake.calls(TableBackupOp::Create), 7);
        assert_eq!(fake.calls(TableBackupOp::Delete), 3);
    }

    #[tokio::test]
    async fn backup_service_keeps_the_adapter_contract() {
        let fake = InMemoryBackupService::new();
        let db = "arn:aws:rds:us-east-1:123456789012:db:db1";
        let role = "arn:aws:iam::123456789012:role/backup";

        let err = fake
            .start_backup_job("vault", db, role, "t1", Some(35))
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
        assert!(matches!(fake.vault_lock("vault").await, Err(PortError::NotFound(_))));

        fake.add_unlocked_vault("vault");
        let job = fake.start_backup_job("vault", db, role, "t1", Some(35)).await.unwrap();
        assert_eq!(job.state, BackupJobState::Created);
        assert_eq!(
            fake.start_backup_job("vault", db, role, "t1", Some(35)).await.unwrap(),
            job
        );
        assert_eq!(fake.jobs().len(), 1, "one job per idempotency token");
        assert_eq!(fake.requests().len(), 3);

        fake.complete_job(&job.job_id);
        let done = fake.describe_backup_job(&job.job_id).await.unwrap().unwrap();
        assert_eq!(done.state, BackupJobState::Completed);
        let points = fake.recovery_points("vault", Some(db)).await.unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(Some(&points[0].recovery_point_arn), job.recovery_point_arn.as_ref());
        assert_eq!(points[0].resource_type, "RDS");
        assert!(points[0].delete_at.is_some());
        assert!(
            fake.recovery_points("vault", Some("arn:other"))
                .await
                .unwrap()
                .is_empty()
        );

        let other = fake.start_backup_job("vault", db, role, "t2", None).await.unwrap();
        fake.fail_job(&other.job_id, "Access denied");
        let failed = fake.describe_backup_job(&other.job_id).await.unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.status_message.as_deref()),
            (BackupJobState::Failed, Some("Access denied"))
        );
        assert_eq!(fake.describe_backup_job("nope").await.unwrap(), None);

        let locked = VaultLock {
            locked: true,
            min_retention_days: Some(7),
            max_retention_days: Some(365),
            lock_date: None,
        };
        fake.add_vault("vault", locked.clone());
        assert_eq!(fake.vault_lock("vault").await.unwrap(), locked);
        assert_eq!(
            fake.recovery_points("vault", None).await.unwrap().len(),
            1,
            "the lock keeps the points"
        );

        fake.fail_next(BackupServiceOp::VaultLock, PortError::Unavailable("scripted".into()));
        assert!(fake.vault_lock("vault").await.is_err());
        assert_eq!(fake.calls(BackupServiceOp::VaultLock), 3);
    }
}
