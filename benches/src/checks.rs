//! Did every engine compute the same thing? Each engine answers the same
//! queries as CSV; the harness normalizes every value by its column's type
//! (so `1.5` and `1.50`, or a date with a time part, cannot cause a false
//! mismatch) and reduces each table to a digest: row count, exact sums of
//! its numeric columns and an order-insensitive content hash.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The seven tables of the reference pipeline, in pipeline order.
pub const TABLES: [&str; 7] = [
    "bronze.customers",
    "bronze.orders",
    "silver.customers",
    "silver.orders",
    "silver.dq_report",
    "gold.customer_metrics",
    "gold.sales_dashboard",
];

/// How a column's values are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Integer,
    /// Fixed-point with this many digits after the point; compared exactly.
    Decimal(u32),
    /// Compared to `FLOAT_DIGITS` significant digits: engines may differ in
    /// the last bits of a division.
    Float,
    Date,
    Text,
}

/// Significant digits a float keeps. A last-bit difference (1e-16 relative)
/// flips a rounding at 7 digits with a chance of about 1e-9 per value.
const FLOAT_DIGITS: usize = 7;

/// One query every engine answers, and the types of its columns.
pub struct CheckQuery {
    pub name: &'static str,
    pub sql: String,
    pub columns: &'static [(&'static str, Kind)],
}

const COUNT_COLUMNS: &[(&str, Kind)] = &[("table_name", Kind::Text), ("row_count", Kind::Integer)];
const DQ_COLUMNS: &[(&str, Kind)] = &[
    ("table_name", Kind::Text),
    ("check_name", Kind::Text),
    ("rejected_rows", Kind::Integer),
];
const CUSTOMER_METRICS_COLUMNS: &[(&str, Kind)] = &[
    ("customer_key", Kind::Integer),
    ("customer_name", Kind::Text),
    ("market_segment", Kind::Text),
    ("nation_key", Kind::Integer),
    ("order_count", Kind::Integer),
    ("total_spend", Kind::Decimal(2)),
    ("avg_order_value", Kind::Float),
    ("first_order_date", Kind::Date),
    ("last_order_date", Kind::Date),
];
const SALES_DASHBOARD_COLUMNS: &[(&str, Kind)] = &[
    ("order_month", Kind::Date),
    ("market_segment", Kind::Text),
    ("orders", Kind::Integer),
    ("revenue", Kind::Decimal(2)),
    ("distinct_customers", Kind::Integer),
];

/// The queries, in SQL that DataFusion, DuckDB and Spark all accept.
pub fn check_queries() -> Vec<CheckQuery> {
    let counts = TABLES
        .iter()
        .map(|t| format!("SELECT '{t}' AS table_name, COUNT(*) AS row_count FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let select = |columns: &[(&str, Kind)], table: &str| {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        format!("SELECT {} FROM {table}", names.join(", "))
    };
    vec![
        CheckQuery {
            name: "row_counts",
            sql: counts,
            columns: COUNT_COLUMNS,
        },
        CheckQuery {
            name: "dq_report",
            sql: select(DQ_COLUMNS, "silver.dq_report"),
            columns: DQ_COLUMNS,
        },
        CheckQuery {
            name: "customer_metrics",
            sql: select(CUSTOMER_METRICS_COLUMNS, "gold.customer_metrics"),
            columns: CUSTOMER_METRICS_COLUMNS,
        },
        CheckQuery {
            name: "sales_dashboard",
            sql: select(SALES_DASHBOARD_COLUMNS, "gold.sales_dashboard"),
            columns: SALES_DASHBOARD_COLUMNS,
        },
    ]
}

/// A table reduced to what is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub rows: u64,
    /// Exact sums of the integer and decimal columns, as text.
    pub sums: BTreeMap<String, String>,
    /// Order-insensitive hash of the normalized rows (duplicates count).
    pub hash: String,
}

/// Everything compared between engines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    pub row_counts: BTreeMap<String, u64>,
    /// (table, check, rejected rows), sorted.
    pub dq_report: Vec<(String, String, i64)>,
    pub customer_metrics: TableDigest,
    pub sales_dashboard: TableDigest,
}

