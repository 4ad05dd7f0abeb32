//! The admin API's URL read from the deployed stack: output `AdminApiUrl` of a
//! CloudFormation stack, asked with one signed `DescribeStacks` call of CloudFormation's
//! Query API through the CLI's own client and signer (no SDK crate to build for one call).

use bytes::Bytes;
use http_body_util::Full;

use crate::CliError;
use crate::client::{Transport, base_url};

/// The stack output that holds the admin API's base URL (template.yaml's `Outputs`).
pub const OUTPUT: &str = "AdminApiUrl";

/// What to do instead when the stack cannot tell.
const HINT: &str =
    "pass --api or set LIFEBOAT_API_URL (or name the stack with --stack/LIFEBOAT_STACK and its region with --region)";

/// The admin API's base URL: output [`OUTPUT`] of `stack` in `region` (else the standard
/// chain's region, else us-east-1), asked of CloudFormation at [`endpoint`].
pub async fn api_url(transport: &Transport, stack: &str, region: Option<&str>) -> Result<String, CliError> {
    let region = region.or_else(|| transport.region()).unwrap_or("us-east-1");
    if stack.trim().is_empty() {
        return Err(CliError::Usage(format!("no API URL and no stack named: {HINT}")));
    }
    let endpoint = endpoint(region, |name| std::env::var(name).ok())?;
    let tried = format!("stack {stack:?} in {region} (CloudFormation at {endpoint})");
    let body = form_body(stack);
    let request = http::Request::builder()
        .method("POST")
        .uri(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(Full::new(Bytes::from(body.clone())))
        .map_err(|e| CliError::Usage(format!("no API URL, and {tried} cannot be asked: {e}; {HINT}")))?;
    let (status, data) = transport
        .send(request, body.as_bytes(), "cloudformation", region)
        .await
        .map_err(|e| match e {
            CliError::Unreachable(why) => {
                CliError::Unreachable(format!("no API URL, and {tried} could not be read: {why}; {HINT}"))
            }
            other => other,
        })?;
    let xml = String::from_utf8_lossy(&data);
    if status != 200 {
        return Err(refusal(status, &xml, &tried));
    }
    let url = output_value(&xml, OUTPUT)
        .ok_or_else(|| CliError::Usage(format!("no API URL, and {tried} has no output {OUTPUT}; {HINT}")))?;
    base_url(&url).map_err(|_| {
        CliError::Usage(format!(
            "no API URL, and {tried} has output {OUTPUT} = {url:?}, not an http(s) URL; {HINT}"
        ))
    })
}

/// The error a DescribeStacks answer other than 200 means: a stack that does not exist is
/// bad usage (2), a refusal is one (4), anything else another API error (1).
fn refusal(status: u16, xml: &str, tried: &str) -> CliError {
    let error = element(xml, "Error").unwrap_or(xml);
    let code = element(error, "Code").map(text).unwrap_or_default();
    let message = element(error, "Message").map(text).unwrap_or_default();
    let said = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.clone(),
        (true, false) => message,
        (true, true) => format!("HTTP {status}"),
    };
    if status == 400 && code == "ValidationError" && said.contains("does not exist") {
        CliError::Usage(format!("no API URL, and {tried} does not exist ({said}); {HINT}"))
    } else {
        CliError::Api(
            status,
            format!("no API URL, and CloudFormation answered {status} for {tried}: {said}; {HINT}"),
        )
    }
}

/// CloudFormation's endpoint for `region`: `AWS_ENDPOINT_URL_CLOUDFORMATION`, else
/// `AWS_ENDPOINT_URL` (the SDKs' endpoint overrides, unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the public one. `env` looks a variable up.
pub fn endpoint(region: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, CliError> {
    let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !ignore {
        for name in ["AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_ENDPOINT_URL"] {
            let Some(url) = env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
                continue;
            };
            let Some((_, rest)) = url.split_once("://").filter(|(s, _)| matches!(*s, "http" | "https")) else {
                return Err(CliError::Usage(format!("{name}={url:?} is not an http(s) URL")));
            };
            // The Query API is posted to the endpoint's root: `http://host:port` gets its `/`.
            return Ok(if rest.contains('/') { url } else { format!("{url}/") });
        }
    }
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(CliError::Usage(format!("{region:?} is not an AWS region")));
    }
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("https://cloudformation.{region}.{domain}/"))
}

/// The form body of `DescribeStacks` for `stack` (a name or a stack id).
pub fn form_body(stack: &str) -> String {
    format!(
        "Action=DescribeStacks&StackName={}&Version=2010-05-15",
        crate::enc(stack.trim())
    )
}

/// The value of output `key` in a DescribeStacks answer: the `<OutputValue>` of the
/// `<member>` whose `<OutputKey>` is `key`, unescaped and trimmed; `None` when no member
/// has that key or its value is empty.
pub fn output_value(xml: &str, key: &str) -> Option<String> {
    members(xml)
        .filter(|m| element(m, "OutputKey").map(text).is_some_and(|k| k == key))
        .find_map(|m| element(m, "OutputValue").map(text))
        .filter(|v| !v.is_empty())
}

