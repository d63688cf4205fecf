//! The account limits of one node alone, in memory: what the store shares over Redis
//! (`RATE_TAKE`, `BIND_ADMIT`), for the test double of the message service. The same
//! GCRA: a token is `1/rate` s of time, the bucket `burst` tokens deep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smppd::service::{BindLease, Rate, TokenGrant};

#[derive(Default)]
pub struct LocalLimits {
    /// Per account: the theoretical arrival time of the next token.
    tat: Mutex<HashMap<String, Instant>>,
    binds: Arc<Mutex<HashMap<String, usize>>>,
}

impl LocalLimits {
    pub fn take_tokens(&self, system_id: &str, rate: Rate, n: u32) -> TokenGrant {
        let now = Instant::now();
        let step = Duration::from_secs(1) / rate.per_second.max(1);
        let mut tats = self.tat.lock().unwrap();
        let tat = tats.get(system_id).copied().unwrap_or(now).max(now);
        // Tokens left: burst minus how far tat runs ahead of now, in whole steps.
        let ahead = (tat - now).as_nanos().div_ceil(step.as_nanos().max(1));
        let left = u128::from(rate.burst).saturating_sub(ahead) as u32;
        let k = left.min(n);
        if k == 0 {
            let wait = (tat - now).saturating_sub(step * rate.burst.saturating_sub(1));
            return TokenGrant {
                granted: 0,
                retry_after: wait,
            };
        }
        tats.insert(system_id.to_owned(), tat + step * k);
        TokenGrant {
            granted: k,
            retry_after: Duration::ZERO,
        }
    }

    pub fn acquire_bind(&self, system_id: &str, max_binds: usize) -> Option<BindLease> {
        let mut binds = self.binds.lock().unwrap();
        let n = binds.entry(system_id.to_owned()).or_default();
        if *n >= max_binds {
            return None;
        }
        *n += 1;
        let (binds, system_id) = (self.binds.clone(), system_id.to_owned());
        Some(BindLease::new(format!("local:{system_id}"), move || {
            if let Some(n) = binds.lock().unwrap().get_mut(&system_id) {
                *n -= 1;
            }
            Box::pin(async {})
        }))
    }
}