impl Results {
    /// Reads the answers an engine wrote as `<dir>/<query name>.csv`.
    pub fn read(dir: &Path) -> Result<Self> {
        let queries = check_queries();
        let rows_of = |name: &str| -> Result<Vec<Vec<String>>> {
            let query = queries
                .iter()
                .find(|q| q.name == name)
                .expect("known query");
            let path = dir.join(format!("{name}.csv"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("the engine wrote no answer to {}", path.display()))?;
            normalized_rows(&text, query.columns)
                .with_context(|| format!("cannot read {}", path.display()))
        };
        let mut row_counts = BTreeMap::new();
        for row in rows_of("row_counts")? {
            row_counts.insert(row[0].clone(), row[1].parse()?);
        }
        let mut dq_report = rows_of("dq_report")?
            .into_iter()
            .map(|r| Ok((r[0].clone(), r[1].clone(), r[2].parse()?)))
            .collect::<Result<Vec<_>>>()?;
        dq_report.sort();
        Ok(Self {
            row_counts,
            dq_report,
            customer_metrics: digest(&rows_of("customer_metrics")?, CUSTOMER_METRICS_COLUMNS)?,
            sales_dashboard: digest(&rows_of("sales_dashboard")?, SALES_DASHBOARD_COLUMNS)?,
        })
    }

    /// What differs from `reference`, one line per difference; empty if the same.
    pub fn differences(&self, reference: &Results) -> Vec<String> {
        let mut out = Vec::new();
        for table in TABLES {
            let (ours, theirs) = (self.row_counts.get(table), reference.row_counts.get(table));
            if ours != theirs {
                out.push(format!("{table}: {ours:?} rows, reference {theirs:?}"));
            }
        }
        if self.dq_report != reference.dq_report {
            out.push(format!(
                "silver.dq_report: {:?}, reference {:?}",
                self.dq_report, reference.dq_report
            ));
        }
        for (table, ours, theirs) in [
            (
                "gold.customer_metrics",
                &self.customer_metrics,
                &reference.customer_metrics,
            ),
            (
                "gold.sales_dashboard",
                &self.sales_dashboard,
                &reference.sales_dashboard,
            ),
        ] {
            for (column, sum) in &ours.sums {
                let other = theirs.sums.get(column);
                if other != Some(sum) {
                    out.push(format!(
                        "{table}: sum({column}) {sum}, reference {}",
                        other.map_or("-", |s| s.as_str())
                    ));
                }
            }
            if ours.hash != theirs.hash {
                out.push(format!(
                    "{table}: content hash {}, reference {}",
                    ours.hash, theirs.hash
                ));
            }
        }
        out
    }

    /// The pipeline's own invariant:
    /// rows(bronze.orders) = rows(silver.orders) + the three orders rejections.
    pub fn invariant_violation(&self) -> Option<String> {
        let bronze = *self.row_counts.get("bronze.orders")?;
        let silver = *self.row_counts.get("silver.orders")?;
        let rejected: i64 = self
            .dq_report
            .iter()
            .filter(|(table, _, _)| table == "orders")
            .map(|(_, _, n)| n)
            .sum();
        (bronze as i64 != silver as i64 + rejected).then(|| {
            format!(
                "rows(bronze.orders) {bronze} != rows(silver.orders) {silver} + orders rejections {rejected}"
            )
        })
    }
}

/// Parses CSV with a header and normalizes every value by its column's kind.
/// The header must name the expected columns, in order.
pub fn normalized_rows(csv_text: &str, columns: &[(&str, Kind)]) -> Result<Vec<Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let expected: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    if header != expected {
        bail!("columns are {header:?}, expected {expected:?}");
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let row = record
            .iter()
            .zip(columns)
            .map(|(value, (name, kind))| {
                normalize(value, *kind).with_context(|| format!("column {name}: `{value}`"))
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// The canonical text of one value. An empty field is NULL.
pub fn normalize(value: &str, kind: Kind) -> Result<String> {
    if value.is_empty() && kind != Kind::Text {
        return Ok("NULL".into());
    }
    Ok(match kind {
        Kind::Text => value.to_string(),
        Kind::Integer => value
            .trim()
            .parse::<i128>()
            .context("not an integer")?
            .to_string(),
        Kind::Decimal(scale) => format_fixed(parse_fixed(value.trim(), scale)?, scale),
        Kind::Float => {
            let x: f64 = value.trim().parse().context("not a number")?;
            if x == 0.0 {
                "0".into()
            } else {
                format!("{:.*e}", FLOAT_DIGITS - 1, x)
            }
        }
        Kind::Date => {
            // Some engines print dates as timestamps at midnight.
            let date = value.trim().get(..10).context("not a date")?;
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").context("not a date")?;
            date.to_string()
        }
    })
}

/// A decimal as an integer count of 10^-scale units, exactly. Refuses
/// digits beyond the scale that are not zero (that would be a real difference).
fn parse_fixed(text: &str, scale: u32) -> Result<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        bail!("not a decimal");
    }
    let (kept, rest) = fraction.split_at(fraction.len().min(scale as usize));
    if rest.chars().any(|c| c != '0') {
        bail!("more than {scale} decimal places");
    }
    let mut units: i128 = if whole.is_empty() { 0 } else { whole.parse()? };
    for position in 0..scale as usize {
        let digit = kept.as_bytes().get(position).map_or(0, |b| b - b'0');
        units = units * 10 + i128::from(digit);
    }
    Ok(if negative { -units } else { units })
}

fn format_fixed(units: i128, scale: u32) -> String {
    if scale == 0 {
        return units.to_string();
    }
    let factor = 10i128.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let factor = factor as u128;
    format!(
        "{sign}{}.{:0width$}",
        abs / factor,
        abs % factor,
        width = scale as usize
    )
}

/// Row count, exact sums of integer and decimal columns, and a hash of the
/// rows that ignores their order: the wrapping sum of each row's SHA-256.
pub fn digest(rows: &[Vec<String>], columns: &[(&str, Kind)]) -> Result<TableDigest> {
    let mut sums: BTreeMap<String, i128> = BTreeMap::new();
    let mut hash_sum: u128 = 0;
    for row in rows {
        let mut hasher = Sha256::new();
        for (value, (name, kind)) in row.iter().zip(columns) {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
            let units = match kind {
                Kind::Integer if value != "NULL" => value.parse::<i128>()?,
                Kind::Decimal(scale) if value != "NULL" => parse_fixed(value, *scale)?,
                _ => continue,
            };
            *sums.entry((*name).to_string()).or_default() += units;
        }
        let row_hash = hasher.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&row_hash[..16]);
        hash_sum = hash_sum.wrapping_add(u128::from_le_bytes(first));
    }
    let sums = columns
        .iter()
        .filter_map(|(name, kind)| {
            let total = sums.get(*name).copied().unwrap_or(0);
            match kind {
                Kind::Integer => Some(((*name).to_string(), total.to_string())),
                Kind::Decimal(scale) => Some(((*name).to_string(), format_fixed(total, *scale))),
                _ => None,
            }
        })
        .collect();
    Ok(TableDigest {
        rows: rows.len() as u64,
        sums,
        hash: format!("{hash_sum:032x}"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const COLUMNS: &[(&str, Kind)] = &[
        ("key", Kind::Integer),
        ("name", Kind::Text),
        ("amount", Kind::Decimal(2)),
        ("ratio", Kind::Float),
        ("day", Kind::Date),
    ];

    #[test]
    fn engines_formatting_differences_normalize_to_the_same_rows() {
        let datafusion =
            "key,name,amount,ratio,day\n1,\"Customer#1, Inc\",1234.50,0.1,1995-01-01\n";
        let duckdb = "key,name,amount,ratio,day\n1,\"Customer#1, Inc\",1234.5,0.10000000000000002,1995-01-01 00:00:00\n";
        let a = normalized_rows(datafusion, COLUMNS).unwrap();
        let b = normalized_rows(duckdb, COLUMNS).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0][2], "1234.50");
        assert_eq!(a[0][1], "Customer#1, Inc");
    }

    #[test]
    fn real_differences_survive_normalization() {
        assert_ne!(
            normalize("1234.51", Kind::Decimal(2)).unwrap(),
            normalize("1234.5", Kind::Decimal(2)).unwrap()
        );
        assert_ne!(
            normalize("0.1", Kind::Float).unwrap(),
            normalize("0.1001", Kind::Float).unwrap()
        );
        assert!(normalize("1234.567", Kind::Decimal(2)).is_err());
        assert!(normalize("12x", Kind::Integer).is_err());
        assert_eq!(normalize("", Kind::Integer).unwrap(), "NULL");
        assert_eq!(normalize("-0.05", Kind::Decimal(2)).unwrap(), "-0.05");
        assert_eq!(normalize(".5", Kind::Decimal(2)).unwrap(), "0.50");
    }

    #[test]
    fn wrong_columns_are_refused() {
        let error = normalized_rows("key,nom\n1,a\n", &COLUMNS[..2]).unwrap_err();
        assert!(error.to_string().contains("expected"), "{error}");
    }

    fn rows(lines: &[&str]) -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn the_hash_ignores_row_order_but_not_content_or_duplicates() {
        let columns = &COLUMNS[..3];
        let a = digest(&rows(&["1|x|1.00", "2|y|2.50"]), columns).unwrap();
        let reordered = digest(&rows(&["2|y|2.50", "1|x|1.00"]), columns).unwrap();
        let changed = digest(&rows(&["1|x|1.00", "2|z|2.50"]), columns).unwrap();
        let shifted = digest(&rows(&["1|x|1.00", "2|y|2.50", "2|y|2.50"]), columns).unwrap();
        assert_eq!(a, reordered);
        assert_ne!(a.hash, changed.hash);
        assert_ne!(a.hash, shifted.hash);
        assert_eq!(a.rows, 2);
        assert_eq!(a.sums["amount"], "3.50");
        assert_eq!(a.sums["key"], "3");
        assert!(!a.sums.contains_key("name"));
    }

    #[test]
    fn values_moving_between_columns_change_the_hash() {
        let columns = &[("a", Kind::Text), ("b", Kind::Text)];
        let one = digest(&rows(&["ab|c"]), columns).unwrap();
        let other = digest(&rows(&["a|bc"]), columns).unwrap();
        assert_ne!(one.hash, other.hash);
    }

    pub(crate) fn sample_results() -> Results {
        let digest = |hash: &str| TableDigest {
            rows: 2,
            sums: BTreeMap::from([("revenue".to_string(), "10.00".to_string())]),
            hash: hash.into(),
        };
        Results {
            row_counts: TABLES.iter().map(|t| (t.to_string(), 10)).collect(),
            dq_report: vec![
                ("orders".into(), "duplicate_key".into(), 0),
                ("orders".into(), "null_key".into(), 0),
                ("orders".into(), "orphan_customer".into(), 0),
            ],
            customer_metrics: digest("aa"),
            sales_dashboard: digest("bb"),
        }
    }

    #[test]
    fn differences_name_what_differs() {
        let reference = sample_results();
        assert!(reference.differences(&reference).is_empty());
        let mut other = reference.clone();
        other.row_counts.insert("silver.orders".into(), 9);
        other.sales_dashboard.hash = "cc".into();
        let differences = other.differences(&reference);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(differences[0].contains("silver.orders"));
        assert!(differences[1].contains("gold.sales_dashboard: content hash cc"));
    }

    #[test]
    fn the_pipeline_invariant_is_checked() {
        let mut results = sample_results();
        assert_eq!(results.invariant_violation(), None);
        results.dq_report[0].2 = 1;
        assert!(results.invariant_violation().is_some());
    }

    #[test]
    fn check_queries_select_the_columns_they_declare() {
        for query in check_queries() {
            for (name, _) in query.columns {
                assert!(query.sql.contains(name), "{} lacks {name}", query.name);
            }
        }
        assert!(check_queries()[0].sql.contains("gold.sales_dashboard"));
    }
}
