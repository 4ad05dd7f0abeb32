//! The AWS adapters without network: every SDK call answered by an `aws-smithy-mocks` rule
//! (what the local emulator cannot do: throttling, 5xx, partial batch results, operations
//! moto lacks), one binary with a module per adapter.

mod adapters;
mod aws_backup;
mod dr_tables;
mod glacier;
mod rds_export;
mod s3_copy;
mod table_backups;
mod table_exports;
