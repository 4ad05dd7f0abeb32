//! Policy and DR plan documents as users write them: any bytes must be either accepted
//! (and then round-trip through their stored form unchanged) or refused with problems
//! listed, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_domain::Policy;
use lifeboat_domain::dr::plan::DrPlan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_json(text) {
        Ok(policy) => {
            let again = Policy::from_document(&policy.to_document());
            assert_eq!(again.as_ref().ok(), Some(&policy), "a valid policy round-trips");
        }
        Err(problems) => assert!(!problems.problems.is_empty(), "a refusal names its problems"),
    }
    match DrPlan::from_json(text) {
        Ok(plan) => assert!(DrPlan::from_json(&plan.to_json()).is_ok(), "a valid plan round-trips"),
        Err(problems) => assert!(!problems.problems.is_empty(), "a refusal names its problems"),
    }
});
