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
pub use orphans::OrphanReport;
