//! Unit tests of the fault receiver.

use super::*;

#[test]
fn http_date_formats_known_instants() {
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    // A fraction of a second rounds up, so the date is never before `t`.
    assert_eq!(
        http_date(t + Duration::from_millis(1)),
        "Sun, 06 Nov 1994 08:49:38 GMT"
    );
}

#[test]
fn base64_matches_rfc4648_vectors_without_padding() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg");
    assert_eq!(base64(b"fo"), "Zm8");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn script_steps_advance_by_count_then_accept() {
    let (life, _) = watch::channel(Life {
        generation: 0,
        up: true,
        closed: false,
    });
    let shared = Shared {
        started: Instant::now(),
        state: Mutex::new(State {
            script: Script::accept()
                .then_n(Fault::Unavailable, 2)
                .then_n(Fault::TooLargeAbove(10), 2),
            ..State::default()
        }),
        requests: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        life,
    };
    assert_eq!(shared.next_fault(1), Fault::Unavailable);
    assert_eq!(shared.next_fault(1), Fault::Unavailable);
    assert_eq!(shared.next_fault(100), Fault::TooLargeAbove(10));
    assert_eq!(shared.next_fault(5), Fault::Accept);
    assert_eq!(shared.next_fault(100), Fault::Accept);
}
