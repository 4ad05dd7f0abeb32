//! Which resources a policy protects.
//!
//! A resource is protected by the policy its `lifeboat:policy` tag names (the explicit
//! choice, which always wins). A policy can also *select* resources without that tag: by
//! type, by explicit ids or ARNs, by tags, and by the account in their ARN. When several
//! policies select one untagged resource, the most critical one (lowest priority number,
//! then name) protects it and the overlap is reported, so the choice never depends on the
//! order in which policies or resources are listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Policy, PolicyName, ResourceKind, ResourceRef};

/// What a policy selects besides the resources tagged with its name. Every given
/// criterion must hold; within `ids`, any one id matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Empty: any type.
    pub types: BTreeSet<ResourceKind>,
    /// Resource ids (`orders-db`, a table name) or ARNs. Empty: any.
    pub ids: BTreeSet<String>,
    /// Every one of these tags, with these values. Empty: any.
    pub tags: BTreeMap<String, String>,
    /// 12-digit account ids, matched against the resource's ARN. Empty: any.
    pub accounts: BTreeSet<String>,
}

/// The user-written form of a [`Selection`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionDocument {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

const MAX_ITEMS: usize = 100;

impl Selection {
    /// Validates a selection, adding every problem to `problems` (prefixed `select.`).
    pub fn from_document(doc: &SelectionDocument, problems: &mut Vec<String>) -> Option<Self> {
        let before = problems.len();
        if doc.types.is_empty() && doc.ids.is_empty() && doc.tags.is_empty() && doc.accounts.is_empty() {
            problems.push(
                "select: name at least one of types, ids, tags or accounts (an empty selection would protect everything)"
                    .into(),
            );
        }
        for (what, n) in [
            ("types", doc.types.len()),
            ("ids", doc.ids.len()),
            ("tags", doc.tags.len()),
            ("accounts", doc.accounts.len()),
        ] {
            if n > MAX_ITEMS {
                problems.push(format!("select.{what}: {n} entries, at most {MAX_ITEMS}"));
            }
        }
        let mut types = BTreeSet::new();
        for (i, t) in doc.types.iter().enumerate() {
            match ResourceKind::parse(t) {
                Some(kind) => {
                    types.insert(kind);
                }
                None => problems.push(format!(
                    "select.types[{i}]: {t:.40?} is not one of {}",
                    ResourceKind::ALL.map(|k| k.to_string()).join(", ")
                )),
            }
        }
        for (i, id) in doc.ids.iter().enumerate() {
            if id.is_empty() || id.len() > 2048 || id.chars().any(char::is_whitespace) {
                problems.push(format!(
                    "select.ids[{i}]: {id:.40?} is not a resource id or ARN (1-2048 characters, no spaces)"
                ));
            }
        }
        for (k, v) in &doc.tags {
            if k.is_empty() || k.chars().count() > 128 {
                problems.push(format!("select.tags: key {k:.40?} must have 1-128 characters"));
            }
            if v.chars().count() > 256 {
                problems.push(format!("select.tags.{k:.40}: the value has more than 256 characters"));
            }
        }
        for (i, a) in doc.accounts.iter().enumerate() {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!("select.accounts[{i}]: {a:.40?} is not a 12-digit account id"));
            }
        }
        (problems.len() == before).then(|| Self {
            types,
            ids: doc.ids.iter().cloned().collect(),
            tags: doc.tags.clone(),
            accounts: doc.accounts.iter().cloned().collect(),
        })
    }

    pub fn to_document(&self) -> SelectionDocument {
        SelectionDocument {
            types: self.types.iter().map(ToString::to_string).collect(),
            ids: self.ids.iter().cloned().collect(),
            tags: self.tags.clone(),
            accounts: self.accounts.iter().cloned().collect(),
        }
    }

    /// Whether this selection takes `resource`, whose tags `tag` looks up by key.
    pub fn matches<'t>(&self, resource: &ResourceRef, tag: &dyn Fn(&str) -> Option<&'t str>) -> bool {
        (self.types.is_empty() || self.types.contains(&resource.kind))
            && (self.ids.is_empty() || self.ids.contains(&resource.id) || self.ids.contains(&resource.arn))
            && self.tags.iter().all(|(k, v)| tag(k) == Some(v.as_str()))
            && (self.accounts.is_empty() || arn_account(&resource.arn).is_some_and(|a| self.accounts.contains(a)))
    }
}

