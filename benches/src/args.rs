//! A small command-line flag reader for the benchmark binaries (`--flag value`).

use std::{fmt::Display, str::FromStr};

use crate::BenchesError;

/// Reads the value after `flag` and parses it.
///
/// # Errors
///
/// Returns [`BenchesError::Arg`] when the value is missing or does not parse.
pub(crate) fn value<T>(it: &mut impl Iterator<Item = String>, flag: &str) -> Result<T, BenchesError>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = it.next().ok_or_else(|| BenchesError::Arg {
        flag: flag.to_owned(),
        problem: "missing value".to_owned(),
    })?;
    raw.parse().map_err(|e: T::Err| BenchesError::Arg {
        flag: flag.to_owned(),
        problem: format!("'{raw}': {e}"),
    })
}

/// The error for a flag nobody knows.
pub(crate) fn unknown(flag: &str) -> BenchesError {
    BenchesError::Arg {
        flag: flag.to_owned(),
        problem: "unknown flag".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parses_and_reports_missing_or_bad_values() {
        let mut it = ["12".to_owned(), "x".to_owned()].into_iter();
        assert_eq!(value::<u64>(&mut it, "--count").unwrap(), 12);
        let err = value::<u64>(&mut it, "--count").unwrap_err().to_string();
        assert!(err.contains("--count") && err.contains("'x'"), "{err}");
        let err = value::<u64>(&mut it, "--count").unwrap_err().to_string();
        assert!(err.contains("missing value"), "{err}");
    }
}
