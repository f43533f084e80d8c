//! Where medallion keeps its data and how much it may use. Three layers,
//! each overriding the one before: built-in defaults (an embedded lakehouse
//! in `./lakehouse`), a YAML config file, and flags or their `MEDALLION_*`
//! environment variables.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use medallion_catalog::LakehouseConfig;
use serde::Deserialize;

/// The config file, every key optional.
///
/// ```yaml
/// lakehouse: ./lakehouse          # embedded default: raw files, tables and catalog live here
/// raw: ./lakehouse/raw            # where raw inputs of job specs are resolved
/// catalog:
///   type: sqlite
///   database: ./lakehouse/catalog.db
///   warehouse: ./lakehouse/warehouse
/// execution:
///   memory_limit: 4GiB            # DataFusion memory pool; spills beyond it
///   spill_dir: /tmp/medallion-spill
///   target_partitions: 2
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub lakehouse: Option<PathBuf>,
    pub raw: Option<String>,
    pub catalog: Option<CatalogFile>,
    #[serde(default)]
    pub execution: ExecutionFile,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum CatalogFile {
    Sqlite {
        database: Option<PathBuf>,
        warehouse: Option<PathBuf>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionFile {
    pub memory_limit: Option<String>,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: Option<usize>,
}

/// Settings given on the command line (or through their environment variables).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub lakehouse: Option<PathBuf>,
    pub raw: Option<String>,
    pub memory_limit: Option<String>,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: Option<usize>,
}

/// The resolved configuration of one medallion process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder of the embedded lakehouse.
    pub lakehouse: PathBuf,
    /// Root URI that relative raw paths of job specs resolve against.
    pub raw_root: String,
    pub catalog: LakehouseConfig,
    pub memory_limit: u64,
    pub spill_dir: Option<PathBuf>,
    pub target_partitions: usize,
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
        let catalog = match file.catalog {
            Some(CatalogFile::Sqlite {
                database,
                warehouse,
            }) => LakehouseConfig::Sqlite {
                name: CATALOG_NAME.into(),
                database: database.unwrap_or_else(|| lakehouse.join("catalog.db")),
                warehouse: warehouse.unwrap_or_else(|| lakehouse.join("warehouse")),
            },
            None => LakehouseConfig::Sqlite {
                name: CATALOG_NAME.into(),
                database: lakehouse.join("catalog.db"),
                warehouse: lakehouse.join("warehouse"),
            },
        };
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
        Ok(Self {
            lakehouse,
            raw_root,
            catalog,
            memory_limit,
            spill_dir: overrides.spill_dir.clone().or(file.execution.spill_dir),
            target_partitions,
        })
    }

    /// The local folder of the raw root, when raw files are local.
    pub fn local_raw_root(&self) -> Option<PathBuf> {
        self.raw_root.strip_prefix("file://").map(PathBuf::from)
    }
}

fn read_config_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| match e.location() {
        Some(at) => anyhow::anyhow!(
            "{}: line {} column {}: {e}",
            path.display(),
            at.line(),
            at.column()
        ),
        None => anyhow::anyhow!("{}: {e}", path.display()),
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

/// Half of the memory this process may use: the container's cgroup limit
/// when there is one, otherwise the machine's available memory. The other
/// half covers what the pool does not track (Parquet encoders, buffers).
pub fn default_memory_limit() -> u64 {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let usable = match (cgroup, available) {
        (Some(c), Some(a)) => c.min(a),
        (Some(c), None) => c,
        (None, Some(a)) => a,
        (None, None) => 4 << 30,
    };
    (usable / 2).max(256 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
