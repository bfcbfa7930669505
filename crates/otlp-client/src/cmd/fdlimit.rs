//! The agent's file descriptors: raise the soft `RLIMIT_NOFILE` to the hard
//! limit at start (what nginx, the Collector and most servers do), then cap
//! the receivers' connection limit to what the descriptors left can hold,
//! saying so once, instead of finding out through EMFILE under load.

/// Descriptors kept for everything but receiver connections: stdio, epoll,
/// the admin server's connections, the disk queue's segment files, the
/// upstream connections, the log file.
const RESERVED: u64 = 128;

/// The smallest per-receiver connection limit a cap goes down to.
const MIN_CONNECTIONS: usize = 16;

/// Raises the soft descriptor limit to the hard one where allowed and returns
/// the connection limit each of `receivers` receivers gets: `wanted`, or less
/// when the descriptor limit cannot hold `receivers * wanted` connections
/// plus [`RESERVED`] and `admin` admin connections.
pub(crate) fn fit_connections(wanted: usize, receivers: usize, admin: usize) -> usize {
    let Some(soft) = raise_soft_limit() else {
        return wanted;
    };
    let Some(fits) = connections_that_fit(soft, receivers, admin) else {
        return wanted;
    };
    if fits >= wanted {
        return wanted;
    }
    let capped = fits.max(MIN_CONNECTIONS);
    let needed = u64::try_from(wanted.saturating_mul(receivers).saturating_add(admin))
        .unwrap_or(u64::MAX)
        .saturating_add(RESERVED);
    tracing::warn!(
        descriptor_limit = soft,
        max_connections = capped,
        wanted,
        "the descriptor limit (RLIMIT_NOFILE {soft}) cannot hold {wanted} connections per receiver: capped each receiver at {capped} connections. Raise the limit to at least {needed} (`ulimit -n {needed}`, systemd LimitNOFILE={needed}) to accept {wanted}"
    );
    capped
}

/// Connections per receiver that `soft` descriptors hold; `None` for "no
/// limit worth applying".
fn connections_that_fit(soft: u64, receivers: usize, admin: usize) -> Option<usize> {
    let receivers = u64::try_from(receivers.max(1)).ok()?;
    let admin = u64::try_from(admin).ok()?;
    let left = soft.saturating_sub(RESERVED).saturating_sub(admin);
    usize::try_from(left / receivers).ok()
}

#[cfg(unix)]
fn raise_soft_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let soft = before.current?;
    let Some(hard) = before.maximum else {
        // An unlimited hard limit: leave the soft one (raising it to
        // "unlimited" is refused by Linux, and it is an operator's choice).
        return Some(soft);
    };
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => {
            tracing::info!(
                from = soft,
                to = hard,
                "raised the soft descriptor limit (RLIMIT_NOFILE) to the hard limit"
            );
            Some(hard)
        }
        Err(e) => {
            tracing::debug!(error = %e, soft, hard, "could not raise the soft descriptor limit");
            Some(soft)
        }
    }
}

#[cfg(not(unix))]
fn raise_soft_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connections_that_fit_leave_the_reserve_and_the_admin_server() {
        assert_eq!(connections_that_fit(300, 2, 64), Some(54));
        assert_eq!(connections_that_fit(100, 2, 64), Some(0));
        assert_eq!(connections_that_fit(20_000, 2, 64), Some(9904));
        assert_eq!(connections_that_fit(300, 0, 0), Some(172));
    }
}
