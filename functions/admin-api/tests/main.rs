//! `admin-api`'s integration tests, in one binary: one module per side of the function.

mod alerts;
mod behaviour;
mod common;
mod dr;
mod hostile_input;
mod metrics;
mod openapi;
