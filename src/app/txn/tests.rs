//! `next_step`, case by case.
use super::*;

const SEC: Duration = Duration::from_secs(1);

fn open() -> Seen {
    Seen {
        open: true,
        ..Seen::default()
    }
}

#[test]
fn nothing_to_do_without_an_open_transaction() {
    for mode in [Mode::Atomic, Mode::ExactlyOnce] {
        let s = Seen {
            input_done: true,
            failed: true,
            ..Seen::default()
        };
        assert_eq!(next_step(mode, SEC, s), Step::Nothing);
    }
}

#[test]
fn a_batch_commits_only_at_the_end_of_input() {
    let long = Seen {
        open_for: 100 * SEC,
        ..open()
    };
    assert_eq!(next_step(Mode::Atomic, SEC, long), Step::Nothing);
    let done = Seen {
        input_done: true,
        ..open()
    };
    assert_eq!(next_step(Mode::Atomic, SEC, done), Step::Commit);
}

#[test]
fn a_batch_aborts_on_a_stop_or_a_failure_even_at_the_end() {
    for s in [
        Seen {
            stopping: true,
            input_done: true,
            ..open()
        },
        Seen {
            failed: true,
            input_done: true,
            ..open()
        },
    ] {
        assert_eq!(next_step(Mode::Atomic, SEC, s), Step::Abort);
    }
}

#[test]
fn a_stream_commits_every_interval_and_at_the_end() {
    let s = Seen {
        open_for: SEC / 2,
        ..open()
    };
    assert_eq!(next_step(Mode::ExactlyOnce, SEC, s), Step::Nothing);
    let s = Seen {
        open_for: SEC,
        ..open()
    };
    assert_eq!(next_step(Mode::ExactlyOnce, SEC, s), Step::Commit);
    let s = Seen {
        input_done: true,
        ..open()
    };
    assert_eq!(next_step(Mode::ExactlyOnce, SEC, s), Step::Commit);
}

#[test]
fn a_stream_commits_what_it_has_when_stopped_and_aborts_what_failed() {
    let s = Seen {
        stopping: true,
        open_for: 2 * SEC,
        ..open()
    };
    assert_eq!(next_step(Mode::ExactlyOnce, SEC, s), Step::Commit);
    let s = Seen {
        failed: true,
        ..open()
    };
    assert_eq!(next_step(Mode::ExactlyOnce, SEC, s), Step::Abort);
}
