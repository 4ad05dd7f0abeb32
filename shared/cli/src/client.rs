//! The admin API as the CLI calls it: each request signed with SigV4 for `execute-api`
//! with the standard AWS credential chain, sent over HTTPS (HTTP for a local stack).
//! [`Transport`] signs and sends for any service (the stack lookup in `stack.rs` uses it
//! for CloudFormation).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::CliError;

/// How long one request may take before the CLI gives up on it.
const TIMEOUT: Duration = Duration::from_mins(1);

/// The HTTP client and the credentials (and region) of the standard AWS chain: signs and
/// sends one request for any service.
pub struct Transport {
    credentials: SharedCredentialsProvider,
    region: Option<String>,
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The standard chain's credentials (environment, profile, role) and an HTTPS client
    /// (HTTP for a local stack).
    pub async fn load() -> Result<Self, CliError> {
        // The credential chain's own HTTP calls (IMDS, STS, SSO) go through rustls on ring, as
        // the API calls below do.
        let sdk_http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(sdk_http)
            .load()
            .await;
        let credentials = config.credentials_provider().ok_or_else(|| {
            CliError::Unreachable("no AWS credential provider is configured (environment, profile or role)".into())
        })?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls_provider())
            .map_err(|e| CliError::Unreachable(format!("could not load the system's CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            credentials,
            region: config.region().map(ToString::to_string),
            http: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// The region the standard chain names (AWS_REGION, AWS_DEFAULT_REGION, the profile's).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// `request` (whose body is `body`) signed for `service` in `region` and sent: the
    /// answer's status and body. Only a request that got no answer is an error.
    pub async fn send(
        &self,
        mut request: http::Request<Full<Bytes>>,
        body: &[u8],
        service: &str,
        region: &str,
    ) -> Result<(u16, Bytes), CliError> {
        let what = format!("{} {}", request.method(), request.uri());
        self.sign(&mut request, body, service, region).await?;
        let response = tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| CliError::Unreachable(format!("{what}: no answer in {}s", TIMEOUT.as_secs())))?
            .map_err(|e| CliError::Unreachable(format!("{what}: {}", chain(&e))))?;
        let status = response.status().as_u16();
        let data = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Unreachable(format!("{what}: reading the answer: {}", chain(&e))))?
            .to_bytes();
        Ok((status, data))
    }

    async fn sign(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        body: &[u8],
        service: &str,
        region: &str,
    ) -> Result<(), CliError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| CliError::Unreachable(format!("no AWS credentials: {e}")))?;
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CliError::Unreachable(format!("cannot sign the request: {e}")))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| CliError::Usage(format!("cannot sign {uri}: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| CliError::Unreachable(format!("cannot sign {uri}: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// An error and its causes in one line (hyper's own says only "client error (Connect)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A connection to the admin API.
pub struct Api {
    base: String,
    region: String,
    transport: Transport,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// What the API answered: its status and its JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The region a URL's API Gateway host name names
/// (`<id>.execute-api.<region>.amazonaws.com`).
pub fn region_of(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    labels.find(|l| *l == "execute-api")?;
    labels.next().map(str::to_owned)
}

/// The API's base URL without a trailing `/`, if it is an http(s) URL.
pub fn base_url(base: &str) -> Result<String, CliError> {
    let base = base.trim_end_matches('/').to_owned();
    if base.starts_with("https://") || base.starts_with("http://") {
        Ok(base)
    } else {
        Err(CliError::Usage(format!(
            "the API URL must start with https:// (or http:// for a local stack), not {base:?}"
        )))
    }
}

impl Api {
    /// A connection to `base` (its stage included, see [`base_url`]), signing for `region`.
    pub fn connect(transport: Transport, base: &str, region: Option<String>) -> Result<Self, CliError> {
        let base = base_url(base)?;
        let region = region
            .or_else(|| region_of(&base))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(Self {
            base,
            region,
            transport,
        })
    }

    /// `method path` (path and query, from the API's root) with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, CliError> {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Api::call`] with extra headers: `if-match` (the write applies only over that
    /// version), `lifeboat-confirmation` (the token of an approved change).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(Value::to_string).unwrap_or_default().into_bytes();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(bytes.clone())))
            .map_err(|e| CliError::Usage(format!("{method} {url}: {e}")))?;
        let (status, data) = self
            .transport
            .send(request, &bytes, "execute-api", &self.region)
            .await?;
        let body = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()))
        };
        Ok(Answer { status, body })
    }
}

fn rustls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_api_gateway_host_name() {
        assert_eq!(
            region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/v1").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:5078/v1"), None);
        assert_eq!(region_of("not a url"), None);
    }
}
