//! Where medallion keeps its data and how much it may use. Three layers,
//! each overriding the one before: built-in defaults (an embedded lakehouse
//! in `./lakehouse`), a YAML config file, and flags or their `MEDALLION_*`
//! environment variables. The standard `AWS_*` variables sit below the
//! file's `s3` keys. Secrets can be given as files (`*_file`), the way
//! Kubernetes mounts a Secret, and never appear in `Debug` output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use medallion_catalog::{LakehouseConfig, RestSettings, S3Settings, Secret, redacted_uri};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use url::Url;

/// The config file, every key optional. See `deploy/config/` for a
/// production example (MinIO + Lakekeeper + Keycloak).
///
/// ```yaml
/// lakehouse: ./lakehouse          # embedded default: raw files, tables and catalog live here
/// raw: ./lakehouse/raw            # where raw inputs of job specs are resolved (or s3://raw)
/// catalog:
///   type: sqlite
///   database: ./lakehouse/catalog.db
///   warehouse: ./lakehouse/warehouse
/// execution:
///   memory_limit: 4GiB            # DataFusion memory pool; spills beyond it
///   spill_dir: /tmp/medallion-spill
///   target_partitions: 2
///   workers: [http://10.0.0.5:50051, http://10.0.0.6:50051]   # `medallion worker`s for distributed jobs
/// events:
///   brokers: 127.0.0.1:9092       # Kafka; without brokers no events are published
///   outbox: ./lakehouse/outbox    # events wait here until the broker takes them
/// metrics:
///   push_url: http://pushgateway.monitoring.svc:9091   # push at the end of each command
///   file: /var/lib/node-exporter/textfile/medallion.prom
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub lakehouse: Option<PathBuf>,
    pub raw: Option<String>,
    #[serde(default)]
    pub s3: S3File,
    pub catalog: Option<CatalogFile>,
    #[serde(default)]
    pub execution: ExecutionFile,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub events: EventsFile,
}

/// Where a command publishes its metrics at its end (see `crate::metrics`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// A Prometheus Pushgateway, e.g. `http://pushgateway:9091`.
    pub push_url: Option<String>,
    /// A text exposition file for node-exporter's textfile collector.
    pub file: Option<PathBuf>,
}

/// Where events go: the Kafka brokers and the outbox in front of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsFile {
    pub brokers: Option<String>,
    pub outbox: Option<PathBuf>,
}

/// S3 settings; keys left out come from `AWS_*` variables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3File {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key: Option<Secret>,
    pub secret_access_key_file: Option<PathBuf>,
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Seconds a failing S3 request is retried (MEDALLION_S3_RETRY_TIMEOUT_SECS).
    pub retry_timeout_secs: Option<u64>,
    /// Ask the EC2 instance metadata address for credentials where none are
    /// configured or vended (MEDALLION_S3_INSTANCE_METADATA=true).
    pub instance_metadata: Option<bool>,
}

/// The `catalog:` block, read through [`CatalogKeys`]: serde's tagged
/// enums buffer the block, and every error in it would say line 1 column 1.
#[derive(Debug)]
pub enum CatalogFile {
    Sqlite {
        database: Option<PathBuf>,
        /// A folder, or an `s3://bucket/prefix` URI.
        warehouse: Option<String>,
    },
    Rest {
        uri: String,
        warehouse: Option<String>,
        /// OAuth2 client credentials `client_id:client_secret`.
        credential: Option<Secret>,
        credential_file: Option<PathBuf>,
        oauth2_server_uri: Option<String>,
        scope: Option<String>,
        token: Option<Secret>,
        token_file: Option<PathBuf>,
        headers: HashMap<String, String>,
        vended_credentials: bool,
    },
}

impl<'de> Deserialize<'de> for CatalogFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CatalogVisitor)
    }
}

/// Checks the keys while the block is read, so serde_yaml gives an error
/// of the check the block's line (after it was read, the file's first).
struct CatalogVisitor;

impl<'de> Visitor<'de> for CatalogVisitor {
    type Value = CatalogFile;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a catalog: `type: sqlite` or `type: rest` and their keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CatalogFile, A::Error> {
        let keys = CatalogKeys::deserialize(MapAccessDeserializer::new(map))?;
        CatalogFile::try_from(keys).map_err(de::Error::custom)
    }
}

