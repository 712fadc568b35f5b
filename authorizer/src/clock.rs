//! The authorizer's time, read in one place: the UNIX seconds tokens, proofs
//! and introspection answers are judged by ([`Clock::unix_seconds`]) and the
//! monotonic time the JWKS ages by ([`Clock::monotonic`]).
//!
//! [`Clock::system`] reads the system's clocks and is what the function runs
//! on. A [`ManualClock`] stands still until it is moved, so a test reaches a
//! key's maximum age or an answer's `exp` by moving it, not by sleeping.
//!
//! One reading stays outside: jsonwebtoken checks a JWT's `exp` and `nbf`
//! against the system clock itself (the clock [`Clock::system`] reads).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the authorizer reads the time. Cheap to clone; clones read the same
/// clock.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    /// The monotonic reading is measured from `epoch`.
    System {
        epoch: Instant,
    },
    Manual(Arc<Hands>),
}

/// A manual clock's two readings, in milliseconds.
#[derive(Debug)]
struct Hands {
    unix_ms: AtomicU64,
    monotonic_ms: AtomicU64,
}

impl Clock {
    /// The system's wall clock and monotonic clock.
    pub fn system() -> Clock {
        Clock(Source::System { epoch: Instant::now() })
    }

    /// Seconds since the UNIX epoch: what `exp`, `iat` and caches of
    /// introspection answers are compared with.
    pub fn unix_seconds(&self) -> u64 {
        match &self.0 {
            Source::System { .. } => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs(),
            Source::Manual(hands) => hands.unix_ms.load(Ordering::Acquire) / 1000,
        }
    }

    /// The wall clock as a `SystemTime`, for what signs with it (a SigV4 request).
    pub fn system_time(&self) -> SystemTime {
        match &self.0 {
            Source::System { .. } => SystemTime::now(),
            Source::Manual(hands) => UNIX_EPOCH + Duration::from_millis(hands.unix_ms.load(Ordering::Acquire)),
        }
    }

    /// Time since the clock started, never going back (the wall clock may).
    pub fn monotonic(&self) -> Duration {
        match &self.0 {
            Source::System { epoch } => epoch.elapsed(),
            Source::Manual(hands) => Duration::from_millis(hands.monotonic_ms.load(Ordering::Acquire)),
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// A clock that moves only when told to: for tests of expiry and ageing.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Hands>);

impl ManualClock {
    /// A clock reading `unix_seconds`, its monotonic reading at zero.
    pub fn starting_at(unix_seconds: u64) -> ManualClock {
        ManualClock(Arc::new(Hands {
            unix_ms: AtomicU64::new(unix_seconds.saturating_mul(1000)),
            monotonic_ms: AtomicU64::new(0),
        }))
    }

    /// Both readings move forward by `by`, as time passing does.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.unix_ms.fetch_add(ms, Ordering::AcqRel);
        self.0.monotonic_ms.fetch_add(ms, Ordering::AcqRel);
    }

    /// Only the wall clock jumps (an NTP step, say); the monotonic reading
    /// stays where it is.
    pub fn set_wall(&self, unix_seconds: u64) {
        self.0.unix_ms.store(unix_seconds.saturating_mul(1000), Ordering::Release);
    }

    /// The clock to hand to the authorizer.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let manual = ManualClock::starting_at(1_000);
        let clock = manual.clock();
        assert_eq!((clock.unix_seconds(), clock.monotonic()), (1_000, Duration::ZERO));
        manual.advance(Duration::from_millis(1_500));
        assert_eq!((clock.unix_seconds(), clock.monotonic()), (1_001, Duration::from_millis(1_500)));
        manual.set_wall(500);
        assert_eq!((clock.unix_seconds(), clock.monotonic()), (500, Duration::from_millis(1_500)));
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let read = Clock::system().unix_seconds();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!((before..=after).contains(&read), "{before} <= {read} <= {after}");
    }
}
