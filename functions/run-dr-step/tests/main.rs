//! The integration tests of `run-dr-step`, one binary: the state machine's definition, the
//! steps over in-memory fakes (Aurora, tables, safety), the RDS adapter's global database
//! calls and the step metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod asl;
mod aurora;
mod common;
mod global_cluster;
mod metrics;
mod safety;
mod table_fakes;
mod tables;