/// Every key a `catalog:` block may have, whatever its `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogKeys {
    #[serde(rename = "type")]
    kind: CatalogKind,
    database: Option<PathBuf>,
    warehouse: Option<String>,
    uri: Option<String>,
    credential: Option<Secret>,
    credential_file: Option<PathBuf>,
    #[serde(rename = "oauth2-server-uri", alias = "oauth2_server_uri")]
    oauth2_server_uri: Option<String>,
    scope: Option<String>,
    token: Option<Secret>,
    token_file: Option<PathBuf>,
    headers: Option<HashMap<String, String>>,
    vended_credentials: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum CatalogKind {
    Sqlite,
    Rest,
}

impl TryFrom<CatalogKeys> for CatalogFile {
    type Error = String;

    fn try_from(keys: CatalogKeys) -> Result<Self, String> {
        match keys.kind {
            CatalogKind::Sqlite => {
                let rest_only = [
                    ("uri", keys.uri.is_some()),
                    ("credential", keys.credential.is_some()),
                    ("credential_file", keys.credential_file.is_some()),
                    ("oauth2-server-uri", keys.oauth2_server_uri.is_some()),
                    ("scope", keys.scope.is_some()),
                    ("token", keys.token.is_some()),
                    ("token_file", keys.token_file.is_some()),
                    ("headers", keys.headers.is_some()),
                    ("vended_credentials", keys.vended_credentials.is_some()),
                ];
                if let Some((key, _)) = rest_only.iter().find(|(_, given)| *given) {
                    return Err(format!(
                        "`{key}` is a key of a `type: rest` catalog; a `type: sqlite` catalog \
                         has only `database` and `warehouse`"
                    ));
                }
                Ok(CatalogFile::Sqlite {
                    database: keys.database,
                    warehouse: keys.warehouse,
                })
            }
            CatalogKind::Rest => {
                if keys.database.is_some() {
                    return Err(
                        "`database` is a key of a `type: sqlite` catalog; a `type: rest` \
                                catalog is reached at its `uri`"
                            .into(),
                    );
                }
                let Some(uri) = keys.uri else {
                    return Err("a `type: rest` catalog needs `uri`, e.g. \
                                `uri: http://lakekeeper:8181/catalog`"
                        .into());
                };
                Ok(CatalogFile::Rest {
                    uri,
                    warehouse: keys.warehouse,
                    credential: keys.credential,
                    credential_file: keys.credential_file,
                    oauth2_server_uri: keys.oauth2_server_uri,
                    scope: keys.scope,
                    token: keys.token,
                    token_file: keys.token_file,
                    headers: keys.headers.unwrap_or_default(),
                    vended_credentials: keys.vended_credentials.unwrap_or(false),
                })
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionFile {
    pub memory_limit: Option<String>,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: Option<usize>,
    #[serde(default)]
    pub workers: Vec<String>,
}

/// Settings given on the command line or through their environment
/// variables; each wins over the config file. These are the global flags of
/// `medallion`, declared here once.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Config file (YAML); default: ./medallion.yaml when present.
    #[arg(
        long = "config",
        global = true,
        env = "MEDALLION_CONFIG",
        value_name = "FILE"
    )]
    pub config_file: Option<PathBuf>,
    /// Folder of the embedded lakehouse (raw files, tables, catalog).
    #[arg(long, global = true, env = "MEDALLION_LAKEHOUSE", value_name = "DIR")]
    pub lakehouse: Option<PathBuf>,
    /// Root that relative raw paths of job specs resolve against (a folder or URI).
    #[arg(long, global = true, env = "MEDALLION_RAW", value_name = "URI")]
    pub raw: Option<String>,
    /// Iceberg REST catalog URI (Lakekeeper: http://host:8181/catalog); selects the REST catalog.
    #[arg(long, global = true, env = "MEDALLION_CATALOG_URI", value_name = "URI")]
    pub catalog_uri: Option<String>,
    /// Warehouse of the REST catalog (Lakekeeper: the warehouse name).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_WAREHOUSE",
        value_name = "NAME"
    )]
    pub catalog_warehouse: Option<String>,
    /// OAuth2 client credentials for the catalog, `client_id:client_secret`.
    /// Prefer the environment variable or a config file over the flag.
    #[arg(long, global = true, env = "MEDALLION_CATALOG_CREDENTIAL", hide_env_values = true, value_name = "ID:SECRET", value_parser = parse_secret)]
    pub catalog_credential: Option<Secret>,
    /// OAuth2 token endpoint (Keycloak: https://host/realms/REALM/protocol/openid-connect/token).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_OAUTH2_SERVER_URI",
        value_name = "URI"
    )]
    pub catalog_oauth2_server_uri: Option<String>,
    /// OAuth2 scope to ask for (Lakekeeper with Keycloak: lakekeeper).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_SCOPE",
        value_name = "SCOPE"
    )]
    pub catalog_scope: Option<String>,
    /// File with a bearer token for the catalog, re-read when it changes
    /// (e.g. a projected Kubernetes service-account token).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub catalog_token_file: Option<PathBuf>,
    /// S3 endpoint for MinIO and other S3 servers (default: AWS_ENDPOINT_URL).
    /// Keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the config file.
    #[arg(long, global = true, env = "MEDALLION_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Memory pool for query execution, e.g. 1GiB; operators spill to disk beyond it.
    /// Default: in a container, its memory limit minus headroom (25%, at least 256 MiB);
    /// elsewhere half of the machine's available memory.
    #[arg(
        long,
        global = true,
        env = "MEDALLION_MEMORY_LIMIT",
        value_name = "SIZE"
    )]
    pub memory_limit: Option<String>,
    /// Folder for spill files (default: the system temp folder).
    #[arg(long, global = true, env = "MEDALLION_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Kafka brokers events are published to and `listen` reads from, host:port[,host:port].
    #[arg(
        long,
        global = true,
        env = "MEDALLION_KAFKA_BROKERS",
        value_name = "HOST:PORT"
    )]
    pub kafka_brokers: Option<String>,
    /// Parallelism of query execution (default: number of cores).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_TARGET_PARTITIONS",
        value_name = "N"
    )]
    pub target_partitions: Option<usize>,
    /// The `medallion worker`s that jobs with `execution.mode: distributed`
    /// run their queries on, http://host:port[,http://host:port].
    #[arg(
        long,
        global = true,
        env = "MEDALLION_WORKERS",
        value_name = "URL[,URL]",
        value_delimiter = ','
    )]
    pub workers: Vec<String>,
    /// Push the command's metrics to this Prometheus Pushgateway at its end,
    /// failed or not (e.g. http://pushgateway:9091). A push that fails is a warning.
    #[arg(
        long,
        global = true,
        env = "MEDALLION_METRICS_PUSH_URL",
        value_name = "URL"
    )]
    pub metrics_push_url: Option<String>,
    /// Write the command's metrics to this file at its end (Prometheus text
    /// format, for node-exporter's textfile collector; replaced atomically).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_METRICS_FILE",
        value_name = "PATH"
    )]
    pub metrics_file: Option<PathBuf>,
    /// Log lines as text, or as one JSON object per line (for Loki and
    /// other log stacks) with the trace id, job id, job and table.
    #[arg(
        long,
        global = true,
        env = "MEDALLION_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    // The standard variables of the AWS SDKs, below the config file's `s3`
    // keys; read for their variables, so their flags stay out of `--help`.
    // An empty variable counts as unset.
    /// S3 endpoint (AWS_ENDPOINT_URL_S3), before AWS_ENDPOINT_URL.
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "AWS_ENDPOINT_URL_S3"
    )]
    pub aws_endpoint_url_s3: Option<String>,
    /// Endpoint of every AWS service (AWS_ENDPOINT_URL).
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "AWS_ENDPOINT_URL"
    )]
    pub aws_endpoint_url: Option<String>,
    /// S3 region (AWS_REGION), before AWS_DEFAULT_REGION.
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "AWS_REGION"
    )]
    pub aws_region: Option<String>,
    /// S3 region (AWS_DEFAULT_REGION).
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "AWS_DEFAULT_REGION"
    )]
    pub aws_default_region: Option<String>,
    /// Seconds a failing S3 request is retried, below the config file's
    /// `s3.retry_timeout_secs`; parsed only when the file has none.
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "MEDALLION_S3_RETRY_TIMEOUT_SECS"
    )]
    pub s3_retry_timeout_secs: Option<String>,
    /// `s3.instance_metadata`; parsed only when the file has none.
    #[arg(
        long,
        global = true,
        hide = true,
        hide_env_values = true,
        env = "MEDALLION_S3_INSTANCE_METADATA"
    )]
    pub s3_instance_metadata: Option<String>,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

