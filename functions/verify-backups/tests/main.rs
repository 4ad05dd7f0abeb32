//! `verify-backups`'s integration tests, in one binary: one module per side of the function.

mod archived;
mod behaviour;
mod metrics;
