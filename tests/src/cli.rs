//! The `lifeboat` binary of this build, run as one of the local stack's principals against
//! the admin API the stack serves over HTTP (moto's port + 1, stage `v1`).

use std::path::PathBuf;
use std::process::{Command, Output};

/// The local principals (infra/local/api_gateway.py): access key id and secret.
pub const VIEWER: (&str, &str) = ("LBLOCALVIEWER", "lifeboat-local-viewer");
pub const OPERATOR: (&str, &str) = ("LBLOCALOPERATOR", "lifeboat-local-operator");
pub const ADMIN: (&str, &str) = ("LBLOCALADMIN", "lifeboat-local-admin");
pub const APPROVER: (&str, &str) = ("LBLOCALAPPROVER", "lifeboat-local-approver");

/// `target/debug/lifeboat` beside the running test binary (`cargo build -p lifeboat-cli`
/// builds it; `make test` does before the tests run).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let bin = exe.parent().and_then(|d| d.parent()).map_or_else(
        || panic!("no target directory above {}", exe.display()),
        |d| d.join("lifeboat"),
    );
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p lifeboat-cli`",
        bin.display()
    );
    bin
}

/// `lifeboat <args>` signed as `who`, with no API URL, stack name or endpoint override set
/// (the caller adds what it tests).
pub fn command(who: (&str, &str), args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_remove("LIFEBOAT_API_URL")
        .env_remove("LIFEBOAT_STACK")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_CLOUDFORMATION")
        .env("AWS_ACCESS_KEY_ID", who.0)
        .env("AWS_SECRET_ACCESS_KEY", who.1)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1");
    command
}

/// The local admin API's base URL (the stack's AdminApiUrl output).
pub fn api_url() -> String {
    format!("http://127.0.0.1:{}/v1", crate::moto_port() + 1)
}

/// `lifeboat <args>` signed as `who`, against the local stack's admin API.
pub fn lifeboat(who: (&str, &str), args: &[&str]) -> Output {
    command(who, args)
        .env("LIFEBOAT_API_URL", api_url())
        .output()
        .unwrap_or_else(|e| panic!("running lifeboat: {e}"))
}

/// Exit code and both outputs, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON a successful `--output json` run printed.
pub fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}