/// The account field of an ARN (`arn:partition:service:region:account:...`), if any.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// How a resource came to be protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Its policy tag names a valid policy.
    Tagged(PolicyName),
    /// No policy tag; `policy` selects it. `also` lists the other policies that select it
    /// (an overlap to report).
    Selected { policy: PolicyName, also: Vec<PolicyName> },
    /// Its policy tag names no valid policy (the raw tag value).
    UnknownPolicy(String),
    /// Nothing protects it.
    Unprotected,
}

/// Decides which policy protects `resource`: the tag's, else the most critical selecting
/// policy. `policy_tag` is the value of its policy tag, if it has one; `tag` looks up its
/// tags by key.
pub fn claim<'t>(
    policies: &BTreeMap<PolicyName, Policy>,
    resource: &ResourceRef,
    tag: &dyn Fn(&str) -> Option<&'t str>,
    policy_tag: Option<&str>,
) -> Claim {
    if let Some(tag) = policy_tag {
        return match PolicyName::parse(tag).ok().filter(|p| policies.contains_key(p)) {
            Some(p) => Claim::Tagged(p),
            None => Claim::UnknownPolicy(tag.to_owned()),
        };
    }
    let mut selecting: Vec<&Policy> = policies
        .values()
        .filter(|p| p.select.as_ref().is_some_and(|s| s.matches(resource, tag)))
        .collect();
    selecting.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    match selecting.split_first() {
        Some((first, rest)) => Claim::Selected {
            policy: first.name.clone(),
            also: rest.iter().map(|p| p.name.clone()).collect(),
        },
        None => Claim::Unprotected,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Region;

    fn resource(kind: ResourceKind, id: &str, account: &str) -> ResourceRef {
        let arn = match kind {
            ResourceKind::DynamoDbTable => format!("arn:aws:dynamodb:us-east-1:{account}:table/{id}"),
            _ => format!("arn:aws:rds:us-east-1:{account}:db:{id}"),
        };
        ResourceRef {
            kind,
            id: id.into(),
            arn,
            region: Region::parse("us-east-1").unwrap(),
        }
    }

    fn policy(json: &str) -> Policy {
        Policy::from_json(json).unwrap()
    }

    /// A tag lookup over `(key, value)` pairs.
    fn tags<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn policies(list: &[Policy]) -> BTreeMap<PolicyName, Policy> {
        list.iter().map(|p| (p.name.clone(), p.clone())).collect()
    }

    #[test]
    fn every_problem_of_a_selection_is_listed() {
        let err = Policy::from_json(
            r#"{"name":"x","every":"1h","rpo":"2h","retain":3,
                "select":{"types":["rds-instance","mainframe"],"ids":[""],"tags":{"":"v"},"accounts":["12345"]}}"#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "select.types[1]",
            "select.ids[0]",
            "select.tags: key",
            "select.accounts[0]",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        let err = Policy::from_json(r#"{"name":"x","every":"1h","rpo":"2h","retain":3,"select":{}}"#).unwrap_err();
        assert!(err.problems[0].contains("protect everything"), "{err}");
    }

    #[test]
    fn a_selection_round_trips_and_matches_on_every_criterion() {
        let p = policy(
            r#"{"name":"tables","every":"1h","rpo":"2h","retain":3,
                "select":{"types":["dynamodb-table"],"tags":{"env":"prod"},"accounts":["111122223333"]}}"#,
        );
        assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
        let s = p.select.as_ref().unwrap();
        let prod = tags(&[("env", "prod")]);
        let dev = tags(&[("env", "dev")]);
        let none = tags(&[]);
        assert!(s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "111122223333"), &prod));
        // Wrong type, wrong tag value, missing tag, other account: each is enough to refuse.
        assert!(!s.matches(&resource(ResourceKind::RdsInstance, "carts", "111122223333"), &prod));
        assert!(!s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "111122223333"), &dev));
        assert!(!s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "111122223333"), &none));
        assert!(!s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "444455556666"), &prod));
    }

    #[test]
    fn explicit_ids_match_the_id_or_the_arn() {
        let p = policy(
            r#"{"name":"named","every":"1h","rpo":"2h","retain":3,
                "select":{"ids":["orders","arn:aws:dynamodb:us-east-1:111122223333:table/carts"]}}"#,
        );
        let s = p.select.as_ref().unwrap();
        let none = tags(&[]);
        assert!(s.matches(&resource(ResourceKind::RdsInstance, "orders", "111122223333"), &none));
        assert!(s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "111122223333"), &none));
        assert!(!s.matches(&resource(ResourceKind::DynamoDbTable, "carts", "444455556666"), &none));
        assert!(!s.matches(&resource(ResourceKind::RdsInstance, "billing", "111122223333"), &none));
    }

    #[test]
    fn the_tag_wins_then_the_most_critical_selecting_policy() {
        let all = policies(&[
            policy(
                r#"{"name":"bronze","every":"1d","rpo":"2d","retain":3,"priority":7,"select":{"types":["rds-instance"]}}"#,
            ),
            policy(
                r#"{"name":"gold","every":"1h","rpo":"2h","retain":3,"priority":1,"select":{"tags":{"tier":"gold"}}}"#,
            ),
            policy(r#"{"name":"silver","every":"4h","rpo":"8h","retain":3,"priority":4}"#),
        ]);
        let db = resource(ResourceKind::RdsInstance, "orders", "111122223333");
        let gold_tags = tags(&[("tier", "gold")]);
        let none = tags(&[]);
        assert_eq!(
            claim(&all, &db, &gold_tags, Some("silver")),
            Claim::Tagged(PolicyName::parse("silver").unwrap())
        );
        assert_eq!(
            claim(&all, &db, &gold_tags, Some("platinum")),
            Claim::UnknownPolicy("platinum".into())
        );
        assert_eq!(
            claim(&all, &db, &gold_tags, None),
            Claim::Selected {
                policy: PolicyName::parse("gold").unwrap(),
                also: vec![PolicyName::parse("bronze").unwrap()],
            }
        );
        assert_eq!(
            claim(&all, &db, &none, None),
            Claim::Selected {
                policy: PolicyName::parse("bronze").unwrap(),
                also: vec![],
            }
        );
        let table = resource(ResourceKind::DynamoDbTable, "carts", "111122223333");
        assert_eq!(claim(&all, &table, &none, None), Claim::Unprotected);
    }

    proptest! {
        /// Whatever the policies and whichever order they were loaded in, a resource gets
        /// the same single policy, and that policy does select it.
        #[test]
        fn the_claim_does_not_depend_on_order(
            specs in prop::collection::vec((1u8..=9, prop::bool::ANY, prop::bool::ANY), 1..8),
            has_tag in prop::bool::ANY,
            rotate in 0usize..8,
        ) {
            let mut list: Vec<Policy> = specs.iter().enumerate().map(|(i, (prio, by_type, by_tag))| {
                let select = match (by_type, by_tag) {
                    (true, true) => r#","select":{"types":["rds-instance"],"tags":{"team":"a"}}"#,
                    (true, false) => r#","select":{"types":["rds-instance"]}"#,
                    (false, true) => r#","select":{"tags":{"team":"a"}}"#,
                    (false, false) => "",
                };
                policy(&format!(r#"{{"name":"p{i}","every":"1h","rpo":"2h","retain":1,"priority":{prio}{select}}}"#))
            }).collect();
            let db = resource(ResourceKind::RdsInstance, "orders", "111122223333");
            let pairs: &[(&str, &str)] = if has_tag { &[("team", "a")] } else { &[] };
            let tags = tags(pairs);
            let first = claim(&policies(&list), &db, &tags, None);
            let k = rotate % list.len();
            list.rotate_left(k);
            list.reverse();
            prop_assert_eq!(&claim(&policies(&list), &db, &tags, None), &first);
            if let Claim::Selected { policy: chosen, also } = &first {
                let all = policies(&list);
                let p = &all[chosen];
                prop_assert!(p.select.as_ref().unwrap().matches(&db, &tags));
                for other in also {
                    prop_assert!((p.priority, &p.name) < (all[other].priority, other));
                }
            }
        }
    }
}
