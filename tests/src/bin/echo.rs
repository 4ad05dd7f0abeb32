//! The smallest Rust function on the Lambda runtime: `lambda_runtime` answering with the
//! event it was given. `make bench` builds it with the release profile every Lifeboat
//! function is built with and measures it beside them (size, cold start, peak memory): the
//! floor a function on this runtime starts from.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