/// The resolved configuration of one medallion process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder of the embedded lakehouse.
    pub lakehouse: PathBuf,
    /// Root URI that relative raw paths of job specs resolve against.
    pub raw_root: String,
    pub s3: S3Settings,
    pub catalog: LakehouseConfig,
    pub memory_limit: u64,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: usize,
    /// The workers of distributed jobs.
    pub workers: Vec<Url>,
    pub metrics: MetricsSettings,
    pub events: EventsSettings,
}

/// Kafka, when configured, and the outbox events wait in.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    pub brokers: Option<String>,
    /// Default: `<lakehouse>/outbox`.
    pub outbox: PathBuf,
}

pub const DEFAULT_CONFIG_FILE: &str = "medallion.yaml";
pub const CATALOG_NAME: &str = "medallion";

impl Config {
    pub fn resolve(overrides: &Overrides) -> Result<Self> {
        let file = match &overrides.config_file {
            Some(path) => Some(read_config_file(path)?),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Some(read_config_file(Path::new(DEFAULT_CONFIG_FILE))?)
            }
            None => None,
        }
        .unwrap_or_default();

        let lakehouse = overrides
            .lakehouse
            .clone()
            .or(file.lakehouse)
            .unwrap_or_else(|| PathBuf::from("lakehouse"));
        let lakehouse = std::path::absolute(&lakehouse)
            .with_context(|| format!("bad lakehouse path {}", lakehouse.display()))?;
        let raw_root = match overrides.raw.clone().or(file.raw) {
            Some(raw) => to_uri(&raw)?,
            None => to_uri(&lakehouse.join("raw").display().to_string())?,
        };
        let s3 = s3_settings(file.s3, overrides)?;
        let catalog = catalog_settings(file.catalog, overrides, &lakehouse)?;
        let memory_limit = match overrides
            .memory_limit
            .clone()
            .or(file.execution.memory_limit)
        {
            Some(text) => {
                parse_size(&text).with_context(|| format!("bad memory limit `{text}`"))?
            }
            None => default_memory_limit(),
        };
        let target_partitions = overrides
            .target_partitions
            .or(file.execution.target_partitions)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let workers = worker_urls(if overrides.workers.is_empty() {
            &file.execution.workers
        } else {
            &overrides.workers
        })?;
        let events = EventsSettings {
            brokers: overrides
                .kafka_brokers
                .clone()
                .or(file.events.brokers)
                .filter(|b| !b.trim().is_empty()),
            outbox: match file.events.outbox {
                Some(dir) => std::path::absolute(&dir)
                    .with_context(|| format!("bad events.outbox path {}", dir.display()))?,
                None => lakehouse.join("outbox"),
            },
        };
        Ok(Self {
            lakehouse,
            raw_root,
            s3,
            catalog,
            memory_limit,
            spill_dir: overrides.spill_dir.clone().or(file.execution.spill_dir),
            target_partitions,
            workers,
            events,
            metrics: MetricsSettings {
                push_url: overrides.metrics_push_url.clone().or(file.metrics.push_url),
                file: overrides.metrics_file.clone().or(file.metrics.file),
            },
        })
    }

    /// The local folder of the raw root, when raw files are local.
    pub fn local_raw_root(&self) -> Option<PathBuf> {
        self.raw_root.strip_prefix("file://").map(PathBuf::from)
    }
}

