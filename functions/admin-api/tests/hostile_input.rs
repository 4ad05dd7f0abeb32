//! Arbitrary methods, paths, query strings and bodies, from every kind of caller: the
//! handler never panics, never answers 5xx, and every refusal is a problem with a title.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ADMIN, OPERATOR, STRANGER, VIEWER, World, rest_event};
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("arn:aws:rds:us-east-1:123456789012:db:orders".into())),
        Just(Value::String("us-east-1/db/lb-x".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("rpo".to_owned()),
                    Just("every".to_owned()),
                    Just("resources".to_owned()),
                    Just("reason".to_owned()),
                    Just("emergency".to_owned()),
                    Just("recoveryPoint".to_owned()),
                    Just("target".to_owned()),
                    Just("overwrite".to_owned()),
                    Just("token".to_owned()),
                    Just("policy".to_owned()),
                    Just("at".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("resources".to_owned()),
        Just("recovery-points".to_owned()),
        Just("policies".to_owned()),
        Just("plans".to_owned()),
        Just("backups".to_owned()),
        Just("restores".to_owned()),
        Just("confirm".to_owned()),
        Just("rollback".to_owned()),
        Just("audit".to_owned()),
        Just("gold".to_owned()),
        Just("us-east-1".to_owned()),
        Just("db".to_owned()),
        Just("00000000-0000-4000-8000-000000000000".to_owned()),
        Just("%2F".to_owned()),
        Just("%ZZ".to_owned()),
        Just("%C3%28".to_owned()),
        "[ -~]{0,12}",
    ];
    prop::collection::vec(seg, 0..6).prop_map(|s| format!("/{}", s.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn no_panic_no_5xx_every_refusal_explained(
        method in prop_oneof![Just("GET"), Just("PUT"), Just("POST"), Just("DELETE"), Just("PATCH")],
        path in arb_path(),
        who in prop_oneof![Just(Some(VIEWER)), Just(Some(OPERATOR)), Just(Some(ADMIN)), Just(Some(STRANGER)), Just(None)],
        body in prop_oneof![arb_json().prop_map(|v| Some(v.to_string())), ".{0,64}".prop_map(Some), Just(None)],
        query in prop::collection::vec(("[a-z]{1,8}", ".{0,20}"), 0..3),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let reply = rt.block_on(async {
            let w = World::new();
            let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let event = rest_event(who, method, &path, &q, body.as_deref());
            // Paths that are not valid URIs are refused by lambda_http's parser itself.
            let Ok(req) = lambda_http::request::from_str(&event.to_string()) else { return None };
            Some(crate::common::Reply::from(admin_api::handle(&w.deps, req).await))
        });
        if let Some(r) = reply {
            prop_assert!(r.status < 500, "{method} {path} {body:?} → {} {}", r.status, r.body);
            if r.status >= 400 {
                prop_assert!(r.is_problem(), "{}", r.body);
            }
        }
    }
}
