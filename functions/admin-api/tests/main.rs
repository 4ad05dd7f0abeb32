//! `admin-api`'s integration tests, in one binary: one module per side of the function.

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story, top to bottom"
)]

mod alerts;
mod approvals;
mod behaviour;
mod common;
mod documents;
mod dr;
mod hostile_input;
mod metrics;
mod openapi;
