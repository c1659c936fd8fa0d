use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SearchError;

/// How long a search may run: wall-clock time (supernet training included, as in
/// the paper), a number of evaluations, or both (whichever ends first).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Budget {
    /// Wall-clock limit.
    pub wall: Option<Duration>,
    /// Largest number of trials (feasible evaluations, infeasible and failed trials all count).
    pub max_trials: Option<u64>,
}

impl Budget {
    /// The longest wall-clock budget accepted (ten years, in seconds): anything
    /// longer is a typo, and would overflow time arithmetic.
    pub const MAX_WALL_SECS: f64 = 3650.0 * 86400.0;

    /// Parses a duration such as `90s`, `30m`, `2h`, `1h30m` or `1d`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(danas_search::Budget::parse_duration("1h30m")?, Duration::from_secs(5400));
    /// assert!(danas_search::Budget::parse_duration("30").is_err());
    /// # Ok::<(), danas_search::SearchError>(())
    /// ```
    ///
    /// # Errors
    /// [`SearchError::Budget`] for anything else.
    pub fn parse_duration(input: &str) -> Result<Duration, SearchError> {
        let err = |reason: &str| SearchError::Budget { input: input.to_string(), reason: reason.to_string() };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty; use e.g. 90s, 30m, 2h or 1h30m"));
        }
        let mut total = 0f64;
        let mut num = String::new();
        for ch in s.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                num.push(ch);
                continue;
            }
            let unit = match ch {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86400.0,
                _ => return Err(err("unknown unit; use s, m, h or d")),
            };
            let v: f64 = num.parse().map_err(|_| err("expected a number before each unit"))?;
            total += v * unit;
            num.clear();
        }
        if !num.is_empty() {
            return Err(err("a number needs a unit (s, m, h or d), e.g. 30m"));
        }
        if !(total.is_finite() && total > 0.0) {
            return Err(err("must be longer than zero"));
        }
        if total > Self::MAX_WALL_SECS {
            return Err(err("longer than ten years (3650d); use `none` for no wall-clock limit"));
        }
        Duration::try_from_secs_f64(total).map_err(|_| err("too long to represent"))
    }

    /// Whether the budget is used up after `trials` trials and `elapsed` time.
    pub fn exhausted(&self, trials: u64, elapsed: Duration) -> bool {
        self.max_trials.is_some_and(|m| trials >= m) || self.wall.is_some_and(|w| elapsed >= w)
    }

    /// Whether any limit is set.
    pub fn is_bounded(&self) -> bool {
        self.wall.is_some() || self.max_trials.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let d = |s| Budget::parse_duration(s).ok();
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(d("0.5h"), Some(Duration::from_secs(1800)));
        assert_eq!(d("1d"), Some(Duration::from_secs(86400)));
        for bad in
            ["", "30", "m", "10x", "0s", "-5m", "1..2m", "18446744073709551615s", "99999999999999999999h", "3651d"]
        {
            assert!(Budget::parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exhaustion() {
        let b = Budget { wall: Some(Duration::from_secs(10)), max_trials: Some(3) };
        assert!(!b.exhausted(2, Duration::from_secs(5)));
        assert!(b.exhausted(3, Duration::from_secs(5)));
        assert!(b.exhausted(0, Duration::from_secs(10)));
        assert!(!Budget::default().exhausted(1_000_000, Duration::from_secs(1_000_000)));
    }
}
