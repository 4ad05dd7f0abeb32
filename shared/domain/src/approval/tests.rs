#![allow(clippy::unwrap_used)]

use super::*;

const REQUESTER: &str = "arn:aws:iam::123456789012:user/alice";
const APPROVER: &str = "arn:aws:iam::123456789012:user/approver-bob";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn rule() -> ApprovalRule {
    let mut problems = Vec::new();
    let doc = ApprovalDocument {
        required: true,
        approvers: vec![
            "arn:aws:iam::123456789012:user/approver-".into(),
            "arn:aws:sts::123456789012:assumed-role/dr-approver/".into(),
        ],
        expires: Some("4h".into()),
    };
    let rule = ApprovalRule::from_document(&doc, &mut problems).unwrap();
    assert!(problems.is_empty());
    rule
}

fn pending() -> ApprovalRequest {
    ApprovalRequest::new(
        "a1".into(),
        ApprovalSubject::Dr {
            plan: "orders".into(),
            mode: "failover".into(),
        },
        "digest".into(),
        REQUESTER,
        t("2026-12-01T10:00:00Z"),
        &rule(),
    )
}

#[test]
fn a_rule_is_checked_with_every_problem_and_round_trips() {
    let r = rule();
    assert_eq!(r.expires, Duration::from_hours(4));
    let mut problems = Vec::new();
    assert_eq!(ApprovalRule::from_document(&r.to_document(), &mut problems), Some(r));
    let bad = ApprovalDocument {
        required: true,
        approvers: vec![
            "arn:aws:iam::".into(),
            "arn:aws:iam::*:role/x".into(),
            "arn:aws:iam::123456789012:role/*".into(),
            "approver".into(),
        ],
        expires: Some("30s".into()),
    };
    assert_eq!(ApprovalRule::from_document(&bad, &mut problems), None);
    let all = problems.join("\n");
    for needle in [
        "approval.approvers[0]",
        "approval.approvers[1]",
        "approval.approvers[2]",
        "approval.approvers[3]",
        "approval.expires",
    ] {
        assert!(all.contains(needle), "missing {needle} in {all}");
    }
    let mut problems = Vec::new();
    let none = ApprovalDocument {
        required: true,
        approvers: vec![],
        expires: Some("soon".into()),
    };
    assert_eq!(ApprovalRule::from_document(&none, &mut problems), None);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn a_second_admin_named_by_the_rule_approves_and_the_requester_gets_one_token() {
    let req = pending();
    assert_eq!(req.state_at(t("2026-12-01T11:00:00Z")), ApprovalState::PendingApproval);
    let approved = req
        .decide(APPROVER, true, Verdict::Approve, t("2026-12-01T11:00:00Z"))
        .unwrap();
    assert_eq!(approved.state, ApprovalState::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some(APPROVER));
    assert_eq!(approved.version, 2);
    // Decided once only.
    assert_eq!(
        approved.decide(APPROVER, true, Verdict::Approve, t("2026-12-01T11:01:00Z")),
        Err(ApprovalError::Decided(ApprovalState::Approved))
    );
    // Only the requester gets the token, once.
    assert_eq!(
        approved.hand_token(APPROVER, t("2026-12-01T11:02:00Z")),
        Err(ApprovalError::NotRequester)
    );
    let issued = approved.hand_token(REQUESTER, t("2026-12-01T11:02:00Z")).unwrap();
    assert_eq!(issued.state, ApprovalState::TokenIssued);
    assert_eq!(issued.claim().approved_by, APPROVER);
    assert_eq!(
        issued.hand_token(REQUESTER, t("2026-12-01T11:03:00Z")),
        Err(ApprovalError::NotApproved(ApprovalState::TokenIssued))
    );
}

#[test]
fn self_approval_a_stranger_a_viewer_and_an_expired_request_are_refused() {
    let req = pending();
    let at = t("2026-12-01T11:00:00Z");
    assert_eq!(
        req.decide(REQUESTER, true, Verdict::Approve, at),
        Err(ApprovalError::SelfApproval)
    );
    assert_eq!(
        req.decide("arn:aws:iam::123456789012:user/mallory", true, Verdict::Approve, at),
        Err(ApprovalError::NotAnApprover)
    );
    assert_eq!(
        req.decide(APPROVER, false, Verdict::Approve, at),
        Err(ApprovalError::RoleTooLow)
    );
    let late = t("2026-12-01T14:00:00Z");
    assert_eq!(req.state_at(late), ApprovalState::Expired);
    assert_eq!(
        req.decide(APPROVER, true, Verdict::Approve, late),
        Err(ApprovalError::Expired(req.expires_at))
    );
    // Pending: no token for anyone.
    assert_eq!(
        req.hand_token(REQUESTER, at),
        Err(ApprovalError::NotApproved(ApprovalState::PendingApproval))
    );
}

#[test]
fn a_session_name_does_not_make_the_same_role_a_second_person() {
    let role = "arn:aws:sts::123456789012:assumed-role/dr-approver";
    let req = ApprovalRequest::new(
        "a2".into(),
        ApprovalSubject::Dr {
            plan: "orders".into(),
            mode: "failback".into(),
        },
        "digest".into(),
        &format!("{role}/alice"),
        t("2026-12-01T10:00:00Z"),
        &rule(),
    );
    let at = t("2026-12-01T10:30:00Z");
    assert_eq!(
        req.decide(&format!("{role}/bob"), true, Verdict::Approve, at),
        Err(ApprovalError::SelfApproval)
    );
    assert_eq!(identity(&format!("{role}/x")), role);
    assert_eq!(identity(APPROVER), APPROVER);
    let denied = req
        .decide(
            APPROVER,
            true,
            Verdict::Deny {
                reason: "not during the sale".into(),
            },
            at,
        )
        .unwrap();
    assert_eq!(denied.state, ApprovalState::Denied);
    assert_eq!(denied.reason.as_deref(), Some("not during the sale"));
}

#[test]
fn weakenings_name_shorter_retention_removed_copies_new_shares_and_relaxed_approval() {
    let approval = r#""approval":{"required":true,"approvers":["arn:aws:iam::123456789012:user/approver-"]}"#;
    let old = Policy::from_json(&format!(
        r#"{{"name":"gold","every":"1h","rpo":"2h","retention":{{"last":7,"daily":30,"min_age":"3d"}},
            "copies":[{{"region":"us-west-2"}},{{"region":"eu-west-1"}}],{approval}}}"#
    ))
    .unwrap();
    assert!(weakenings(&old, &old).is_empty());
    let stronger = Policy::from_json(&format!(
        r#"{{"name":"gold","every":"1h","rpo":"2h","retention":{{"last":14,"daily":30,"monthly":12,"min_age":"7d"}},
            "copies":[{{"region":"us-west-2"}},{{"region":"eu-west-1"}},{{"region":"ap-south-1"}}],{approval}}}"#
    ))
    .unwrap();
    assert!(weakenings(&old, &stronger).is_empty());
    let weaker = Policy::from_json(
        r#"{"name":"gold","every":"1h","rpo":"2h","retention":{"last":7,"daily":7},
            "copies":[{"region":"us-west-2","account":"444455556666","kms_key_id":"arn:aws:kms:us-west-2:123456789012:key/k"}]}"#,
    )
    .unwrap();
    let found = weakenings(&old, &weaker).join("\n");
    for needle in [
        "retention.daily: 30 → 7",
        "retention.min_age",
        "copy to eu-west-1 is removed",
        "shared with account 444455556666",
        "approval: no longer required",
    ] {
        assert!(found.contains(needle), "missing {needle:?} in {found}");
    }
    assert_eq!(weakenings(&old, &weaker).len(), 5);
}

#[test]
fn a_request_reads_back_as_it_was_written() {
    let req = pending()
        .decide(APPROVER, true, Verdict::Approve, t("2026-12-01T10:10:00Z"))
        .unwrap();
    let json = serde_json::to_string(&req).unwrap();
    assert!(json.contains(r#""state":"approved""#), "{json}");
    assert!(json.contains(r#""kind":"dr""#), "{json}");
    assert_eq!(serde_json::from_str::<ApprovalRequest>(&json).unwrap(), req);
    assert_eq!(
        ApprovalState::parse("pending-approval"),
        Some(ApprovalState::PendingApproval)
    );
    assert_eq!(ApprovalState::parse("nope"), None);
}
