//! `backup-objects`'s integration tests, in one binary: one module per side of the function.

mod asl;
mod behaviour;
mod changes;
mod metrics;
mod shards;
