//! The handlers, by topic.

pub mod approvals;
pub mod audit;
pub mod backups;
pub mod catalog;
pub mod confirmations;
pub mod dr;
pub mod policies;
pub mod reports;
pub mod restores;