/// The catalog: the config file's, with flags over its keys; a REST URI
/// flag alone selects REST; otherwise SQLite in the lakehouse folder.
fn catalog_settings(
    file: Option<CatalogFile>,
    overrides: &Overrides,
    lakehouse: &Path,
) -> Result<LakehouseConfig> {
    let warehouse_default = || to_uri(&lakehouse.join("warehouse").display().to_string());
    Ok(match (file, &overrides.catalog_uri) {
        (
            Some(CatalogFile::Rest {
                uri,
                warehouse,
                credential,
                credential_file,
                oauth2_server_uri,
                scope,
                token,
                token_file,
                headers,
                vended_credentials,
            }),
            _,
        ) => LakehouseConfig::Rest(RestSettings {
            uri: overrides.catalog_uri.clone().unwrap_or(uri),
            warehouse: overrides.catalog_warehouse.clone().or(warehouse),
            credential: overrides
                .catalog_credential
                .clone()
                .or(credential)
                .map(Ok)
                .or_else(|| credential_file.map(|f| read_secret(&f)))
                .transpose()?,
            oauth2_server_uri: overrides
                .catalog_oauth2_server_uri
                .clone()
                .or(oauth2_server_uri),
            scope: overrides.catalog_scope.clone().or(scope),
            token,
            token_file: overrides.catalog_token_file.clone().or(token_file),
            headers,
            vended_credentials,
        }),
        (_, Some(uri)) => LakehouseConfig::Rest(RestSettings {
            uri: uri.clone(),
            warehouse: overrides.catalog_warehouse.clone(),
            credential: overrides.catalog_credential.clone(),
            oauth2_server_uri: overrides.catalog_oauth2_server_uri.clone(),
            scope: overrides.catalog_scope.clone(),
            token_file: overrides.catalog_token_file.clone(),
            ..RestSettings::default()
        }),
        (
            Some(CatalogFile::Sqlite {
                database,
                warehouse,
            }),
            None,
        ) => LakehouseConfig::Sqlite {
            name: CATALOG_NAME.into(),
            database: database.unwrap_or_else(|| lakehouse.join("catalog.db")),
            warehouse: match warehouse {
                Some(w) => to_uri(&w)?,
                None => warehouse_default()?,
            },
        },
        (None, None) => LakehouseConfig::Sqlite {
            name: CATALOG_NAME.into(),
            database: lakehouse.join("catalog.db"),
            warehouse: warehouse_default()?,
        },
    })
}

