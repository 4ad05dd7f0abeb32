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
    // Judged against a fixed clock, so dated samples of the corpus are accepted too.
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_795_456_500, 0).unwrap_or_default();
    let bounds = lifeboat_domain::event_time::EventTimeBounds::default();
    if let Err(e) = ScheduleTick::parse(&event, now, bounds) {
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
