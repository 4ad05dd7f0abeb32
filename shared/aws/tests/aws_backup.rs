//! `AwsBackupService` without network: every SDK call is answered by an `aws-smithy-mocks`
//! rule. These are the adapter's only tests against the AWS Backup API: moto 5.2.5 has
//! vaults but no backup jobs and no recovery point listing (StartBackupJob,
//! ListRecoveryPointsByBackupVault → 404), so there is no emulator test for it. Clients use
//! Lifeboat's real retry policy, tokio's clock is paused (backoffs pass in virtual time),
//! and each client has its own retry partition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_backup::operation::describe_backup_job::DescribeBackupJobOutput;
use aws_sdk_backup::operation::describe_backup_vault::DescribeBackupVaultOutput;
use aws_sdk_backup::operation::list_recovery_points_by_backup_vault::ListRecoveryPointsByBackupVaultOutput;
use aws_sdk_backup::operation::start_backup_job::StartBackupJobOutput;
use aws_sdk_backup::types::{
    BackupJobState as AwsJobState, CalculatedLifecycle, Lifecycle, RecoveryPointByBackupVault, RecoveryPointStatus,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

use lifeboat_aws::{AwsBackupService, MAX_ATTEMPTS, retry_config};
use lifeboat_ports::{BackupJob, BackupJobState, BackupService, PortError, VaultLock, VaultRecoveryPoint};

// ---------------------------------------------------------------------------------------
// Mocked clients
// ---------------------------------------------------------------------------------------

/// The most time Lifeboat's retry policy may spend in backoff before retry number
/// `retries`: full jitter over 100 ms × 2^i, each capped at 5 s (virtual time).
fn backoff_ceiling(retries: u32) -> Duration {
    (0..retries)
        .map(|i| (Duration::from_millis(100) * 2_u32.pow(i)).min(Duration::from_secs(5)))
        .sum()
}

/// A retry partition of its own for each client, so parallel tests never drain each
/// other's retry token bucket.
fn own_partition() -> aws_sdk_backup::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_backup::config::retry::RetryPartition::new(format!(
        "lifeboat-aws-backup-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn service(mode: RuleMode, rules: &[&Rule]) -> AwsBackupService {
    let partition = own_partition();
    AwsBackupService::new(mock_client!(
        aws_sdk_backup,
        mode,
        rules,
        move |c: aws_sdk_backup::config::Builder| c.retry_config(retry_config()).retry_partition(partition.clone())
    ))
}

fn http(status: u16, body: String) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// An error as AWS Backup (restJson1 protocol) sends it on the wire: the code in the
/// `x-amzn-ErrorType` header (with its namespace suffix) and in the body.
fn backup_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let mut response = http(
        status,
        format!(r#"{{"Code":"{code}","Message":"{message}","Type":"User"}}"#),
    );
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        format!("{code}:http://internal.amazon.com/coral/com.amazonaws.services.cryo/"),
    );
    response
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const VAULT: &str = "lifeboat-vault";
const RESOURCE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
const ROLE: &str = "arn:aws:iam::123456789012:role/lifeboat-backup";
const TOKEN: &str = "lb-gold-orders-20261123-1800";
const JOB_ID: &str = "9e1c8a52-77d3-4c0e-9c35-b1f0a8f2a001";
const RP_ARN: &str = "arn:aws:backup:us-east-1:123456789012:recovery-point:7c1b4a9e-1d2c-4a5b-9e8f-0a1b2c3d4e5f";
const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/vault-key";

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn started() -> StartBackupJobOutput {
    StartBackupJobOutput::builder()
        .backup_job_id(JOB_ID)
        .recovery_point_arn(RP_ARN)
        .creation_date(smithy_time(at(23, 18)))
        .build()
}

fn started_job() -> BackupJob {
    BackupJob {
        job_id: JOB_ID.into(),
        resource_arn: RESOURCE.into(),
        state: BackupJobState::Created,
        recovery_point_arn: Some(RP_ARN.into()),
        status_message: None,
        size_bytes: None,
    }
}

/// StartBackupJob exactly as Lifeboat must send it.
fn start_rule(
    delete_after_days: Option<i64>,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_backup::operation::start_backup_job::StartBackupJobInput,
    StartBackupJobOutput,
    aws_sdk_backup::operation::start_backup_job::StartBackupJobError,
> {
    mock!(aws_sdk_backup::Client::start_backup_job).match_requests(move |r| {
        r.backup_vault_name() == Some(VAULT)
            && r.resource_arn() == Some(RESOURCE)
            && r.iam_role_arn() == Some(ROLE)
            && r.idempotency_token() == Some(TOKEN)
            && r.lifecycle().and_then(Lifecycle::delete_after_days) == delete_after_days
            && r.lifecycle().is_none_or(|l| {
                l.move_to_cold_storage_after_days().is_none() && l.opt_in_to_archive_for_supported_resources().is_none()
            })
            && r.lifecycle().is_some() == delete_after_days.is_some()
            && r.recovery_point_tags().is_none()
            && r.start_window_minutes().is_none()
    })
}

// ---------------------------------------------------------------------------------------
// start_backup_job
// ---------------------------------------------------------------------------------------

/// AWS Backup is tested with aws-smithy-mocks only: moto has no backup jobs. Pins the
/// exact StartBackupJob request (vault, resource ARN, role, IdempotencyToken,
/// Lifecycle.DeleteAfterDays and nothing else), with and without a lifecycle; the new job
/// is `Created`, with the recovery point ARN AWS Backup announced.
#[tokio::test(start_paused = true)]
async fn start_backup_job_sends_the_exact_request() {
    let with_lifecycle = start_rule(Some(35)).then_output(started);
    let without = start_rule(None).then_output(started);
    let backups = service(RuleMode::MatchAny, &[&with_lifecycle, &without]);

    let job = backups
        .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, Some(35))
        .await
        .unwrap();
    assert_eq!(job, started_job());
    assert_eq!(with_lifecycle.num_calls(), 1);

    let job = backups
        .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, None)
        .await
        .unwrap();
    assert_eq!(job, started_job());
    assert_eq!(without.num_calls(), 1);
}

/// AWS Backup is tested with aws-smithy-mocks only: moto has no backup jobs. A
/// `ThrottlingException` (restJson1 error, as AWS Backup sends it) twice, then success:
/// the SDK retries with Lifeboat's backoff. A 503 `ServiceUnavailableException` is retried
/// the same way.
#[tokio::test(start_paused = true)]
async fn start_backup_job_retries_throttling_and_5xx() {
    let rule = start_rule(Some(35))
        .sequence()
        .http_response(|| backup_wire_error(400, "ThrottlingException", "Rate exceeded"))
        .times(2)
        .output(started)
        .build();
    let backups = service(RuleMode::Sequential, &[&rule]);
    let start = Instant::now();
    let job = backups
        .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, Some(35))
        .await
        .unwrap();
    assert_eq!(job, started_job());
    assert_eq!(rule.num_calls(), 3);
    assert!(start.elapsed() <= backoff_ceiling(2), "{:?}", start.elapsed());

    let rule = start_rule(Some(35))
        .sequence()
        .http_response(|| backup_wire_error(503, "ServiceUnavailableException", "try again"))
        .times(1)
        .output(started)
        .build();
    let backups = service(RuleMode::Sequential, &[&rule]);
    let job = backups
        .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, Some(35))
        .await
        .unwrap();
    assert_eq!(job, started_job());
    assert_eq!(rule.num_calls(), 2);
}