/// S3 settings: flags over the file over the standard `AWS_*` variables.
fn s3_settings(file: S3File, overrides: &Overrides) -> Result<S3Settings> {
    let set = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let access_key_id = match (file.access_key_id, file.access_key_id_file) {
        (Some(key), _) => Some(key),
        (None, Some(path)) => Some(read_secret(&path)?.expose().to_string()),
        (None, None) => None,
    };
    let secret_access_key = match (file.secret_access_key, file.secret_access_key_file) {
        (Some(secret), _) => Some(secret),
        (None, Some(path)) => Some(read_secret(&path)?),
        (None, None) => None,
    };
    Ok(S3Settings {
        endpoint: overrides
            .s3_endpoint
            .clone()
            .or(file.endpoint)
            .or_else(|| set(&overrides.aws_endpoint_url_s3))
            .or_else(|| set(&overrides.aws_endpoint_url)),
        region: file
            .region
            .or_else(|| set(&overrides.aws_region))
            .or_else(|| set(&overrides.aws_default_region)),
        access_key_id,
        secret_access_key: secret_access_key.map(|s| s.expose().to_string()),
        session_token: None,
        virtual_hosted_style: file.virtual_hosted_style,
        retry_timeout: match file.retry_timeout_secs {
            Some(seconds) => Some(seconds),
            None => set(&overrides.s3_retry_timeout_secs)
                .map(|v| {
                    v.parse::<u64>()
                        .context("MEDALLION_S3_RETRY_TIMEOUT_SECS must be a number of seconds")
                })
                .transpose()?,
        }
        .map(std::time::Duration::from_secs),
        instance_metadata: match file.instance_metadata {
            Some(allowed) => allowed,
            None => set(&overrides.s3_instance_metadata)
                .map(|v| {
                    v.parse::<bool>()
                        .context("MEDALLION_S3_INSTANCE_METADATA must be true or false")
                })
                .transpose()?
                .unwrap_or(false),
        },
    })
}

/// Reads a secret from a file (a mounted Kubernetes Secret), trimmed.
fn read_secret(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    Ok(Secret::new(text.trim()))
}

