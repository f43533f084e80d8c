//! `Secret`: a credential that never appears in `Debug`, `Display` or logs;
//! addresses shown without the password they may carry.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// A credential that never prints: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Only text is a secret. Anything else (`token: 123456789012345`, which
/// YAML reads as a number) is refused by its kind alone: serde's own error
/// would quote the value, and the config file's error names key and line.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: de::Error>(&self, kind: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other(kind), self))
    }
}

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a secret as text; quote it (\"...\") if YAML reads it as something else")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        self.refuse("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        self.refuse("bytes")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `text` with the password of every URI in it hidden:
/// `http://client:s3cret@host/catalog` shows as
/// `http://client:<redacted>@host/catalog`, and a user without a password
/// (which may be a token, as in `https://TOKEN@host`) as `<redacted>`. A
/// catalog URI keeps its credentials for its requests; every place that
/// shows a catalog's or an S3 endpoint's address shows it through this.
pub fn redacted_uri(text: &str) -> String {
    map_userinfo(text, |userinfo| match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>@"),
        None => "<redacted>@".to_string(),
    })
}

/// `uri` without its `user:password@`: for an S3 endpoint, whose requests
/// are signed with keys, the part is never used, and left in it would
/// reach the HTTP client's logs and errors.
pub(crate) fn without_userinfo(uri: &str) -> String {
    map_userinfo(uri, |_| String::new())
}

/// Replaces the userinfo (`user:password`, without the `@`) of each
/// `scheme://` in `text` by what `replace` makes of it (`@` included).
fn map_userinfo(text: &str, replace: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (before, after) = rest.split_at(scheme_end + 3);
        out.push_str(before);
        // The authority ends where the path, query or fragment begins; a
        // password may hold any other character once percent-encoded.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(&replace(&authority[..at]));
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_uris_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redacted_uri("http://client:s3cret@host:8181/catalog"),
            "http://client:<redacted>@host:8181/catalog"
        );
        assert_eq!(
            redacted_uri("the catalog at https://tok3n@host did not answer; http://host/x?a=b@c"),
            "the catalog at https://<redacted>@host did not answer; http://host/x?a=b@c"
        );
        assert_eq!(
            redacted_uri("http://a:p@ss@host"),
            "http://a:<redacted>@host"
        );
        assert_eq!(redacted_uri("s3://bucket/key"), "s3://bucket/key");
        assert_eq!(
            without_userinfo("http://key:s3cret@127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
    }
}
