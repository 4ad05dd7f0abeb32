//! Entity tags of stored documents (policies, DR plans): what an admin API client sends
//! back in `If-Match` so that a write based on a stale read is refused.

/// The entity tag of a stored document: a quoted prefix of its SHA-256, so equal documents
/// have equal tags and any change gives a new one.
pub fn etag(document: &str) -> String {
    format!("\"{}\"", &crate::manifest::sha256_hex(document.as_bytes())[..32])
}

/// Whether an `If-Match` header value admits a document whose tag is `current`: `*`, or
/// one of its comma-separated tags (weak tags compared by their value).
pub fn if_match_admits(header: &str, current: &str) -> bool {
    header
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_document_has_a_new_tag_and_only_its_own_tag_matches() {
        let a = etag(r#"{"name":"gold"}"#);
        let b = etag(r#"{"name":"gold","retain":3}"#);
        assert_ne!(a, b);
        assert_eq!(a, etag(r#"{"name":"gold"}"#));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34);
        assert!(if_match_admits(&a, &a) && if_match_admits("*", &a));
        assert!(if_match_admits(&format!("{b}, W/{a}"), &a));
        assert!(!if_match_admits(&b, &a) && !if_match_admits("", &a));
    }
}