fn read_config_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let text = e.to_string();
        match e.location() {
            // serde_yaml ends its message with the place; say it once, first.
            Some(at) => {
                let place = format!("line {} column {}", at.line(), at.column());
                let message = text.strip_suffix(&format!(" at {place}")).unwrap_or(&text);
                anyhow::anyhow!("{}: {place}: {message}", path.display())
            }
            None => anyhow::anyhow!("{}: {text}", path.display()),
        }
    })
}

/// Local paths become `file://` URIs; URIs stay as they are.
pub fn to_uri(location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.trim_end_matches('/').to_string());
    }
    let absolute = std::path::absolute(location).with_context(|| format!("bad path {location}"))?;
    Ok(format!("file://{}", absolute.display())
        .trim_end_matches('/')
        .to_string())
}

/// Parses `512MiB`, `4GiB`, `2G`, `1000000`.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .context("expected a number with an optional unit such as MiB or GiB")?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        other => bail!("unknown unit `{other}`; use B, KiB, MiB, GiB or TiB"),
    };
    Ok((number * factor) as u64)
}

/// Worker addresses as URLs: `http://host:port`. A worker takes no
/// credentials in its address, and one written with them is refused
/// without showing them (the address reaches errors and logs).
fn worker_urls(addresses: &[String]) -> Result<Vec<Url>> {
    addresses
        .iter()
        .map(|address| address.trim())
        .filter(|address| !address.is_empty())
        .map(|address| {
            let url = Url::parse(address).ok().filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.port_or_known_default().is_some()
                    && url.username().is_empty()
                    && url.password().is_none()
            });
            url.with_context(|| {
                format!(
                    "bad worker address `{}`: write it as http://host:port, without a user or password",
                    redacted_uri(address)
                )
            })
        })
        .collect()
}

