//! Calls to the admin API on the local stack: API Gateway REST proxy events, as API
//! Gateway sends them (the caller's IAM identity in the request context), through the
//! Lambda bridge to the real `admin-api` binary.

use serde_json::{Value, json};

use crate::TestEnv;

/// An API Gateway REST proxy event for `method path` from `principal`.
pub fn request(method: &str, path: &str, principal: &str, body: Option<&Value>, request_id: &str) -> String {
    json!({
        "resource": path, "path": path, "httpMethod": method,
        "headers": {"content-type": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "resourcePath": path, "httpMethod": method,
            "stage": "v1", "requestId": request_id,
            "identity": {"accountId": "123456789012", "userArn": principal, "sourceIp": "127.0.0.1"}
        },
        "body": body.map(Value::to_string), "isBase64Encoded": false
    })
    .to_string()
}

/// Invokes the admin API; returns (status, content type, JSON body). Panics (it is a test
/// helper) when the function itself fails or answers something that is not HTTP.
pub async fn call(env: &TestEnv, event: &str) -> (u64, String, Value) {
    let (error, reply) = env
        .invoke("admin-api", event)
        .await
        .unwrap_or_else(|e| panic!("invoking admin-api: {e}"));
    assert!(error.is_none(), "admin-api failed as a function: {reply}");
    let status = reply["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("no statusCode in {reply}"));
    // lambda_http answers REST events with `multiValueHeaders`; header names in any case.
    let content_type = ["headers", "multiValueHeaders"]
        .iter()
        .filter_map(|h| reply[*h].as_object())
        .flatten()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str().or_else(|| v[0].as_str()).unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = reply["body"].as_str().map_or(Value::Null, |b| {
        serde_json::from_str(b).unwrap_or_else(|e| panic!("body is not JSON ({e}): {b}"))
    });
    (status, content_type, body)
}
