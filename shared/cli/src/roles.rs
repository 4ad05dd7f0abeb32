//! `lifeboat admin-roles`: a starting value for the stack's `AdminRoles` parameter (its
//! default, `{}`, refuses every caller). Principals given on the command line, or the
//! caller itself (STS `GetCallerIdentity`, one signed call) as admin.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use crate::CliError;
use crate::client::Transport;

/// The `AdminRoles` key for `principal`: an assumed role's sessions by their role
/// (`…:assumed-role/Ops/alice` → `…:assumed-role/Ops/*`: the session name is the caller's
/// choice, so the admin API refuses keys naming one); any other principal exactly.
pub fn key_of(principal: &str) -> Result<String, CliError> {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", p, "iam" | "sts", "", account, rest]
        if p.starts_with("aws") && account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty());
    if !ok || principal.contains('*') {
        return Err(CliError::Usage(format!(
            "{principal:.120}: not an IAM principal ARN (arn:aws:iam::<account>:role/… or user/…, or an assumed role's arn:aws:sts::<account>:assumed-role/<role>/<session>)"
        )));
    }
    Ok(match principal.split_once(":assumed-role/") {
        Some((head, rest)) => {
            let role = rest.split('/').next().unwrap_or(rest);
            format!("{head}:assumed-role/{role}/*")
        }
        None => principal.to_owned(),
    })
}

/// The `AdminRoles` JSON for these principals (a principal named twice keeps its highest
/// role).
pub fn value(viewers: &[String], operators: &[String], admins: &[String]) -> Result<Value, CliError> {
    let mut roles: BTreeMap<String, &str> = BTreeMap::new();
    for (role, principals) in [("viewer", viewers), ("operator", operators), ("admin", admins)] {
        for p in principals {
            roles.insert(key_of(p)?, role);
        }
    }
    Ok(serde_json::to_value(roles).unwrap_or(Value::Null))
}

/// The caller's ARN, from STS `GetCallerIdentity` in `region` (`AWS_ENDPOINT_URL_STS` or
/// `AWS_ENDPOINT_URL` override the endpoint).
pub async fn caller(transport: &Transport, region: &str) -> Result<String, CliError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .map_or_else(
            |_| format!("https://sts.{region}.amazonaws.com/"),
            |e| format!("{}/", e.trim_end_matches('/')),
        );
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let request = http::Request::builder()
        .method("POST")
        .uri(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CliError::Usage(format!("cannot ask STS at {endpoint}: {e}")))?;
    let (status, data) = transport.send(request, body.as_bytes(), "sts", region).await?;
    let xml = String::from_utf8_lossy(&data);
    let arn = xml
        .split_once("<Arn>")
        .and_then(|(_, rest)| rest.split_once("</Arn>"))
        .map(|(arn, _)| arn.trim().to_owned());
    match (status, arn) {
        (200, Some(arn)) if !arn.is_empty() => Ok(arn),
        _ => Err(CliError::Api(
            status,
            format!(
                "STS GetCallerIdentity at {endpoint} answered {status}: {:.300}",
                xml.trim()
            ),
        )),
    }
}

/// `lifeboat admin-roles`: the value on stdout (compact JSON, ready for
/// `--parameter-overrides AdminRoles=...`), how to use it on stderr.
pub async fn print(
    admin: &[String],
    operator: &[String],
    viewer: &[String],
    region: Option<&str>,
) -> Result<(), CliError> {
    let me;
    let admin = if admin.is_empty() && operator.is_empty() && viewer.is_empty() {
        let transport = Transport::load().await?;
        let region = region.or_else(|| transport.region()).unwrap_or("us-east-1").to_owned();
        me = vec![caller(&transport, &region).await?];
        &me[..]
    } else {
        admin
    };
    let roles = value(viewer, operator, admin)?;
    eprintln!("AdminRoles for the stack (sam deploy --parameter-overrides AdminRoles='<this>'):");
    println!("{roles}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sessions_become_their_role_and_other_principals_stay_exact() {
        assert_eq!(
            key_of("arn:aws:sts::111122223333:assumed-role/Ops/alice").unwrap(),
            "arn:aws:sts::111122223333:assumed-role/Ops/*"
        );
        assert_eq!(
            key_of("arn:aws:iam::111122223333:user/bob").unwrap(),
            "arn:aws:iam::111122223333:user/bob"
        );
        for bad in ["bob", "arn:aws:iam::1:user/x", "arn:aws:iam::111122223333:user/*"] {
            assert!(key_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_value_names_each_principal_once_with_its_highest_role() {
        let v = value(
            &["arn:aws:iam::111122223333:user/auditor".into()],
            &["arn:aws:sts::111122223333:assumed-role/Ops/alice".into()],
            &[
                "arn:aws:sts::111122223333:assumed-role/Admin/carol".into(),
                "arn:aws:sts::111122223333:assumed-role/Ops/dave".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "arn:aws:iam::111122223333:user/auditor": "viewer",
                "arn:aws:sts::111122223333:assumed-role/Ops/*": "admin",
                "arn:aws:sts::111122223333:assumed-role/Admin/*": "admin",
            })
        );
    }
}