/// The memory pool when none is configured. In a container (a cgroup with
/// a memory limit) the limit minus headroom for memory the pool does not
/// track, so a Kubernetes Job spills instead of being OOM-killed; see
/// [`crate::cgroup::pool_size`]. Elsewhere half of the machine's available
/// memory, the other half covering the untracked memory.
pub fn default_memory_limit() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    match (crate::cgroup::memory_limit(), available) {
        // A limit above what the machine has left binds less than the machine.
        (Some(limit), Some(available)) if limit > available => (available / 2).max(256 << 20),
        (Some(limit), _) => crate::cgroup::pool_size(limit),
        (None, Some(available)) => (available / 2).max(256 << 20),
        (None, None) => 2 << 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_addresses_are_http_urls_and_anything_else_says_how_to_write_one() {
        let workers = [" http://10.0.0.5:50051", "", "https://w1.example:443"].map(String::from);
        let urls = worker_urls(&workers).unwrap();
        let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://10.0.0.5:50051/", "https://w1.example/"]);
        for bad in ["10.0.0.5:50051", "grpc://w0:50051", "http://"] {
            let error = worker_urls(&[bad.to_string()]).unwrap_err().to_string();
            assert!(
                error.contains(bad) && error.contains("http://host:port"),
                "{error}"
            );
        }
        let error = worker_urls(&["http://ops:hunter2@w0:50051".to_string()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("without a user or password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(
            parse_size("3 parsecs")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }

    #[test]
    fn s3_settings_take_flags_then_the_file_then_the_aws_variables_and_skip_empty_ones() {
        let overrides = Overrides {
            aws_endpoint_url_s3: Some(String::new()),
            aws_endpoint_url: Some("http://every-service".into()),
            aws_region: Some(String::new()),
            aws_default_region: Some("eu-west-1".into()),
            s3_retry_timeout_secs: Some("7".into()),
            ..Overrides::default()
        };
        let s3 = s3_settings(S3File::default(), &overrides).unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("http://every-service"));
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s3.retry_timeout, Some(std::time::Duration::from_secs(7)));

        let file = || S3File {
            endpoint: Some("http://file".into()),
            region: Some("file-region".into()),
            retry_timeout_secs: Some(3),
            ..S3File::default()
        };
        let s3 = s3_settings(file(), &overrides).unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("http://file"));
        assert_eq!(s3.region.as_deref(), Some("file-region"));
        assert_eq!(s3.retry_timeout, Some(std::time::Duration::from_secs(3)));

        let flagged = Overrides {
            s3_endpoint: Some("http://flag".into()),
            ..overrides
        };
        let s3 = s3_settings(file(), &flagged).unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("http://flag"));

        let bad = Overrides {
            s3_retry_timeout_secs: Some("soon".into()),
            ..Overrides::default()
        };
        let err = s3_settings(S3File::default(), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("MEDALLION_S3_RETRY_TIMEOUT_SECS"), "{err}");
    }

    #[test]
    fn the_aws_variables_are_read_by_their_standard_names_and_never_shown() {
        use clap::Args;
        let command = Overrides::augment_args(clap::Command::new("medallion"));
        for (id, variable) in [
            ("aws_endpoint_url_s3", "AWS_ENDPOINT_URL_S3"),
            ("aws_endpoint_url", "AWS_ENDPOINT_URL"),
            ("aws_region", "AWS_REGION"),
            ("aws_default_region", "AWS_DEFAULT_REGION"),
            ("s3_retry_timeout_secs", "MEDALLION_S3_RETRY_TIMEOUT_SECS"),
            ("s3_instance_metadata", "MEDALLION_S3_INSTANCE_METADATA"),
        ] {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .unwrap_or_else(|| panic!("no argument {id}"));
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(variable)));
            assert!(arg.is_hide_set() && arg.is_hide_env_values_set(), "{id}");
        }
    }

    #[test]
    fn kafka_brokers_come_from_the_flag_over_the_file_and_the_outbox_defaults_to_the_lakehouse() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("medallion.yaml");
        std::fs::write(
            &file,
            "lakehouse: /data/lh\nevents:\n  brokers: file:9092\n",
        )
        .unwrap();
        let resolve = |kafka_brokers: Option<&str>| {
            Config::resolve(&Overrides {
                config_file: Some(file.clone()),
                kafka_brokers: kafka_brokers.map(str::to_string),
                ..Overrides::default()
            })
            .unwrap()
            .events
        };
        let events = resolve(None);
        assert_eq!(events.brokers.as_deref(), Some("file:9092"));
        assert_eq!(events.outbox, PathBuf::from("/data/lh/outbox"));
        assert_eq!(
            resolve(Some("flag:9092")).brokers.as_deref(),
            Some("flag:9092")
        );
        std::fs::write(&file, "events:\n  outbox: /var/outbox\n").unwrap();
        let events = resolve(None);
        assert_eq!(
            (events.brokers, events.outbox),
            (None, PathBuf::from("/var/outbox"))
        );
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("medallion.yaml");
        std::fs::write(
            &file,
            "lakehouse: /data/lh\nexecution:\n  memory_limit: 1GiB\n",
        )
        .unwrap();
        let config = Config::resolve(&Overrides {
            config_file: Some(file.clone()),
            memory_limit: Some("256MiB".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.lakehouse, PathBuf::from("/data/lh"));
        assert_eq!(config.raw_root, "file:///data/lh/raw");
        assert_eq!(config.memory_limit, 256 << 20);

        std::fs::write(&file, "lakehouse: /data/lh\nmemory: 1GiB\n").unwrap();
        let err = Config::resolve(&Overrides {
            config_file: Some(file),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains("memory"), "{err}");
    }

    #[test]
    fn a_config_formatted_for_debugging_shows_no_catalog_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("medallion.yaml");
        std::fs::write(
            &file,
            "catalog:\n  type: rest\n  uri: http://client:uri-s3cret@lakekeeper/catalog\n  \
             oauth2-server-uri: https://id:server-s3cret@idp/token\n  \
             credential: client:credential-s3cret\n  \
             headers: { Authorization: Bearer header-s3cret }\n",
        )
        .unwrap();
        let config = Config::resolve(&Overrides {
            config_file: Some(file),
            ..Overrides::default()
        })
        .unwrap();
        for shown in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains("s3cret"), "a secret is shown: {shown}");
            assert!(
                shown.contains("http://client:<redacted>@lakekeeper/catalog")
                    && shown.contains("Authorization"),
                "{shown}"
            );
        }
    }
}
