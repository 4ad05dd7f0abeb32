//! `backup-config`'s integration tests, in one binary: one module per side of the function.

mod events;
mod handler;
