//! The record decision, case by case.
use super::*;

/// A router that answers as told.
struct Fake {
    answer: Result<(), Problem>,
    timestamp: Option<i64>,
    fallback: bool,
    routed: usize,
    forgotten: usize,
}

impl Fake {
    fn ok() -> Fake {
        Fake {
            answer: Ok(()),
            timestamp: None,
            fallback: true,
            routed: 0,
            forgotten: 0,
        }
    }
    fn failing(p: Problem, fallback: bool) -> Fake {
        Fake {
            answer: Err(p),
            timestamp: None,
            fallback,
            routed: 0,
            forgotten: 0,
        }
    }
}

impl Route for Fake {
    fn route(&mut self, _: &[u8]) -> Result<(), Problem> {
        self.routed += 1;
        self.answer.clone()
    }
    fn forget(&mut self) {
        self.forgotten += 1;
    }
    fn can_fall_back(&self) -> bool {
        self.fallback
    }
    fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

const AT: Position = Position {
    line: 7,
    offset: 99,
    file: None,
};

fn policy(on_error: OnError) -> Policy {
    Policy {
        format: Format::Ndjson,
        on_error,
        max_record_size: 10,
        quiet: false,
    }
}

fn malformed(problem: Problem, hint: bool) -> Reason {
    Reason::Malformed {
        at: AT,
        problem,
        hint,
    }
}

#[test]
fn a_good_record_is_sent() {
    let mut r = Fake::ok();
    let d = decide(
        Piece::Record(4),
        b"{}\n",
        AT,
        true,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Send);
    assert_eq!(r.routed, 1);
    assert!(!d.malformed());
    assert_eq!(d.report(&policy(OnError::Exit)), None);
}

#[test]
fn delimiters_are_skipped_without_routing() {
    let mut r = Fake::ok();
    let d = decide(
        Piece::Skip(1),
        b"\n",
        AT,
        true,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Skip);
    assert_eq!(r.routed, 0);
}

#[test]
fn a_record_over_the_limit_fails_whatever_the_mode_and_is_not_routed() {
    for mode in [
        OnError::FallbackToString,
        OnError::SilentlyDropMessage,
        OnError::Exit,
    ] {
        let mut r = Fake::ok();
        let d = decide(
            Piece::Record(11),
            b"01234567890",
            AT,
            true,
            &policy(mode),
            &mut r,
        );
        let too_large = Reason::TooLarge {
            at: AT,
            size: 11,
            limit: 10,
            cut: false,
        };
        assert_eq!(d, Decision::Fail(too_large.clone()));
        assert_eq!((r.routed, r.forgotten), (0, 1));
        assert!(!d.malformed());
        assert_eq!(d.report(&policy(mode)), Some(&too_large));
    }
}

#[test]
fn a_record_at_the_limit_is_sent() {
    let mut r = Fake::ok();
    let d = decide(
        Piece::Record(10),
        b"0123456789",
        AT,
        true,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Send);
}

#[test]
fn fallback_to_string_sends_a_malformed_record_raw() {
    let mut r = Fake::failing(Problem::InvalidJson("x".into()), true);
    let p = policy(OnError::FallbackToString);
    let d = decide(Piece::Record(5), b"{bad}", AT, false, &p, &mut r);
    let reason = malformed(Problem::InvalidJson("x".into()), false);
    assert_eq!(d, Decision::SendAsString(reason.clone()));
    assert!(d.malformed());
    assert_eq!(d.report(&p), Some(&reason));
    assert_eq!(d.report(&policy(OnError::SilentlyFallbackToString)), None);
}

#[test]
fn fallback_without_a_topic_fails_the_record() {
    let mut r = Fake::failing(Problem::MissingField("HOST".into()), false);
    let d = decide(
        Piece::Record(2),
        b"{}",
        AT,
        false,
        &policy(OnError::FallbackToString),
        &mut r,
    );
    assert_eq!(
        d,
        Decision::Fail(Reason::NoFallbackTopic {
            at: AT,
            problem: Problem::MissingField("HOST".into())
        })
    );
    assert!(d.malformed());
}

#[test]
fn drop_modes_drop_and_only_the_loud_one_reports() {
    for (mode, reported) in [
        (OnError::DropMessage, true),
        (OnError::SilentlyDropMessage, false),
    ] {
        let mut r = Fake::failing(Problem::BadTimestamp, true);
        let d = decide(Piece::Record(2), b"{}", AT, false, &policy(mode), &mut r);
        assert_eq!(d, Decision::Drop(malformed(Problem::BadTimestamp, false)));
        assert_eq!(d.report(&policy(mode)).is_some(), reported);
    }
}

#[test]
fn exit_mode_stops() {
    let mut r = Fake::failing(Problem::BadTimestamp, true);
    let d = decide(
        Piece::Record(2),
        b"{}",
        AT,
        false,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Stop(malformed(Problem::BadTimestamp, false)));
    assert!(d.malformed());
}

#[test]
fn a_framing_error_is_malformed_without_routing() {
    let mut r = Fake::ok();
    let d = decide(
        Piece::Malformed(3, "unbalanced"),
        b"}}}",
        AT,
        false,
        &policy(OnError::DropMessage),
        &mut r,
    );
    assert_eq!(
        d,
        Decision::Drop(malformed(Problem::Framing("unbalanced"), false))
    );
    assert_eq!((r.routed, r.forgotten), (0, 1));
}

#[test]
fn the_plain_text_hint_is_given_once_and_only_for_text() {
    let p = policy(OnError::DropMessage);
    let mut r = Fake::failing(Problem::InvalidJson("x".into()), true);
    let hinted = |d: Decision| matches!(d, Decision::Drop(Reason::Malformed { hint: true, .. }));
    assert!(hinted(decide(
        Piece::Record(5),
        b"hello",
        AT,
        true,
        &p,
        &mut r
    )));
    assert!(!hinted(decide(
        Piece::Record(5),
        b"hello",
        AT,
        false,
        &p,
        &mut r
    )));
    assert!(!hinted(decide(
        Piece::Record(5),
        b" {x}",
        AT,
        true,
        &p,
        &mut r
    )));
    let lines = Policy {
        format: Format::Lines,
        ..p
    };
    assert!(!hinted(decide(
        Piece::Record(5),
        b"hello",
        AT,
        true,
        &lines,
        &mut r
    )));
}

#[test]
fn quiet_reports_nothing() {
    let quiet = Policy {
        quiet: true,
        ..policy(OnError::DropMessage)
    };
    let d = Decision::Fail(Reason::TooLarge {
        at: AT,
        size: 11,
        limit: 10,
        cut: false,
    });
    assert_eq!(d.report(&quiet), None);
    let d = Decision::Drop(malformed(Problem::BadTimestamp, false));
    assert_eq!(d.report(&quiet), None);
}

#[test]
fn an_invalid_topic_fails_whatever_the_mode() {
    let invalid = Problem::InvalidTopic {
        topic: "a\0b".into(),
        why: "bad",
    };
    for mode in [
        OnError::FallbackToString,
        OnError::SilentlyDropMessage,
        OnError::Exit,
    ] {
        let mut r = Fake::failing(invalid.clone(), true);
        let d = decide(Piece::Record(2), b"{}", AT, true, &policy(mode), &mut r);
        assert_eq!(d, Decision::Fail(malformed(invalid.clone(), false)));
        assert!(d.malformed());
    }
}

#[test]
fn a_record_cut_at_the_limit_fails_marked_as_cut_and_its_tail_is_skipped() {
    let mut r = Fake::ok();
    let d = decide(
        Piece::Cut(10),
        b"0123456789",
        AT,
        true,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(
        d,
        Decision::Fail(Reason::TooLarge {
            at: AT,
            size: 10,
            limit: 10,
            cut: true
        })
    );
    let Decision::Fail(reason) = &d else {
        unreachable!()
    };
    assert!(reason.to_string().contains("cut at 10 bytes"));
    assert_eq!(r.routed, 0);
    let d = decide(
        Piece::Tail(5),
        b"abcde",
        AT,
        true,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Skip);
}

#[test]
fn a_timestamp_no_broker_takes_is_restamped_under_fallback_and_refused_otherwise() {
    let year_2999 = 32_503_680_000_000;
    for ts in [year_2999, -5] {
        let bad = malformed(Problem::TimestampOutOfRange(ts), false);
        let mut r = Fake {
            timestamp: Some(ts),
            ..Fake::ok()
        };
        let decide_with = |on_error, r: &mut Fake| {
            decide(Piece::Record(4), b"{}\n", AT, false, &policy(on_error), r)
        };
        assert_eq!(
            decide_with(OnError::FallbackToString, &mut r),
            Decision::Restamp(bad.clone())
        );
        assert_eq!(
            decide_with(OnError::DropMessage, &mut r),
            Decision::Drop(bad.clone())
        );
        assert_eq!(
            decide_with(OnError::Exit, &mut r),
            Decision::Stop(bad.clone())
        );
        assert!(bad.to_string().contains(&ts.to_string()));
    }
    let mut r = Fake {
        timestamp: Some(1_795_651_200_000),
        ..Fake::ok()
    };
    let d = decide(
        Piece::Record(4),
        b"{}\n",
        AT,
        false,
        &policy(OnError::Exit),
        &mut r,
    );
    assert_eq!(d, Decision::Send);
}
