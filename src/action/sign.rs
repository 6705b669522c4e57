//! Webhook signatures.
//!
//! - Standard Webhooks (<https://www.standardwebhooks.com/>):
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
//!   keyed by the base64-decoded part of a `whsec_...` secret. During secret
//!   rotation the header carries one signature per secret, space-separated, and
//!   a receiver accepts any of them.
//! - GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`,
//!   keyed by the secret's bytes as written.
//!
//! Secrets never appear in `Debug` output or error messages.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1";

/// A Standard Webhooks signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret must look like whsec_<base64>")]
    Prefix,
    #[error("a webhook secret's part after whsec_ must be base64 (standard alphabet)")]
    Base64,
    #[error("a webhook secret must decode to 24 to 64 bytes, got {0}")]
    Length(usize),
}

impl Secret {
    /// Parse `whsec_<base64>`. The decoded key must be 24 to 64 bytes, the
    /// range the specification recommends.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        format!(
            "{VERSION},{}",
            base64::engine::general_purpose::STANDARD.encode(tag)
        )
    }
}

/// The `webhook-signature` header value: one signature per secret (the new
/// one and, during rotation, the old ones), space-separated.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is {0} s away from now, beyond the tolerance")]
    Timestamp(i64),
    #[error("no signature in webhook-signature matches")]
    NoMatch,
}

/// Verify a `webhook-signature` header as a receiver does: the timestamp
/// within `tolerance_s` of `now`, and at least one `v1` signature equal
/// (in constant time) to the one `secret` gives.
pub fn verify(
    secret: &Secret,
    header: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let skew = now - timestamp;
    if skew.abs() > tolerance_s {
        return Err(VerifyError::Timestamp(skew));
    }
    let expected = secret.sign(id, timestamp, body);
    let expected = expected.as_bytes();
    let matched = header.split(' ').filter(|s| s.starts_with("v1,")).any(|s| {
        s.len() == expected.len()
            && s.bytes()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// GitHub's `X-Hub-Signature-256` value for `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks reference libraries' test vector.
    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SPEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SPEC_TS: i64 = 1649367553;
    const SPEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn matches_the_specification_vector() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            s.sign(SPEC_ID, SPEC_TS, SPEC_BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn rotation_header_carries_every_secret_and_verifies_with_each() {
        // Second vector computed with Python's hmac and base64 modules.
        let old = Secret::parse(SPEC_SECRET).unwrap();
        let new = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body =
            br#"{"specversion":"1.0","id":"d-1","type":"io.driftd.model.retrain.requested"}"#;
        let header = signature_header(&[new.clone(), old.clone()], "d-1", 1_795_478_400, body);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], "v1,UUvsAilxjp7E8s1/mAqe0EyYavKkXust3V0BfIPm768=");
        for s in [&new, &old] {
            verify(s, &header, "d-1", 1_795_478_400, body, 1_795_478_400, 300).unwrap();
        }
        // Any change to id, timestamp or body breaks it.
        assert_eq!(
            verify(
                &new,
                &header,
                "d-2",
                1_795_478_400,
                body,
                1_795_478_400,
                300
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &new,
                &header,
                "d-1",
                1_795_478_401,
                body,
                1_795_478_400,
                300
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &new,
                &header,
                "d-1",
                1_795_478_400,
                b"{}",
                1_795_478_400,
                300
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &new,
                &header,
                "d-1",
                1_795_478_400,
                body,
                1_795_478_400 + 301,
                300
            ),
            Err(VerifyError::Timestamp(301))
        );
    }

    #[test]
    fn github_signature_matches_githubs_documented_example() {
        assert_eq!(
            github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        assert_eq!(Secret::parse("C2FVsBQIhrscChlQ"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_not base64!"), Err(SecretError::Base64));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SecretError::Length(5)));
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        for e in [
            SecretError::Prefix,
            SecretError::Base64,
            SecretError::Length(5),
        ] {
            assert!(!e.to_string().contains("C2FV"));
        }
    }
}
