//! `RdsSnapshotExporter` without network: every SDK call is answered by an
//! `aws-smithy-mocks` rule. moto 5.2.5 marks every export task `complete` the moment it is
//! started, so what AWS really reports along the way cannot be produced there: STARTING
//! and IN_PROGRESS with their progress, FAILED with its FailureCause, CANCELED, and the
//! errors StartExportTask answers (task id taken, snapshot not exportable, KMS key,
//! throttling). Those answers are scripted here, on the wire as RDS (awsQuery) sends them
//! for the errors; the exact requests the adapter sends are pinned too. The happy path
//! also runs against moto (tests/tests/export.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_rds::operation::describe_export_tasks::DescribeExportTasksOutput;
use aws_sdk_rds::operation::start_export_task::StartExportTaskOutput;
use aws_sdk_rds::types::ExportTask as RdsExportTask;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use lifeboat_aws::{RdsSnapshotExporter, retry_config};
use lifeboat_ports::{ExportRequest, ExportTaskState, PortError, SnapshotExporter};

const TASK: &str = "lbx-lb-db-orders-20260601-0400-0123456789ab-1";
const SOURCE: &str = "arn:aws:rds:us-west-2:123456789012:snapshot:lb-db-orders-20260601-0400";

fn own_partition() -> aws_sdk_rds::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_rds::config::retry::RetryPartition::new(format!(
        "lifeboat-rds-export-test-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

macro_rules! exporter {
    ($mode:expr, $rules:expr) => {{
        let partition = own_partition();
        RdsSnapshotExporter::new(mock_client!(
            aws_sdk_rds,
            $mode,
            $rules,
            move |c: aws_sdk_rds::config::Builder| c.retry_config(retry_config()).retry_partition(partition.clone())
        ))
    }};
}

/// An error exactly as RDS (awsQuery protocol) sends it on the wire.
fn rds_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        )),
    )
}

fn request() -> ExportRequest {
    ExportRequest {
        task_id: TASK.into(),
        source_arn: SOURCE.into(),
        bucket: "lifeboat-backups".into(),
        prefix: "lifeboat/exports/data/orders/lb-db-orders-20260601-0400".into(),
        role_arn: "arn:aws:iam::123456789012:role/rds-export".into(),
        kms_key_id: "arn:aws:kms:us-west-2:123456789012:key/export".into(),
    }
}

fn task(status: &str) -> aws_sdk_rds::types::builders::ExportTaskBuilder {
    RdsExportTask::builder()
        .export_task_identifier(TASK)
        .source_arn(SOURCE)
        .s3_bucket("lifeboat-backups")
        .s3_prefix("lifeboat/exports/data/orders/lb-db-orders-20260601-0400")
        .status(status)
}

