//! What every target shares: check selection, timeouts, durations.

use std::time::Duration;

/// Options that every target shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Run only checks whose name starts with one of these prefixes
    /// (`--only`); all when empty.
    pub only: Vec<String>,
    /// Do not run checks whose name starts with one of these (`--skip`).
    pub skip: Vec<String>,
    /// Timeout of each request the runner sends, and of each wait for
    /// something a peer should send (`--timeout`).
    pub timeout: Duration,
    /// How long the runner watches for something a peer must *not* send
    /// (a second delivery, a downgrade) before it judges that it did not.
    /// Longer is stricter; 1.5 s by default. Library only: the command
    /// line uses the default. Before it judges the last such push, the
    /// broker target also waits until the broker's status (API-10)
    /// counts no pending delivery, so a late delivery is seen.
    pub quiet: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            only: Vec::new(),
            skip: Vec::new(),
            timeout: Duration::from_secs(15),
            quiet: Duration::from_millis(1500),
        }
    }
}

impl Config {
    /// Whether the check named `name` runs: it is under an `--only` prefix
    /// (or there is none) and under no `--skip` prefix.
    ///
    /// Prefixes match whole segments: `cd/signature` selects
    /// `cd/signature/stale`, not `cd/signatures`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_conformance::Config;
    ///
    /// let config = Config { only: vec!["cd/signature".into()], skip: vec!["cd/signature/stale".into()], ..Config::default() };
    /// assert!(config.selects("cd/signature/bad"));
    /// assert!(!config.selects("cd/signature/stale"));
    /// assert!(!config.selects("cd/body/malformed"));
    /// ```
    pub fn selects(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| under(name, p))) && !self.skip.iter().any(|p| under(name, p))
    }
}

fn under(name: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// A duration that is not of the form `<number><unit>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected a whole number with a unit ms, s, m or h (e.g. 30s, 5m)")]
pub struct DurationError {
    input: String,
}

/// Parse a duration as the command line writes it: `500ms`, `30s`, `5m`,
/// `2h`, or a bare number of seconds.
///
/// # Errors
///
/// [`DurationError`] for anything else.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tagcast_conformance::parse_duration;
///
/// assert_eq!(parse_duration("5m")?, Duration::from_secs(300));
/// assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
/// assert!(parse_duration("5 minutes").is_err());
/// # Ok::<(), tagcast_conformance::DurationError>(())
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let split = input.find(|c: char| !c.is_ascii_digit()).unwrap_or(input.len());
    let (digits, unit) = input.split_at(split);
    if digits.is_empty() {
        return Err(error());
    }
    let value: u64 = digits.parse().map_err(|_| error())?;
    let millis = match unit {
        "ms" => Some(value),
        "" | "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        _ => None,
    };
    millis.map(Duration::from_millis).ok_or_else(error)
}