/// The contents of every innermost `<member>` element, in order (a stack's own `<member>`
/// holds its outputs' `<member>`s; those are the innermost).
fn members(xml: &str) -> impl Iterator<Item = &str> {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let (open, start) = open_tag(xml, "member", at)?;
            let Some(start) = start else {
                at = open + 1; // `<member/>`: empty
                continue;
            };
            let close = xml[start..].find("</member>")? + start;
            match open_tag(xml, "member", start) {
                // A member inside: look for the innermost one from there.
                Some((inner, _)) if inner < close => at = inner,
                _ => {
                    at = close + "</member>".len();
                    return Some(&xml[start..close]);
                }
            }
        }
    })
}

/// The raw contents of the first `<tag>` element in `xml` (`""` for `<tag/>`).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let (_, start) = open_tag(xml, tag, 0)?;
    let Some(start) = start else { return Some("") };
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// The next `<tag …>` at or after `from`: where it opens, and where its contents start
/// (`None` for a self-closing `<tag/>`). `<tagged>` is not `<tag>`.
fn open_tag(xml: &str, tag: &str, from: usize) -> Option<(usize, Option<usize>)> {
    let needle = format!("<{tag}");
    let mut at = from;
    loop {
        let open = xml.get(at..)?.find(&needle)? + at;
        let after = open + needle.len();
        match xml.as_bytes().get(after) {
            Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n') => {
                let end = xml[after..].find('>')? + after;
                let empty = xml[..end].ends_with('/');
                return Some((open, (!empty).then_some(end + 1)));
            }
            _ => at = after,
        }
    }
}

/// An element's text: a CDATA section as it is, anything else XML-unescaped; trimmed.
fn text(raw: &str) -> String {
    let raw = raw.trim();
    match raw.strip_prefix("<![CDATA[").and_then(|r| r.strip_suffix("]]>")) {
        Some(cdata) => cdata.trim().to_owned(),
        None => unescape(raw).trim().to_owned(),
    }
}