/// AWS Backup is tested with aws-smithy-mocks only: moto has no backup jobs.
/// `LimitExceededException` (e.g. too many concurrent jobs) is `QuotaExceeded`, not
/// transient. The SDK counts that code as throttling, so it is retried up to
/// `MAX_ATTEMPTS` first. Throttling on every attempt ends as `Throttled`; a missing vault
/// or role is `NotFound`; a rejected parameter is `Invalid`; neither is retried.
#[tokio::test(start_paused = true)]
async fn start_backup_job_errors_map_to_port_errors() {
    let cases: [(u16, &str, &str, usize); 5] = [
        (400, "LimitExceededException", "quota", MAX_ATTEMPTS as usize),
        (400, "ThrottlingException", "throttled", MAX_ATTEMPTS as usize),
        (400, "ResourceNotFoundException", "not-found", 1),
        (400, "InvalidParameterValueException", "invalid", 1),
        (400, "InvalidRequestException", "invalid", 1),
    ];
    for (status, code, expected, calls) in cases {
        let rule = start_rule(Some(35))
            .sequence()
            .http_response(move || backup_wire_error(status, code, "scripted"))
            .repeatedly()
            .build();
        let backups = service(RuleMode::Sequential, &[&rule]);
        let start = Instant::now();
        let err = backups
            .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, Some(35))
            .await
            .unwrap_err();
        assert_eq!(err.code(), expected, "{code}: {err:?}");
        assert_eq!(rule.num_calls(), calls, "{code}");
        assert!(start.elapsed() <= backoff_ceiling(MAX_ATTEMPTS - 1));
    }

    let rule = start_rule(Some(35))
        .sequence()
        .http_response(|| backup_wire_error(400, "LimitExceededException", "Too many jobs"))
        .repeatedly()
        .build();
    let err = service(RuleMode::Sequential, &[&rule])
        .start_backup_job(VAULT, RESOURCE, ROLE, TOKEN, Some(35))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::QuotaExceeded(_)), "{err:?}");
    assert!(!err.is_transient());
}

