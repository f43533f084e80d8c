//! One job's input files split among N processes (the pods of a Kubernetes
//! Indexed Job, or `medallion run --shard i/N`): which files shard i takes,
//! and how the shards commit. A shard is named by `index/count`.

use std::fmt;

/// Shard `index` of `count` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// No more pods than this share one job: each commits or stages its own
    /// files, and the finalizer reads every shard's record.
    pub const MAX_COUNT: u32 = 1024;

    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > Self::MAX_COUNT {
            return Err(format!(
                "a job runs in 1 to {} shards, not {count}",
                Self::MAX_COUNT
            ));
        }
        if index >= count {
            return Err(format!(
                "shard {index} does not exist among {count} shards: they are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// `2/4` → shard 2 of 4.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |part: &str| part.trim().parse::<u32>().ok();
        match text.split_once('/').map(|(i, n)| (number(i), number(n))) {
            Some((Some(index), Some(count))) => Self::new(index, count),
            _ => Err(format!(
                "`{text}` is not a shard; write INDEX/COUNT, e.g. --shard 0/4 for the first of four"
            )),
        }
    }

    /// Whether this shard loads the file at `location`. A file's shard
    /// depends on its location alone, so it never moves when other files
    /// arrive between one pod's listing and another's: no file is loaded by
    /// two shards, whenever each lists.
    pub fn takes(&self, location: &str) -> bool {
        fnv1a(location.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How the shards of one job reach the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShardCommit {
    /// Each shard stages its files; the last to stage commits every shard's
    /// files in one snapshot, so readers never see part of a load.
    #[default]
    Single,
    /// Each shard commits its own append, idempotent per (job id, shard):
    /// rows arrive shard by shard.
    #[serde(alias = "per_shard")]
    PerShard,
}

/// FNV-1a, 64 bits: fixed forever, unlike the standard library's hasher,
/// so pods built from different releases agree on every file's shard.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_goes_to_exactly_one_shard_and_the_shards_share_them() {
        let files: Vec<String> = (0..400)
            .map(|i| format!("s3://raw/tpch/orders/part-{i:05}.parquet"))
            .collect();
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        let mut per_shard = [0; 4];
        for file in &files {
            let takers: Vec<_> = shards.iter().filter(|s| s.takes(file)).collect();
            assert_eq!(takers.len(), 1, "{file}");
            per_shard[takers[0].index as usize] += 1;
        }
        // 100 each on average; hashing spreads them without a shard idle.
        assert!(
            per_shard.iter().all(|n| (60..=140).contains(n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn a_shard_is_index_of_count_and_nothing_else() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse("0/1").unwrap().to_string(), "0/1");
        for bad in ["4/4", "1/0", "x/4", "2", "-1/4", "0/2000"] {
            let error = Shard::parse(bad).unwrap_err();
            assert!(error.contains("shard"), "{bad}: {error}");
        }
        assert!(Shard::parse("4/4").unwrap_err().contains("0 to 3"));
    }
}
