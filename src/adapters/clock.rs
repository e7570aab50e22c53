//! The wall clock.

use chrono::{DateTime, Timelike, Utc};

use crate::ports::Clock;

/// [`Clock`] reading the system time, to the microsecond: the precision PostgreSQL keeps, so a
/// message reads back with the very timestamp it was announced with.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}