// ---------------------------------------------------------------------------------------
// describe_backup_job
// ---------------------------------------------------------------------------------------

/// AWS Backup is tested with aws-smithy-mocks only: moto has no backup jobs. Every job
/// state AWS Backup reports maps to the port's state (`ABORTING` and `PARTIAL` kept
/// verbatim); a `FAILED` job carries its StatusMessage; an unknown job is `None`.
#[tokio::test(start_paused = true)]
async fn describe_backup_job_maps_states_and_failure_messages() {
    let cases = [
        (AwsJobState::Created, BackupJobState::Created),
        (AwsJobState::Pending, BackupJobState::Pending),
        (AwsJobState::Running, BackupJobState::Running),
        (AwsJobState::Aborting, BackupJobState::Other("ABORTING".into())),
        (AwsJobState::Aborted, BackupJobState::Aborted),
        (AwsJobState::Completed, BackupJobState::Completed),
        (AwsJobState::Failed, BackupJobState::Failed),
        (AwsJobState::Expired, BackupJobState::Expired),
        (AwsJobState::Partial, BackupJobState::Other("PARTIAL".into())),
    ];
    for (aws, expected) in cases {
        let failed = aws == AwsJobState::Failed;
        let rule = mock!(aws_sdk_backup::Client::describe_backup_job)
            .match_requests(|r| r.backup_job_id() == Some(JOB_ID))
            .then_output(move || {
                let out = DescribeBackupJobOutput::builder()
                    .backup_job_id(JOB_ID)
                    .backup_vault_name(VAULT)
                    .resource_arn(RESOURCE)
                    .recovery_point_arn(RP_ARN)
                    .set_backup_size_in_bytes((aws == AwsJobState::Completed).then_some(20 << 30))
                    .state(aws.clone());
                if failed {
                    out.status_message("Access denied: the IAM role cannot read the table.")
                        .build()
                } else {
                    out.build()
                }
            });
        let job = service(RuleMode::Sequential, &[&rule])
            .describe_backup_job(JOB_ID)
            .await
            .unwrap()
            .unwrap();
        let message = failed.then(|| "Access denied: the IAM role cannot read the table.".to_owned());
        assert_eq!(
            job,
            BackupJob {
                state: expected.clone(),
                status_message: message,
                // The size AWS Backup reports once the job completed.
                size_bytes: (expected == BackupJobState::Completed).then_some(20 << 30),
                ..started_job()
            }
        );
        assert_eq!(
            job.state.is_final(),
            matches!(
                expected,
                BackupJobState::Completed | BackupJobState::Aborted | BackupJobState::Failed | BackupJobState::Expired
            ) || expected == BackupJobState::Other("PARTIAL".into())
        );
    }

    let missing = mock!(aws_sdk_backup::Client::describe_backup_job)
        .then_http_response(|| backup_wire_error(404, "ResourceNotFoundException", "no such job"));
    let found = service(RuleMode::Sequential, &[&missing])
        .describe_backup_job("unknown-job")
        .await
        .unwrap();
    assert_eq!(found, None);
    assert_eq!(missing.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// recovery_points
// ---------------------------------------------------------------------------------------

fn aws_point(id: &str, status: RecoveryPointStatus, day: u32) -> RecoveryPointByBackupVault {
    RecoveryPointByBackupVault::builder()
        .recovery_point_arn(format!("arn:aws:backup:us-east-1:123456789012:recovery-point:{id}"))
        .backup_vault_name(VAULT)
        .resource_arn(RESOURCE)
        .resource_type("DynamoDB")
        .status(status)
        .creation_date(smithy_time(at(day, 18)))
        .completion_date(smithy_time(at(day, 19)))
        .calculated_lifecycle(
            CalculatedLifecycle::builder()
                .delete_at(smithy_time(at(day, 18) + chrono::Duration::days(35)))
                .build(),
        )
        .encryption_key_arn(KEY)
        .is_encrypted(true)
        .build()
}

fn point(id: &str, status: &str, day: u32) -> VaultRecoveryPoint {
    VaultRecoveryPoint {
        recovery_point_arn: format!("arn:aws:backup:us-east-1:123456789012:recovery-point:{id}"),
        resource_arn: RESOURCE.into(),
        resource_type: "DynamoDB".into(),
        status: status.into(),
        created_at: Some(at(day, 18)),
        completed_at: Some(at(day, 19)),
        delete_at: Some(at(day, 18) + chrono::Duration::days(35)),
        encryption_key_arn: Some(KEY.into()),
        is_encrypted: true,
    }
}

/// AWS Backup is tested with aws-smithy-mocks only: moto has no
/// ListRecoveryPointsByBackupVault. Two pages joined by NextToken, each request filtered
/// with ByResourceArn; every field of the recovery points read, the lifecycle's computed
/// DeleteAt included. Without a resource, no filter is sent.
#[tokio::test(start_paused = true)]
async fn recovery_points_reads_every_page_filtered_by_resource() {
    let page1 = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault)
        .match_requests(|r| {
            r.backup_vault_name() == Some(VAULT) && r.by_resource_arn() == Some(RESOURCE) && r.next_token().is_none()
        })
        .then_output(|| {
            ListRecoveryPointsByBackupVaultOutput::builder()
                .recovery_points(aws_point("a", RecoveryPointStatus::Completed, 21))
                .recovery_points(aws_point("b", RecoveryPointStatus::Partial, 22))
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault)
        .match_requests(|r| {
            r.backup_vault_name() == Some(VAULT)
                && r.by_resource_arn() == Some(RESOURCE)
                && r.next_token() == Some("page-2")
        })
        .then_output(|| {
            ListRecoveryPointsByBackupVaultOutput::builder()
                .recovery_points(aws_point("c", RecoveryPointStatus::Completed, 23))
                .build()
        });
    let unfiltered = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault)
        .match_requests(|r| r.backup_vault_name() == Some(VAULT) && r.by_resource_arn().is_none())
        .then_output(|| ListRecoveryPointsByBackupVaultOutput::builder().build());
    let backups = service(RuleMode::MatchAny, &[&page1, &page2, &unfiltered]);

    let points = backups.recovery_points(VAULT, Some(RESOURCE)).await.unwrap();
    assert_eq!(
        points,
        [
            point("a", "COMPLETED", 21),
            point("b", "PARTIAL", 22),
            point("c", "COMPLETED", 23)
        ]
    );
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));

    assert!(backups.recovery_points(VAULT, None).await.unwrap().is_empty());
    assert_eq!(unfiltered.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// vault_lock
// ---------------------------------------------------------------------------------------

/// AWS Backup is tested with aws-smithy-mocks only (moto 5.2.5 does keep vault lock
/// configurations, but lacks the rest of this port, so the adapter stays on mocks; the
/// wire answer here pins AWS's own field names). A locked vault, as
/// AWS Backup sends it on the wire (restJson1, epoch-seconds LockDate), reads with its
/// retention bounds and lock date; an unlocked vault (modeled output without `Locked`)
/// reads as unlocked with no bounds; a missing vault is `NotFound`.
#[tokio::test(start_paused = true)]
async fn vault_lock_reads_locked_and_unlocked_vaults() {
    let lock_date = at(26, 0);
    let locked = mock!(aws_sdk_backup::Client::describe_backup_vault)
        .match_requests(|r| r.backup_vault_name() == Some("locked-vault"))
        .then_http_response(move || {
            http(
                200,
                format!(
                    r#"{{"BackupVaultName":"locked-vault","BackupVaultArn":"arn:aws:backup:us-east-1:123456789012:backup-vault:locked-vault",
                        "NumberOfRecoveryPoints":3,"Locked":true,"MinRetentionDays":7,"MaxRetentionDays":365,
                        "LockDate":{}}}"#,
                    lock_date.timestamp()
                ),
            )
        });
    let unlocked = mock!(aws_sdk_backup::Client::describe_backup_vault)
        .match_requests(|r| r.backup_vault_name() == Some(VAULT))
        .then_output(|| DescribeBackupVaultOutput::builder().backup_vault_name(VAULT).build());
    let missing = mock!(aws_sdk_backup::Client::describe_backup_vault)
        .match_requests(|r| r.backup_vault_name() == Some("no-such-vault"))
        .then_http_response(|| backup_wire_error(404, "ResourceNotFoundException", "no such vault"));
    let backups = service(RuleMode::MatchAny, &[&locked, &unlocked, &missing]);

    assert_eq!(
        backups.vault_lock("locked-vault").await.unwrap(),
        VaultLock {
            locked: true,
            min_retention_days: Some(7),
            max_retention_days: Some(365),
            lock_date: Some(lock_date),
        }
    );
    assert_eq!(
        backups.vault_lock(VAULT).await.unwrap(),
        VaultLock {
            locked: false,
            min_retention_days: None,
            max_retention_days: None,
            lock_date: None,
        }
    );
    let err = backups.vault_lock("no-such-vault").await.unwrap_err();
    assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
    assert_eq!(missing.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// delete_recovery_point
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn delete_recovery_point_is_idempotent_and_a_lock_is_an_invalid_state() {
    let deleted = mock!(aws_sdk_backup::Client::delete_recovery_point)
        .match_requests(|r| r.backup_vault_name() == Some(VAULT) && r.recovery_point_arn() == Some(RP_ARN))
        .then_output(|| aws_sdk_backup::operation::delete_recovery_point::DeleteRecoveryPointOutput::builder().build());
    let gone = mock!(aws_sdk_backup::Client::delete_recovery_point)
        .then_http_response(|| backup_wire_error(404, "ResourceNotFoundException", "no such recovery point"));
    let locked = mock!(aws_sdk_backup::Client::delete_recovery_point).then_http_response(|| {
        backup_wire_error(
            400,
            "InvalidResourceStateException",
            "recovery point is protected by the vault lock",
        )
    });
    let bad = mock!(aws_sdk_backup::Client::delete_recovery_point)
        .then_http_response(|| backup_wire_error(400, "InvalidParameterValueException", "bad ARN"));
    let svc = service(RuleMode::Sequential, &[&deleted, &gone, &locked, &bad]);
    svc.delete_recovery_point(VAULT, RP_ARN).await.unwrap();
    svc.delete_recovery_point(VAULT, RP_ARN).await.unwrap();
    let err = svc.delete_recovery_point(VAULT, RP_ARN).await.unwrap_err();
    assert!(matches!(err, PortError::InvalidState(_)), "{err:?}");
    let err = svc.delete_recovery_point(VAULT, "not-an-arn").await.unwrap_err();
    assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
    assert_eq!(
        (
            deleted.num_calls(),
            gone.num_calls(),
            locked.num_calls(),
            bad.num_calls()
        ),
        (1, 1, 1, 1)
    );
}
