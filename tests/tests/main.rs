//! Integration tests against the local AWS stack (`make up`), one binary with a module per
//! capability. Each test gets its own catalog table, topic, queue and policy tag key from
//! `TestEnv`, so tests run in parallel on one stack.

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story, top to bottom"
)]

mod admin_api;
mod alert_log;
mod archive;
mod aws_backup_delegation;
mod backup_cycle;
mod cli;
mod config_backup;
mod dashboard;
mod data_sets;
mod digest;
mod dr;
mod dr_tables;
mod emergency;
mod export;
mod lambda_bridge;
mod restore_tests;
mod retention;
mod s3_backup;
mod s3_changes;
mod s3_shards;
mod samples;
mod table_backups;
mod tiering;
mod windows;