/// `s` with XML's five entities and numeric character references replaced; anything else
/// after an `&` is kept as it is.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 12).and_then(|semi| {
            let c = match &rest[1..semi] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                e => e
                    .strip_prefix("#x")
                    .or_else(|| e.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| e.strip_prefix('#').map(str::parse))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, semi))
        });
        if let Some((c, semi)) = decoded {
            out.push(c);
            rest = &rest[semi + 1..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;

    /// A DescribeStacks answer as CloudFormation gives it (parameters, outputs, tags).
    const ANSWER: &str = r#"<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult>
    <Stacks>
      <member>
        <StackName>lifeboat</StackName>
        <Parameters>
          <member><ParameterKey>AdminApiUrl</ParameterKey><ParameterValue>https://wrong.example/</ParameterValue></member>
        </Parameters>
        <NotificationARNs/>
        <Outputs>
          <member>
            <OutputKey>DashboardUrl</OutputKey>
            <OutputValue>https://d1.cloudfront.net/?a=1&amp;b=2</OutputValue>
            <Description>The dashboard &lt;static&gt;</Description>
          </member>
          <member>
            <Description>Base URL of the admin API &quot;v1&quot; stage</Description>
            <OutputKey>AdminApiUrl</OutputKey>
            <OutputValue>
              https://abc123.execute-api.eu-west-1.amazonaws.com/v1
            </OutputValue>
            <ExportName>lifeboat-AdminApiUrl</ExportName>
          </member>
          <member><OutputKey>Empty</OutputKey><OutputValue/></member>
        </Outputs>
        <Tags><member><Key>team</Key><Value>ops</Value></member></Tags>
      </member>
    </Stacks>
  </DescribeStacksResult>
</DescribeStacksResponse>"#;

    #[test]
    fn the_output_is_found_by_its_key_among_the_stacks_members() {
        assert_eq!(
            output_value(ANSWER, "AdminApiUrl").as_deref(),
            Some("https://abc123.execute-api.eu-west-1.amazonaws.com/v1")
        );
        assert_eq!(
            output_value(ANSWER, "DashboardUrl").as_deref(),
            Some("https://d1.cloudfront.net/?a=1&b=2")
        );
        assert_eq!(output_value(ANSWER, "Empty"), None, "an empty value is no value");
        assert_eq!(output_value(ANSWER, "Missing"), None);
        assert_eq!(output_value(ANSWER, "team"), None, "tags are not outputs");
        let no_outputs = "<DescribeStacksResponse><DescribeStacksResult><Stacks><member>\
            <StackName>lifeboat</StackName><Outputs/></member></Stacks></DescribeStacksResult></DescribeStacksResponse>";
        assert_eq!(output_value(no_outputs, OUTPUT), None);
        assert_eq!(output_value("not xml at all", OUTPUT), None);
        assert_eq!(output_value("<member><OutputKey>AdminApiUrl</OutputKey>", OUTPUT), None);
    }

    #[test]
    fn moto_s_one_line_answer_is_read_too() {
        let moto = "<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackName>lifeboat</StackName>\
            <Parameters/><Outputs><member><OutputKey>AdminApiUrl</OutputKey><OutputValue>http://127.0.0.1:5078/v1</OutputValue>\
            <Description>Base URL</Description></member></Outputs></member></Stacks></DescribeStacksResult></DescribeStacksResponse>";
        assert_eq!(output_value(moto, OUTPUT).as_deref(), Some("http://127.0.0.1:5078/v1"));
        let spaced = "<member ><OutputKey >AdminApiUrl</OutputKey><OutputValue><![CDATA[https://a/b?x=1&y=2]]></OutputValue></member>";
        assert_eq!(output_value(spaced, OUTPUT).as_deref(), Some("https://a/b?x=1&y=2"));
        let prefixed = "<members><member><OutputKey>AdminApiUrl</OutputKey><OutputValue>https://x/v1</OutputValue></member></members>";
        assert_eq!(output_value(prefixed, OUTPUT).as_deref(), Some("https://x/v1"));
    }

    #[test]
    fn entities_are_unescaped_and_strays_kept() {
        assert_eq!(
            unescape("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;"),
            "a & b <c> \"d\" 'e'"
        );
        assert_eq!(unescape("&#38;&#x26;&#X41;"), "&&A");
        assert_eq!(unescape("AT&T &unknown; & &amp"), "AT&T &unknown; & &amp");
        assert_eq!(unescape("&#xD800;"), "&#xD800;", "not a character");
    }

    #[test]
    fn a_stack_that_does_not_exist_is_bad_usage_and_a_refusal_is_a_refusal() {
        let missing = "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type>\
            <Code>ValidationError</Code><Message>Stack with id nope does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>";
        let e = refusal(400, missing, "stack \"nope\" in us-east-1");
        assert!(matches!(&e, CliError::Usage(_)), "{e:?}");
        let said = e.to_string();
        assert!(
            said.contains("\"nope\" in us-east-1 does not exist")
                && said.contains("Stack with id nope does not exist")
                && said.contains("--api")
                && said.contains("LIFEBOAT_API_URL"),
            "{said}"
        );
        let denied = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: x is not authorized</Message></Error></ErrorResponse>";
        let e = refusal(403, denied, "stack \"lifeboat\"");
        assert!(
            matches!(&e, CliError::Api(403, m) if m.contains("AccessDenied: User: x")),
            "{e:?}"
        );
        let e = refusal(500, "", "stack \"lifeboat\"");
        assert!(matches!(&e, CliError::Api(500, m) if m.contains("HTTP 500")), "{e:?}");
    }

    #[test]
    fn the_endpoint_is_the_override_else_the_region_s_own() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(
            endpoint("eu-west-1", env(&[])).unwrap(),
            "https://cloudformation.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint("cn-north-1", env(&[])).unwrap(),
            "https://cloudformation.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            endpoint("us-east-1", env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5077")])).unwrap(),
            "http://127.0.0.1:5077/"
        );
        assert_eq!(
            endpoint(
                "us-east-1",
                env(&[
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5077"),
                    ("AWS_ENDPOINT_URL_CLOUDFORMATION", "https://cfn.internal/proxy"),
                ])
            )
            .unwrap(),
            "https://cfn.internal/proxy",
            "the service's own override first"
        );
        assert_eq!(
            endpoint(
                "us-east-1",
                env(&[
                    ("AWS_ENDPOINT_URL_CLOUDFORMATION", " "),
                    ("AWS_ENDPOINT_URL", "http://localhost:4566/")
                ])
            )
            .unwrap(),
            "http://localhost:4566/",
            "an empty variable is unset"
        );
        assert_eq!(
            endpoint(
                "us-west-2",
                env(&[
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5077"),
                    ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
                ])
            )
            .unwrap(),
            "https://cloudformation.us-west-2.amazonaws.com/"
        );
        let bad = endpoint("us-east-1", env(&[("AWS_ENDPOINT_URL", "127.0.0.1:5077")])).unwrap_err();
        assert!(
            matches!(&bad, CliError::Usage(m) if m.contains("AWS_ENDPOINT_URL")),
            "{bad:?}"
        );
        assert!(matches!(
            endpoint("us-east-1.evil.example/x?", env(&[])),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn the_request_names_the_stack_form_encoded() {
        assert_eq!(
            form_body("lifeboat"),
            "Action=DescribeStacks&StackName=lifeboat&Version=2010-05-15"
        );
        assert_eq!(
            form_body("arn:aws:cloudformation:us-east-1:123456789012:stack/lifeboat/1a2b"),
            "Action=DescribeStacks&StackName=arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack%2Flifeboat%2F1a2b&Version=2010-05-15"
        );
    }
}
