//! The admin API as the CLI calls it: each request signed with SigV4 for `execute-api`
//! with the standard AWS credential chain, sent over HTTPS (HTTP for a local stack).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
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

/// A connection to the admin API.
pub struct Api {
    base: String,
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
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

impl Api {
    /// A connection to `base` (its stage included), signing for `region`.
    pub async fn connect(base: &str, region: Option<String>) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(CliError::Usage(format!(
                "the API URL must start with https:// (or http:// for a local stack), not {base:?}"
            )));
        }
        let region = region
            .or_else(|| region_of(&base))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
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
            base,
            region,
            credentials,
            http: Client::builder(TokioExecutor::new()).build(https),
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
        let mut request = request
            .body(Full::new(Bytes::from(bytes.clone())))
            .map_err(|e| CliError::Usage(format!("{method} {url}: {e}")))?;
        self.sign(&mut request, &bytes).await?;
        let response = tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| CliError::Unreachable(format!("{method} {url}: no answer in {}s", TIMEOUT.as_secs())))?
            .map_err(|e| CliError::Unreachable(format!("{method} {url}: {e}")))?;
        let status = response.status().as_u16();
        let data = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Unreachable(format!("{method} {url}: reading the answer: {e}")))?
            .to_bytes();
        let body = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()))
        };
        Ok(Answer { status, body })
    }

    async fn sign(&self, request: &mut http::Request<Full<Bytes>>, body: &[u8]) -> Result<(), CliError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| CliError::Unreachable(format!("no AWS credentials: {e}")))?;
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
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

fn rustls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
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
