//! Table maintenance: what keeps a lakehouse small and fast as loads pile
//! up. Each operation is one atomic commit (or none), safe to run while jobs
//! write the same table.

mod compact;
mod expire;
mod manifests;
mod orphans;

pub use compact::CompactReport;
pub use expire::{ExpireOptions, ExpireReport};
pub use manifests::ManifestsReport;
pub use orphans::{MIN_SAFE_ORPHAN_AGE, OrphanOptions, OrphanReport};

/// The moment `age` ago; an age beyond the calendar means the beginning of
/// time (nothing is that old).
fn moment_before(age: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}
