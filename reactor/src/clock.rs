//! Time sources for the kernel.
//!
//! The kernel keeps one monotonic timeline, measured in nanoseconds from the moment its
//! clock was made ([`Time`]). POE's user-visible times (`alarm` epochs, the values
//! `alarm_remove` and `alarm_adjust` return) are wall-clock; they are converted at the API
//! boundary: timeline point `t` is wall-clock time [`Clock::wall_origin`] `+ t`. The kernel
//! reads the origin once, when it is built, so the conversion is plain arithmetic.
//!
//! [`SystemClock`] reads the OS clocks. [`ManualClock`] is a virtual clock for tests: it
//! moves only when told to, or (with auto-advance, the default) jumps straight to the next
//! timer when the kernel has nothing else to do, so a 15-second keep-alive test runs in
//! microseconds and its timing is exact.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// A point on the kernel's monotonic timeline: nanoseconds since the clock's origin.
/// Negative values are valid (a negative `delay` made at start-up lands before the origin).
pub type Time = i64;

/// Converts a signed number of seconds to [`Time`] nanoseconds, saturating.
pub(crate) fn secs_to_time(secs: f64) -> Time {
    let ns = secs * 1e9;
    if ns >= i64::MAX as f64 {
        i64::MAX
    } else if ns <= i64::MIN as f64 {
        i64::MIN
    } else {
        round_to_i64(ns)
    }
}

/// `x.round() as i64` (halves away from zero) for `x` inside `i64`'s range, without the
/// library call `f64::round` is on baseline x86-64 (no SSE4.1): the truncation is one
/// instruction and the fraction `x - trunc(x)` is exact.
#[inline]
fn round_to_i64(x: f64) -> i64 {
    let i = x as i64;
    let frac = x - i as f64;
    if frac >= 0.5 {
        i + 1
    } else if frac <= -0.5 {
        i - 1
    } else {
        i
    }
}

/// Converts a [`Duration`] to [`Time`] nanoseconds, saturating.
pub(crate) fn duration_to_time(d: Duration) -> Time {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A source of time for a kernel.
pub trait Clock {
    /// The current point on the monotonic timeline.
    fn now(&self) -> Time;

    /// The wall-clock time of timeline point 0. Point `t` is `wall_origin() + t`
    /// nanoseconds. It must not change: the kernel reads
    /// it once.
    fn wall_origin(&self) -> SystemTime;

    /// Called when the kernel would block until `deadline` with nothing ready.
    ///
    /// A real clock returns `false` and the kernel sleeps in its poll. A virtual clock may
    /// jump to `deadline` and return `true`; the kernel then polls without blocking.
    fn skip_to(&self, deadline: Time) -> bool {
        let _ = deadline;
        false
    }
}

/// The operating system's clocks: [`Instant`] (`CLOCK_MONOTONIC`) for the timeline,
/// [`SystemTime`] for walls. It reads the clock through the C library, so programs run
/// under valgrind as well.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
    wall_origin: SystemTime,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The wall-clock time of timeline point `t`, for a clock whose point 0 is at `origin`.
#[inline]
pub(crate) fn wall_at(origin: SystemTime, t: Time) -> SystemTime {
    if t >= 0 {
        origin + Duration::from_nanos(t as u64)
    } else {
        origin
            .checked_sub(Duration::from_nanos(t.unsigned_abs()))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The timeline point of wall-clock time `wall`, for a clock whose point 0 is at `origin`.
pub(crate) fn time_of(origin: SystemTime, wall: SystemTime) -> Time {
    match wall.duration_since(origin) {
        Ok(d) => duration_to_time(d),
        Err(e) => -duration_to_time(e.duration()),
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Time {
        // Subtracting two Instants and converting seconds and nanoseconds by hand is
        // cheaper than going through u128 nanoseconds.
        let d = self.origin.elapsed();
        (d.as_secs() as i64).saturating_mul(1_000_000_000) + i64::from(d.subsec_nanos())
    }
    fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }
}

/// A virtual clock for tests. Cloning it gives another handle on the same time.
///
/// ```
/// use reactor::{Clock, ManualClock};
/// use std::time::Duration;
/// let c = ManualClock::new();
/// c.advance(Duration::from_secs(15));
/// assert_eq!(c.now(), 15_000_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Rc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now: Cell<Time>,
    wall_origin: SystemTime,
    auto_advance: Cell<bool>,
}

impl ManualClock {
    /// A clock at time 0 whose wall time is 2001-09-09T01:46:40Z (epoch 1,000,000,000), with
    /// auto-advance on.
    pub fn new() -> Self {
        Self::with_wall(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
    }

    /// A clock at time 0 whose wall time is `wall`, with auto-advance on.
    pub fn with_wall(wall: SystemTime) -> Self {
        ManualClock {
            inner: Rc::new(ManualInner {
                now: Cell::new(0),
                wall_origin: wall,
                auto_advance: Cell::new(true),
            }),
        }
    }

    /// Whether the kernel may jump the clock to its next timer when it would otherwise sleep.
    /// With it off, time moves only through [`advance`](Self::advance) and
    /// [`set`](Self::set).
    pub fn set_auto_advance(&self, on: bool) {
        self.inner.auto_advance.set(on);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.inner
            .now
            .set(self.inner.now.get().saturating_add(duration_to_time(d)));
    }

    /// Sets the clock to `t`; a clock never goes back, so an earlier `t` is ignored.
    pub fn set(&self, t: Time) {
        if t > self.inner.now.get() {
            self.inner.now.set(t);
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        self.inner.now.get()
    }
    fn wall_origin(&self) -> SystemTime {
        self.inner.wall_origin
    }
    fn skip_to(&self, deadline: Time) -> bool {
        if self.inner.auto_advance.get() {
            self.set(deadline);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{round_to_i64, secs_to_time};

    /// The same as `f64::round`, halves, the largest value below a half and huge values
    /// included.
    #[test]
    fn rounding_is_f64_round() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_497.0,
            9.0e18,
            -9.0e18,
            f64::NAN,
        ];
        let mut x = 0.123_456_789_f64;
        for _ in 0..10_000 {
            x = (x * 7.77 + 0.31).fract();
            xs.push(x * 1e12 - 5e11);
            xs.push(x * 10.0 - 5.0);
        }
        for x in xs {
            assert_eq!(round_to_i64(x), x.round() as i64, "{x}");
        }
        assert_eq!(secs_to_time(1.5e-9), 2);
        assert_eq!(secs_to_time(-1.5e-9), -2);
        assert_eq!(secs_to_time(1e300), i64::MAX);
        assert_eq!(secs_to_time(-1e300), i64::MIN);
    }
}
