//! Identifiers parsed at the boundary (regions, policy names, recovery point ids, ARNs,
//! resource kinds) and the names derived from them: no input panics, and whatever parses
//! prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_domain::{PolicyName, RecoveryPointId, Region, ResourceKind};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Region::parse(s) {
        assert_eq!(r.as_str(), s);
    }
    if let Ok(p) = PolicyName::parse(s) {
        assert_eq!(p.as_str(), s);
    }
    if let Ok(id) = RecoveryPointId::parse(s) {
        assert_eq!(id.as_str(), s);
    }
    if let Some(kind) = ResourceKind::parse(s) {
        assert_eq!(kind.to_string(), s);
    }
    let _ = lifeboat_domain::dr::plan::parse_rds_arn(s);
    let _ = lifeboat_domain::selection::arn_account(s);
    let name = lifeboat_domain::naming::vault_point_name(s);
    assert!(
        RecoveryPointId::parse(&format!("us-east-1/db/{name}")).is_ok(),
        "{name}"
    );
});
