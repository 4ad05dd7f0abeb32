//! The events the functions are invoked with (schedule ticks, backup requests from the
//! admin API): any JSON is accepted or refused as `Invalid` with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat::ErrorType;
use lifeboat::events::{BackupRequest, ScheduleTick};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Err(e) = ScheduleTick::parse(&event) {
        assert_eq!(e.kind, ErrorType::Invalid);
        assert!(!e.message.is_empty());
    }
    if BackupRequest::is_one(&event)
        && let Err(e) = BackupRequest::parse(&event)
    {
        assert_eq!(e.kind, ErrorType::Invalid);
        assert!(!e.message.is_empty());
    }
});
