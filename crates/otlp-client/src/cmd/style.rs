//! Colour for people, plain text for everything else: verdict tags such as
//! `[PASS]` / `[FAIL]` are coloured only when stdout is a terminal and
//! `NO_COLOR` is unset or empty (<https://no-color.org>), so pipes, files and
//! CI logs get exactly the text they always got.

use std::{ffi::OsString, io::IsTerminal};

/// The variable that turns colour off whatever the terminal.
pub(crate) const NO_COLOR: &str = "NO_COLOR";

const RESET: &str = "\x1b[0m";

/// Whether output to stdout is coloured. The one place that reads
/// `NO_COLOR` (a terminal convention, not part of the config).
pub(crate) fn colour_stdout() -> bool {
    should_colour(std::io::stdout().is_terminal(), std::env::var_os(NO_COLOR))
}

/// Colour on a terminal unless `NO_COLOR` holds a non-empty value.
pub(crate) fn should_colour(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Colours each line's leading verdict tag (`[PASS]` green, `[WARN]` yellow,
/// `[FAIL]` red, `[SKIP]` dim) when `colour`; otherwise returns `text` as is.
pub(crate) fn paint_verdicts(text: &str, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let painted = [
            ("[PASS]", "\x1b[32m"),
            ("[WARN]", "\x1b[33m"),
            ("[FAIL]", "\x1b[31m"),
            ("[SKIP]", "\x1b[2m"),
        ]
        .iter()
        .find_map(|(tag, code)| {
            trimmed
                .strip_prefix(tag)
                .map(|rest| format!("{indent}{code}{tag}{RESET}{rest}"))
        });
        out.push_str(painted.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_non_empty_no_color() {
        assert!(should_colour(true, None));
        assert!(should_colour(true, Some(OsString::new())));
        assert!(!should_colour(true, Some(OsString::from("1"))));
        assert!(!should_colour(false, None));
    }

    #[test]
    fn only_leading_verdict_tags_are_painted() {
        let text = "diagnosis of x\n[PASS] dns a\n  [FAIL] tcp b\nsee [PASS] later";
        assert_eq!(paint_verdicts(text, false), text);
        let painted = paint_verdicts(text, true);
        assert!(
            painted.contains("\x1b[32m[PASS]\x1b[0m dns a"),
            "{painted:?}"
        );
        assert!(
            painted.contains("  \x1b[31m[FAIL]\x1b[0m tcp b"),
            "{painted:?}"
        );
        assert!(painted.ends_with("see [PASS] later"), "{painted:?}");
        assert_eq!(painted.lines().count(), 4);
    }
}
