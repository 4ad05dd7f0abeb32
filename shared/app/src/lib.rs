//! Lifeboat's application layer: what every function shares above the ports and below
//! its handler (run records, alerting, events, metrics, reports, policy loading and
//! discovery, configuration, the object-store helpers). No AWS SDK: the adapters are in
//! `lifeboat-aws`, and only the functions' `main`s wire them in.

pub mod alerting;
pub mod app;
pub mod calls;
pub mod config;
pub mod confirm;
pub mod error;
pub mod events;
pub mod invocation;
pub mod metrics;
pub mod object_store;
pub mod planning;
pub mod reports;
pub mod restores;
pub mod routing;
pub mod telemetry;
pub mod verify;

pub use error::{ErrorType, FunctionError};
