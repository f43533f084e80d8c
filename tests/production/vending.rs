//! Vended credentials for the catalog proxy: what Lakekeeper does for a
//! table, done with SeaweedFS's STS. AssumeRole (signed with the admin keys)
//! answers credentials of a role allowed on the warehouse, narrowed by a
//! session policy to the one table's location.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the proxy mints credentials.
#[derive(Clone)]
pub struct Sts {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub role_arn: String,
    /// STS's minimum is 900 seconds.
    pub duration_secs: u64,
    /// The first keys vended for each table do not work and expire in four
    /// minutes, inside the time before expiry when medallion renews them:
    /// only a client that renews (with a new LoadTable) before using them
    /// gets to the table's files.
    pub first_keys_about_to_expire: bool,
    /// Table locations vended for so far.
    pub seen: Arc<Mutex<HashSet<String>>>,
    /// How many keys were vended about to expire.
    pub about_to_expire: Arc<AtomicU64>,
}

impl Sts {
    /// SeaweedFS from `.ci/seaweedfs.sh`.
    pub fn seaweedfs() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: start the test servers with `.ci/seaweedfs.sh start`")
            })
        };
        Self {
            endpoint: var("MEDALLION_TEST_S3_ENDPOINT"),
            access_key: var("MEDALLION_TEST_S3_ACCESS_KEY"),
            secret_key: var("MEDALLION_TEST_S3_SECRET_KEY"),
            region: std::env::var("MEDALLION_TEST_S3_REGION")
                .unwrap_or_else(|_| "us-east-1".into()),
            role_arn: var("MEDALLION_TEST_STS_ROLE_ARN"),
            duration_secs: 900,
            first_keys_about_to_expire: false,
            seen: Arc::default(),
            about_to_expire: Arc::default(),
        }
    }

    /// A LoadTable answer with credentials for its table's location added,
    /// in `storage-credentials` (Iceberg 1.7+) and in `config` (older clients).
    pub async fn add_credentials(&self, body: &[u8]) -> Vec<u8> {
        let mut answer: serde_json::Value =
            serde_json::from_slice(body).expect("a LoadTable answer");
        let location = answer["metadata"]["location"]
            .as_str()
            .expect("the table's location")
            .to_string();
        let sts = self.clone();
        let keys = {
            let location = location.clone();
            tokio::task::spawn_blocking(move || sts.assume_role(&location))
                .await
                .expect("STS call")
        };
        let first = self.seen.lock().unwrap().insert(location.clone());
        let keys = if first && self.first_keys_about_to_expire {
            self.about_to_expire.fetch_add(1, Ordering::Relaxed);
            Keys {
                access_key_id: keys.access_key_id,
                secret_access_key: "not-the-secret".into(),
                session_token: keys.session_token,
                expires_at_ms: chrono::Utc::now().timestamp_millis() + 4 * 60 * 1000,
            }
        } else {
            keys
        };
        let config = serde_json::json!({
            "s3.access-key-id": keys.access_key_id,
            "s3.secret-access-key": keys.secret_access_key,
            "s3.session-token": keys.session_token,
            "s3.session-token-expires-at-ms": keys.expires_at_ms.to_string(),
        });
        answer["storage-credentials"] = serde_json::json!([{"prefix": location, "config": config}]);
        serde_json::to_vec(&answer).expect("JSON")
    }

    fn assume_role(&self, location: &str) -> Keys {
        let (bucket, prefix) = location
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_else(|| panic!("a table location in a bucket: {location}"));
        let prefix = prefix.trim_end_matches('/');
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow",
                 "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                            "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                 "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}/*")]},
                {"Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": [format!("arn:aws:s3:::{bucket}")],
                 "Condition": {"StringLike": {"s3:prefix": [prefix, format!("{prefix}/*")]}}},
            ]
        });
        let out = Command::new("curl")
            .args(["-s", "-m", "10", "--aws-sigv4"])
            .arg(format!("aws:amz:{}:sts", self.region))
            .arg("--user")
            .arg(format!("{}:{}", self.access_key, self.secret_key))
            .args(["-X", "POST", &format!("{}/", self.endpoint)])
            .args(["--data-urlencode", "Action=AssumeRole"])
            .args(["--data-urlencode", "Version=2011-06-15"])
            .args(["--data-urlencode", &format!("RoleArn={}", self.role_arn)])
            .args(["--data-urlencode", "RoleSessionName=medallion-test"])
            .args([
                "--data-urlencode",
                &format!("DurationSeconds={}", self.duration_secs),
            ])
            .args(["--data-urlencode", &format!("Policy={policy}")])
            .output()
            .expect("curl runs");
        let xml = String::from_utf8_lossy(&out.stdout).to_string();
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let from = xml.find(&open).map(|i| i + open.len());
            let to = xml.find(&format!("</{name}>"));
            match (from, to) {
                (Some(from), Some(to)) => xml[from..to].to_string(),
                _ => panic!("STS answered no {name}: {xml}"),
            }
        };
        let expiration = chrono::DateTime::parse_from_rfc3339(&tag("Expiration"))
            .expect("an RFC 3339 expiration");
        Keys {
            access_key_id: tag("AccessKeyId"),
            secret_access_key: tag("SecretAccessKey"),
            session_token: tag("SessionToken"),
            expires_at_ms: expiration.timestamp_millis(),
        }
    }
}

struct Keys {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expires_at_ms: i64,
}

/// Whether `path` (`/v1/{prefix}/namespaces/{ns}/tables/{name}...`) is about
/// table `ns.name`.
pub fn names_table(path: &str, table: &str) -> bool {
    let Some((namespace, name)) = table.rsplit_once('.') else {
        return false;
    };
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(4).any(|w| {
        w[0] == "namespaces"
            && w[1] == namespace.replace('.', "%1F")
            && w[2] == "tables"
            && w[3] == name
    })
}

/// A LoadTable (`GET .../tables/{name}`) or CreateTable (`POST .../tables`).
pub fn loads_or_creates_a_table(method: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(
        (method, segments.as_slice()),
        ("GET", [.., "namespaces", _, "tables", _]) | ("POST", [.., "namespaces", _, "tables"])
    )
}
