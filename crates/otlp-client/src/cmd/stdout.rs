//! Writing command output to stdout without ever panicking on a closed one.
//!
//! `println!` panics when stdout is gone (`otlp-client send … | head -1`:
//! "failed printing to stdout: Broken pipe", exit 101). The commands print
//! through [`outln!`] instead: once a write fails, the rest of the
//! output is discarded and the command finishes its work and exits with its
//! usual code (a reader that went away changes nothing about what was sent or
//! found). A broken pipe is silent; another write error (a full disk behind a
//! redirection) is reported once on stderr.
//!
//! SIGPIPE stays ignored (Rust's default), so no command, least of all the
//! agent, can be killed by a peer closing a pipe or a socket.
//! [`exit_quietly_on_broken_stdout`] is the net under code that still uses
//! `println!`.

use std::{
    fmt,
    io::{self, Write},
    sync::atomic::{AtomicBool, Ordering},
};

/// Set once a write to stdout failed: later output is discarded.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes formatted output to stdout; see the module docs for a closed stdout.
pub(crate) fn write_fmt(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush())
        && !CLOSED.swap(true, Ordering::Relaxed)
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("otlp-client: cannot write to stdout ({e}); the rest of the output is lost");
    }
}

/// `println!` that never panics: see [`write_fmt`].
macro_rules! outln {
    () => {
        $crate::cmd::stdout::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cmd::stdout::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;

/// The std message of a `println!` that met a closed stdout.
const STD_BROKEN_PIPE: &str = "failed printing to stdout: Broken pipe";

/// Installs a panic hook that turns `println!`'s panic on a closed stdout
/// into a quiet exit with code 0, for commands that still print with
/// `println!` (`run` prints one line after its shutdown, `sink` its
/// addresses and counts; both exit 0 there). Every other panic goes to the
/// previous hook unchanged.
pub(crate) fn exit_quietly_on_broken_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .payload_as_str()
            .is_some_and(|m| m.starts_with(STD_BROKEN_PIPE))
        {
            std::process::exit(i32::from(crate::cli::EXIT_OK));
        }
        previous(info);
    }));
}
