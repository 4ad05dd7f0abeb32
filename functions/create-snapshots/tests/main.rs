//! `create-snapshots`'s integration tests, in one binary: one module per side of the function.

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story, top to bottom"
)]

mod behaviour;
mod data_sets;
mod metrics;
mod requests;
mod selection;
mod throttled_run;
