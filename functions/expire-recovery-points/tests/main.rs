//! `expire-recovery-points`'s integration tests, in one binary: one module per side of the function.

mod behaviour;
mod data_sets;
mod metrics;