#[tokio::test(start_paused = true)]
async fn start_sends_every_parameter_and_reads_the_answer() {
    let start = mock!(aws_sdk_rds::Client::start_export_task)
        .match_requests(|r| {
            r.export_task_identifier() == Some(TASK)
                && r.source_arn() == Some(SOURCE)
                && r.s3_bucket_name() == Some("lifeboat-backups")
                && r.s3_prefix() == Some("lifeboat/exports/data/orders/lb-db-orders-20260601-0400")
                && r.iam_role_arn() == Some("arn:aws:iam::123456789012:role/rds-export")
                && r.kms_key_id() == Some("arn:aws:kms:us-west-2:123456789012:key/export")
                && r.export_only().is_empty()
        })
        .then_output(|| {
            StartExportTaskOutput::builder()
                .export_task_identifier(TASK)
                .source_arn(SOURCE)
                .s3_bucket("lifeboat-backups")
                .s3_prefix("lifeboat/exports/data/orders/lb-db-orders-20260601-0400")
                .status("STARTING")
                .percent_progress(0)
                .build()
        });
    let e = exporter!(RuleMode::Sequential, [&start]);
    let t = e.start_export(&request()).await.unwrap();
    assert_eq!(t.task_id, TASK);
    assert_eq!(t.state, ExportTaskState::Starting);
    assert_eq!(t.percent_progress, Some(0));
    assert_eq!(start.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn described_states_progress_failure_cause_and_unknown_tasks() {
    let running = mock!(aws_sdk_rds::Client::describe_export_tasks)
        .match_requests(|r| r.export_task_identifier() == Some(TASK))
        .then_output(|| {
            DescribeExportTasksOutput::builder()
                .export_tasks(task("IN_PROGRESS").percent_progress(42).build())
                .build()
        });
    let failed = mock!(aws_sdk_rds::Client::describe_export_tasks).then_output(|| {
        DescribeExportTasksOutput::builder()
            .export_tasks(
                task("FAILED")
                    .failure_cause("S3 bucket lifeboat-backups is not in region us-west-2")
                    .build(),
            )
            .build()
    });
    let canceled = mock!(aws_sdk_rds::Client::describe_export_tasks).then_output(|| {
        DescribeExportTasksOutput::builder()
            .export_tasks(task("CANCELED").build())
            .build()
    });
    let complete = mock!(aws_sdk_rds::Client::describe_export_tasks).then_output(|| {
        DescribeExportTasksOutput::builder()
            .export_tasks(task("COMPLETE").percent_progress(100).build())
            .build()
    });
    let gone = mock!(aws_sdk_rds::Client::describe_export_tasks).then_http_response(|| {
        rds_wire_error(
            404,
            "ExportTaskNotFound",
            "Cannot cancel export task because a task with the identifier does not exist.",
        )
    });
    let e = exporter!(RuleMode::Sequential, [&running, &failed, &canceled, &complete, &gone]);
    let t = e.describe_export(TASK).await.unwrap().unwrap();
    assert_eq!((t.state, t.percent_progress), (ExportTaskState::InProgress, Some(42)));
    let t = e.describe_export(TASK).await.unwrap().unwrap();
    assert_eq!(t.state, ExportTaskState::Failed);
    assert_eq!(
        t.failure_cause.as_deref(),
        Some("S3 bucket lifeboat-backups is not in region us-west-2")
    );
    assert_eq!(
        e.describe_export(TASK).await.unwrap().unwrap().state,
        ExportTaskState::Canceled
    );
    assert_eq!(
        e.describe_export(TASK).await.unwrap().unwrap().state,
        ExportTaskState::Complete
    );
    assert_eq!(e.describe_export(TASK).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn start_errors_map_to_port_errors_and_throttling_is_retried() {
    let cases = [
        (400, "ExportTaskAlreadyExists", "already-exists"),
        (400, "InvalidExportSourceState", "invalid-state"),
        (400, "KMSKeyNotAccessibleFault", "kms-key"),
        (404, "DBSnapshotNotFound", "not-found"),
        (400, "IamRoleNotFound", "invalid"),
        (500, "InternalFailure", "unavailable"),
    ];
    for (status, code, expected) in cases {
        let rule = mock!(aws_sdk_rds::Client::start_export_task)
            .then_http_response(move || rds_wire_error(status, code, "scripted"));
        let e = exporter!(RuleMode::MatchAny, [&rule]);
        let err = e.start_export(&request()).await.unwrap_err();
        assert_eq!(err.code(), expected, "{code}: {err}");
        assert!(err.to_string().contains("StartExportTask"), "{err}");
    }
    // Throttled twice, then accepted: the SDK's retries absorb it.
    let rule = mock!(aws_sdk_rds::Client::start_export_task)
        .sequence()
        .http_response(|| rds_wire_error(400, "Throttling", "Rate exceeded"))
        .times(2)
        .output(|| {
            StartExportTaskOutput::builder()
                .export_task_identifier(TASK)
                .status("STARTING")
                .build()
        })
        .build();
    let e = exporter!(RuleMode::Sequential, [&rule]);
    let t = e.start_export(&request()).await.unwrap();
    assert_eq!(t.state, ExportTaskState::Starting);
    assert_eq!(rule.num_calls(), 3);
    // Throttled past the retries: transient, for the caller to try again later.
    let rule = mock!(aws_sdk_rds::Client::start_export_task)
        .then_http_response(|| rds_wire_error(400, "Throttling", "Rate exceeded"));
    let e = exporter!(RuleMode::MatchAny, [&rule]);
    let err = e.start_export(&request()).await.unwrap_err();
    assert!(matches!(err, PortError::Throttled(_)) && err.is_transient(), "{err:?}");
}

#[test]
fn states_parse_in_any_case() {
    assert_eq!(ExportTaskState::from_aws("complete"), ExportTaskState::Complete);
    assert_eq!(ExportTaskState::from_aws("IN_PROGRESS"), ExportTaskState::InProgress);
    assert_eq!(ExportTaskState::from_aws("in-progress"), ExportTaskState::InProgress);
    assert_eq!(
        ExportTaskState::from_aws("SOMETHING_NEW"),
        ExportTaskState::Other("SOMETHING_NEW".into())
    );
}
