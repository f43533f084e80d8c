//! How long to wait between attempts at a request that failed for a
//! passing reason: doubling from a base delay up to a ceiling, with jitter
//! so that many clients do not retry in step. Catalog requests and token
//! fetches share it, so an identity provider gets the catalog's patience.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest one attempt may take.
    pub timeout: Duration,
}

/// The catalog's policy: 6 attempts, waits doubling from 200 ms to 10 s,
/// at most 60 s an attempt.
impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        ceiling.mul_f64(0.5 + jitter / 2.0)
    }
}
