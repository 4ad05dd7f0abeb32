//! The HTTP boundary: a lambda_http request becomes an [`ApiRequest`]; answers are JSON or
//! `application/problem+json` ([`Problem`]).

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Value, json};

use lifeboat_ports::PortError;

/// The largest request body accepted.
/// The header a confirmation token travels in when the body is a document.
pub const CONFIRMATION_HEADER: &str = "lifeboat-confirmation";

pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the router needs from a request, independent of API Gateway's event shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    /// Percent-encoded path, e.g. `/recovery-points/us-east-1/db/x`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The caller's IAM principal ARN, as API Gateway (AWS_IAM auth) reports it.
    pub principal: Option<String>,
    pub request_id: String,
    /// The `If-Match` header: the entity tag a write was based on (policies, DR plans).
    pub if_match: Option<String>,
    /// The `Lifeboat-Confirmation` header: a confirmation token for a request whose body is
    /// a document (a policy change that needed approval).
    pub confirmation: Option<String>,
}

impl ApiRequest {
    /// From a lambda_http request: REST API (`requestContext.identity.userArn`) or
    /// HTTP API / function URL (`requestContext.authorizer.iam.userArn`).
    pub fn from_lambda(req: &Request) -> Self {
        let mut stage = None;
        let (principal, request_id) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(ctx)) => {
                stage.clone_from(&ctx.stage);
                (ctx.identity.user_arn.clone(), ctx.request_id.clone())
            }
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.authorizer
                    .as_ref()
                    .and_then(|a| a.iam.as_ref())
                    .and_then(|iam| iam.user_arn.clone()),
                ctx.request_id.clone(),
            ),
            _ => (None, None),
        };
        let request_id = request_id
            .filter(|r| !r.is_empty())
            .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let query = req
            .query_string_parameters_ref()
            .map(|q| q.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>())
            .unwrap_or_default();
        Self {
            method: req.method().as_str().to_owned(),
            // lambda_http puts a REST API's stage in front of the path (`/prod/backups`).
            path: stage
                .and_then(|s| req.uri().path().strip_prefix(&format!("/{s}")).map(str::to_owned))
                .filter(|p| p.starts_with('/'))
                .unwrap_or_else(|| req.uri().path().to_owned()),
            query,
            body: req.body().as_ref().to_vec(),
            principal: principal.filter(|p| !p.is_empty()),
            request_id: request_id.chars().take(128).collect(),
            if_match: req
                .headers()
                .get("if-match")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect()),
            confirmation: req
                .headers()
                .get(CONFIRMATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(4096).collect()),
        }
    }

    /// The body as JSON (an empty body is `{}`); a malformed one is a 400.
    pub fn json(&self) -> Result<Value, Problem> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Problem::bad_request("The request body is not valid JSON").with_error("body", e.to_string()))
    }

    /// The body parsed into `T`, problems named (unknown fields, wrong types).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        let value = self.json()?;
        if !value.is_object() {
            return Err(Problem::bad_request("The request body must be a JSON object"));
        }
        serde_json::from_value(value).map_err(|e| {
            Problem::bad_request("The request body does not match the expected shape").with_error("body", e.to_string())
        })
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    pub fn ok(body: impl Serialize) -> Result<Self, Problem> {
        Self::with_status(200, body)
    }

    pub fn with_status(status: u16, body: impl Serialize) -> Result<Self, Problem> {
        let body = serde_json::to_value(body).map_err(|e| Problem::internal(format!("cannot encode answer: {e}")))?;
        Ok(Self { status, body })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

/// An RFC 9457 problem. `internal` is logged with the request id and never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    pub allow: Option<String>,
    pub retry_after: Option<u32>,
    pub internal: Option<String>,
}

