//! Lifeboat's shared library: the pure domain, the ports it talks through, the AWS
//! adapters behind them, in-memory fakes for tests, typed configuration and telemetry.

pub mod admin;
pub mod alerting;
pub mod app;
pub mod archive_vault;
pub mod aws;
pub mod changes;
pub mod config;
pub mod config_backup;
pub mod confirm;
pub mod domain;
pub mod dr;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod object_store;
pub mod ports;
pub mod routing;
pub mod telemetry;
// Observability: EMF metrics, compliance and cost reports.
pub mod metrics;
pub mod reports;

pub use error::{ErrorType, FunctionError};
