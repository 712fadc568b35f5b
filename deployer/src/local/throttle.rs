//! Stage throttling: a token bucket of `burst` tokens refilled at `rate` per
//! second, as API Gateway applies a stage's rate and burst limits. A request
//! finding the bucket empty gets 429.

use std::sync::Mutex;
use std::time::Instant;

pub struct Throttle {
    rate: f64,
    burst: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(rate: f64, burst: f64) -> Throttle {
        Throttle { rate, burst, bucket: Mutex::new((burst, Instant::now())) }
    }

    /// Takes a token if one is left.
    pub fn admit(&self) -> bool {
        self.admit_at(Instant::now())
    }

    /// [`Throttle::admit`] at `now` (tests move their own clock).
    fn admit_at(&self, now: Instant) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else { return false };
        let (tokens, last) = &mut *bucket;
        let now = now.max(*last);
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let throttle = Throttle::new(1.0, 3.0);
        let start = Instant::now();
        let admitted = (0..10).filter(|_| throttle.admit_at(start)).count();
        assert_eq!(admitted, 3, "the burst, then nothing until the bucket refills");
        let later = |ms| start + std::time::Duration::from_millis(ms);
        assert!(!throttle.admit_at(later(900)), "not a whole token yet");
        assert!(throttle.admit_at(later(1100)), "one token a second");
        assert!(!throttle.admit_at(later(1100)), "and only one");
    }
}
