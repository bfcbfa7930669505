//! `completions SHELL` and `man`: shell completion scripts and the man page,
//! generated from the same clap definitions that parse the command line, so
//! they never disagree with `--help`.

use std::{io::Write, process::ExitCode};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, EXIT_OK, EXIT_PROBLEM};

/// The binary's name in scripts and on the man page.
const BIN: &str = "otlp-client";

/// `completions bash|zsh|fish|elvish|powershell`: the script on stdout.
pub(crate) fn completions(shell: Shell) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    if shell == Shell::Bash {
        script = fix_bash_state_labels(&script);
    }
    write_stdout(&script, "completions")
}

/// clap_complete's bash script (4.6) spells the state of a subcommand of a
/// hyphenated binary two ways: its dispatch loop arrives at
/// `otlp__client__subcmd__send`, its case arms say
/// `otlp__subcmd__client__subcmd__send`, so no subcommand's flags ever
/// complete (clap-rs/clap#6421). The arms are rewritten to the loop's spelling.
fn fix_bash_state_labels(script: &[u8]) -> Vec<u8> {
    let broken = BIN.replace('-', "__subcmd__");
    let loop_spelling = BIN.replace('-', "__");
    String::from_utf8_lossy(script)
        .replace(&broken, &loop_spelling)
        .into_bytes()
}

/// `man`: the roff man page on stdout (`otlp-client man > otlp-client.1`,
/// `otlp-client man | man -l -`). One page lists every subcommand with its
/// flags, as git's and cargo's single-page overviews do.
pub(crate) fn man() -> ExitCode {
    let command = Cli::command();
    let mut page = Vec::new();
    if let Err(e) = render_man(&command, &mut page) {
        eprintln!("otlp-client man: cannot render the man page: {e}");
        return ExitCode::from(EXIT_PROBLEM);
    }
    write_stdout(&page, "man")
}

/// The page: name, synopsis, description, the top-level options, then one
/// section per subcommand with its own options, then exit status and version.
fn render_man(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let sub = sub.clone().bin_name(format!("{BIN} {name}"));
        writeln!(out, ".SH \"{}\"", format!("{BIN} {name}").to_uppercase())?;
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            writeln!(out, "{}", roff_text(&about.to_string()))?;
        }
        let sub_man = clap_mangen::Man::new(sub);
        // The options of the subcommand, as its own page would show them,
        // without that page's title and name sections.
        let mut section = Vec::new();
        sub_man.render_synopsis_section(&mut section)?;
        sub_man.render_options_section(&mut section)?;
        out.extend(demote_sections(&section));
    }
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    writeln!(out, "{}", roff_text(crate::cli::EXIT_CODES_HELP))?;
    man.render_version_section(out)?;
    Ok(())
}

/// Turns a subcommand page's `.SH` headings into `.SS`, so they nest under
/// that subcommand's section.
fn demote_sections(roff: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(roff)
        .lines()
        .map(|l| match l.strip_prefix(".SH ") {
            Some(rest) => format!(".SS {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect::<String>()
        .into_bytes()
}

/// Escapes text for roff: a leading `.` or `'` would be read as a request,
/// and `\` starts an escape.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else if l.trim().is_empty() {
                ".PP".to_owned()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_stdout(bytes: &[u8], command: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(EXIT_OK),
        // A reader that went away (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("otlp-client {command}: cannot write to stdout: {e}");
            ExitCode::from(EXIT_PROBLEM)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_has_a_section_per_subcommand_and_the_exit_codes() {
        let mut page = Vec::new();
        render_man(&Cli::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        for sub in Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            let heading = format!(".SH \"OTLP-CLIENT {}\"", sub.get_name().to_uppercase());
            assert!(page.contains(&heading), "no {heading} in\n{page}");
        }
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(
            page.contains("\\-\\-shutdown\\-timeout"),
            "run's flags are listed:\n{page}"
        );
    }

    #[test]
    fn roff_text_escapes_requests_and_backslashes() {
        assert_eq!(
            roff_text(".hidden\n'x\na\\b\n\nend"),
            "\\&.hidden\n\\&'x\na\\eb\n.PP\nend"
        );
    }
}
