//! Credentials for the GitOps repository. The token comes from the
//! environment or a mounted file and reaches git only through environment
//! variables of the git process (`GIT_CONFIG_COUNT` config entries), so it
//! is never written into `.git/config`, never on a command line that `ps`
//! shows, and never printed: error output from git is redacted.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;

/// The token variable; `MEDALLION_GIT_TOKEN_FILE` or `--git-token-file`
/// names a file instead (a mounted Secret).
pub const TOKEN_ENV: &str = "MEDALLION_GIT_TOKEN";
pub const TOKEN_FILE_ENV: &str = "MEDALLION_GIT_TOKEN_FILE";
/// The user name sent with the token. Forges take any name with a token;
/// GitHub documents `x-access-token`.
pub const USERNAME_ENV: &str = "MEDALLION_GIT_USERNAME";
const DEFAULT_USERNAME: &str = "x-access-token";

/// HTTP credentials for git, sent as an `Authorization` header.
#[derive(Clone)]
pub struct GitCredentials {
    header: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitCredentials(redacted)")
    }
}

impl GitCredentials {
    pub fn basic(username: &str, token: &str) -> Result<Self> {
        let token = token.trim();
        if token.is_empty() {
            bail!("the git token is empty");
        }
        if token.contains(['\n', '\r']) {
            bail!("the git token spans several lines; the file should hold the token alone");
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
        Ok(Self {
            header: format!("Authorization: Basic {encoded}"),
            secrets: vec![token.to_string(), encoded],
        })
    }

    /// From `--git-token-file`, `MEDALLION_GIT_TOKEN_FILE` or
    /// `MEDALLION_GIT_TOKEN`, in that order; none of them means no
    /// credentials (a local path, or git's own configuration).
    pub fn from_environment(token_file: Option<&Path>) -> Result<Option<Self>> {
        let username = std::env::var(USERNAME_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_USERNAME.to_string());
        let file = token_file.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(TOKEN_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(file) = file {
            let token = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the git token file {}", file.display()))?;
            return Self::basic(&username, &token)
                .with_context(|| format!("bad git token file {}", file.display()))
                .map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.is_empty() => Self::basic(&username, &token)
                .with_context(|| format!("bad {TOKEN_ENV}"))
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Environment variables that make git send the header (git 2.31+).
    pub fn git_env(&self, existing_count: usize) -> Vec<(String, String)> {
        vec![
            ("GIT_CONFIG_COUNT".into(), (existing_count + 1).to_string()),
            (
                format!("GIT_CONFIG_KEY_{existing_count}"),
                "http.extraHeader".into(),
            ),
            (
                format!("GIT_CONFIG_VALUE_{existing_count}"),
                self.header.clone(),
            ),
        ]
    }

    /// `text` with the token and its encoded form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |text, secret| text.replace(secret, "***"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_redacted_and_hidden_from_debug() {
        let credentials = GitCredentials::basic("bot", "s3cret-token").unwrap();
        assert_eq!(format!("{credentials:?}"), "GitCredentials(redacted)");
        let header = &credentials.git_env(0)[2].1;
        assert_eq!(
            credentials.redact(&format!("sent {header}")),
            "sent Authorization: Basic ***"
        );
        assert_eq!(credentials.redact("token s3cret-token"), "token ***");
        assert!(GitCredentials::basic("bot", " \n").is_err());
    }
}
