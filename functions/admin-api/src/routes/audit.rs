//! `GET /audit`: the audit trail, newest first, paged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::{ApiResponse, Call, Deps, Problem, limit, query};

pub async fn list(deps: &Deps, call: &Call<'_>) -> Result<ApiResponse, Problem> {
    let q = query(call.req, &["limit", "cursor"])?;
    let limit = limit(&q, 50, 200)?;
    let bad = || {
        Problem::bad_request("Invalid query parameters").with_error("cursor", "is not a cursor this listing returned")
    };
    let after = q
        .iter()
        .find(|(k, _)| *k == "cursor")
        .map(|(_, v)| {
            URL_SAFE_NO_PAD
                .decode(v)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                // A sort key: `<RFC 3339 time>#<request id>#<phase>`.
                .filter(|s| {
                    s.len() < 300
                        && s.split('#').count() == 3
                        && s.get(..4).is_some_and(|y| y.bytes().all(|b| b.is_ascii_digit()))
                })
                .ok_or_else(bad)
        })
        .transpose()?;
    let page = deps
        .audit
        .page(limit, after.as_deref())
        .await
        .map_err(|e| Problem::from_port(&e))?;
    ApiResponse::ok(json!({
        "items": page.records,
        "nextCursor": page.next_after.map(|k| URL_SAFE_NO_PAD.encode(k)),
    }))
}