impl Problem {
    pub fn new(status: u16, title: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: None,
            errors: Vec::new(),
            allow: None,
            retry_after: None,
            internal: None,
        }
    }

    pub fn bad_request(title: impl Into<String>) -> Self {
        Self::new(400, title)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "Forbidden").detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "Not found").detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "Conflict").detail(detail)
    }

    /// A 500 whose cause is logged, never sent.
    pub fn internal(cause: impl Into<String>) -> Self {
        let mut p = Self::new(500, "Internal error");
        p.internal = Some(cause.into());
        p
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    #[must_use]
    pub fn with_error(mut self, field: impl Into<String>, problem: impl Into<String>) -> Self {
        let problem: String = problem.into();
        self.errors.push(FieldError {
            field: field.into(),
            problem: problem.chars().take(300).collect(),
        });
        self
    }

    /// A port failure as the caller may see it: the kind, never the message (it can name
    /// tables, ARNs, SDK internals); the message is kept for the log.
    pub fn from_port(e: &PortError) -> Self {
        let mut p = match e {
            PortError::Throttled(_) | PortError::QuotaExceeded(_) => {
                let mut p = Self::new(429, "Too many requests").detail("AWS throttled the request; retry later");
                p.retry_after = Some(5);
                p
            }
            PortError::Unavailable(_) => {
                let mut p = Self::new(503, "Service unavailable").detail("an AWS service did not answer; retry later");
                p.retry_after = Some(5);
                p
            }
            PortError::Conflict(_) | PortError::AlreadyExists(_) => {
                Self::conflict("the item changed or exists already; read it again and retry")
            }
            PortError::NotFound(_) => Self::not_found("a resource this request needs does not exist"),
            PortError::InvalidState(_) => Self::conflict("the resource is in a state that does not allow this now"),
            PortError::KmsKey(_) | PortError::Invalid(_) | PortError::Corrupt(_) => Self::new(500, "Internal error"),
        };
        p.internal = Some(e.to_string());
        p
    }

    fn slug(&self) -> &'static str {
        match self.status {
            400 => "invalid-request",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            409 => "conflict",
            413 => "too-large",
            429 => "throttled",
            503 => "unavailable",
            502 => "bad-gateway",
            _ => "internal",
        }
    }

    pub fn body(&self, request_id: &str) -> Value {
        let mut body = json!({
            "type": format!("urn:lifeboat:problem:{}", self.slug()),
            "title": self.title,
            "status": self.status,
            "requestId": request_id,
        });
        let detail = match (&self.detail, self.status) {
            (Some(d), _) => Some(d.clone()),
            (None, 500) => Some(format!("an internal error occurred; quote request id {request_id}")),
            (None, _) => None,
        };
        if let Some(d) = detail {
            body["detail"] = Value::String(d);
        }
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        body
    }
}

/// Renders an answer as a lambda_http response.
/// The HTTP response; `cors_origin` (the dashboard's origin) may read it from a browser.
pub fn render(status: u16, body: &Value, problem: Option<&Problem>, cors_origin: Option<&str>) -> Response<Body> {
    let content_type = if problem.is_some() {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store");
    if let Some(origin) = cors_origin {
        builder = builder
            .header("access-control-allow-origin", origin)
            .header("vary", "origin");
    }
    // A stored document's answer carries its entity tag as the ETag header too.
    if let Some(tag) = body.get("etag").and_then(Value::as_str).filter(|_| problem.is_none()) {
        builder = builder.header("etag", tag);
    }
    if let Some(p) = problem {
        if let Some(allow) = &p.allow {
            builder = builder.header("allow", allow.as_str());
        }
        if let Some(s) = p.retry_after {
            builder = builder.header("retry-after", s.to_string());
        }
    }
    builder
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Text(String::from("{}"))))
}

/// The proxy response API Gateway (REST and HTTP API) and function URLs accept:
/// `statusCode`, single-valued `headers`, the body as text (base64 when binary).
pub fn to_proxy_response(resp: Response<Body>) -> Value {
    let (parts, body) = resp.into_parts();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::String(v.to_str().ok()?.to_owned()))))
        .collect();
    let (body, encoded) = match body {
        Body::Text(t) => (t, false),
        Body::Binary(b) => {
            use base64::Engine as _;
            (base64::engine::general_purpose::STANDARD.encode(b), true)
        }
        // Empty, and whatever a later version adds.
        _ => (String::new(), false),
    };
    serde_json::json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// Percent-decodes one path segment; `None` when it is not valid UTF-8 or a `%` escape
/// is broken.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
