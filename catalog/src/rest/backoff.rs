//! How long to wait between attempts at a request that failed for a
//! passing reason: doubling from a base delay up to a ceiling, with jitter
//! so that many clients do not retry in step. The catalog's retry policy,
//! in the form the token fetch (which must not depend on the catalog
//! client) takes it.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest one attempt may take.
    pub timeout: Duration,
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
