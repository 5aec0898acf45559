//! What becomes of one framed record: sent, sent as a string, failed, dropped, or the end of
//! reading. Pure: routing fills the router's buffers and does no I/O; the caller acts on the
//! decision.

use crate::input::Piece;
use crate::message::Origin;
use crate::options::{Format, OnError};
use crate::reason::{Position, Problem, Reason};
use crate::route::Router;

/// The flags that decide about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub format: Format,
    pub on_error: OnError,
    pub max_record_size: u64,
    pub quiet: bool,
}

/// Routing as the decision sees it.
pub trait Route {
    /// Works out where a record goes, or what is wrong with it.
    fn route(&mut self, rec: &[u8]) -> Result<(), Problem>;
    /// Forgets the last record, for input that never reached `route`.
    fn forget(&mut self);
    /// The timestamp of the record `route` worked out, if it has its own.
    fn timestamp(&self) -> Option<i64>;
    /// Whether fallback-to-string has a topic for the record last seen.
    fn can_fall_back(&self) -> bool;
}

impl Route for Router {
    fn route(&mut self, rec: &[u8]) -> Result<(), Problem> {
        Router::route(self, rec)
    }
    fn forget(&mut self) {
        Router::forget(self);
    }
    fn timestamp(&self) -> Option<i64> {
        Router::timestamp(self)
    }
    fn can_fall_back(&self) -> bool {
        Router::can_fall_back(self)
    }
}

/// What to do with one piece of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Delimiters or blank space: nothing to send.
    Skip,
    /// Send the record as routed.
    Send,
    /// Malformed: send its raw bytes, with the reason in a `kpipe.error` header.
    SendAsString(Reason),
    /// Its timestamp is one no broker takes: send it with the time it was read instead, with
    /// the reason (naming the original) in a `kpipe.error` header.
    Restamp(Reason),
    /// Cannot be sent at all: to the dead-letter file, or counted as not delivered.
    Fail(Reason),
    /// Malformed, and dropped as `--on-error` asks.
    Drop(Reason),
    /// Malformed under `--on-error exit`: deliver what came before, read nothing more.
    Stop(Reason),
}

impl Decision {
    /// The reason to show on stderr, if this decision is reported.
    pub fn report(&self, policy: &Policy) -> Option<&Reason> {
        if policy.quiet {
            return None;
        }
        match self {
            Decision::Skip | Decision::Send | Decision::Stop(_) => None,
            Decision::Fail(r @ Reason::TooLarge { .. }) => Some(r),
            Decision::SendAsString(r)
            | Decision::Restamp(r)
            | Decision::Fail(r)
            | Decision::Drop(r) => policy.on_error.reports().then_some(r),
        }
    }

    /// Whether the record counts as malformed.
    pub fn malformed(&self) -> bool {
        match self {
            Decision::Skip | Decision::Send => false,
            Decision::Fail(r) => !matches!(r, Reason::TooLarge { .. }),
            Decision::SendAsString(_)
            | Decision::Restamp(_)
            | Decision::Drop(_)
            | Decision::Stop(_) => true,
        }
    }
}

/// Decides about the piece `bytes` at `at`. `first_malformed`: no record was malformed before
/// (the "is the input JSON?" hint is given once).
pub fn decide(
    piece: Piece,
    bytes: &[u8],
    at: Position,
    first_malformed: bool,
    policy: &Policy,
    router: &mut impl Route,
) -> Decision {
    let framing = match piece {
        Piece::Skip(_) | Piece::Empty(_) | Piece::Tail(_) => return Decision::Skip,
        Piece::Cut(n) => {
            router.forget();
            return Decision::Fail(Reason::TooLarge {
                at,
                size: n as u64,
                limit: policy.max_record_size,
                cut: true,
            });
        }
        Piece::Malformed(_, why) => Some(Problem::Framing(why)),
        Piece::Record(_) => None,
    };
    let size = bytes.len() as u64;
    if size > policy.max_record_size {
        router.forget();
        return Decision::Fail(Reason::TooLarge {
            at,
            size,
            limit: policy.max_record_size,
            cut: false,
        });
    }
    let problem = match framing {
        Some(p) => {
            router.forget();
            p
        }
        None => match router.route(bytes) {
            Ok(()) => match router.timestamp().filter(|&ts| !Origin::carries(ts)) {
                None => return Decision::Send,
                Some(ts) => Problem::TimestampOutOfRange(ts),
            },
            Err(p) => p,
        },
    };
    if let Problem::InvalidTopic { .. } = problem {
        // Whatever --on-error says, a record the broker would refuse is kept, not sent.
        return Decision::Fail(Reason::Malformed {
            at,
            problem,
            hint: false,
        });
    }
    // Only the time is wrong with it: the record itself can go.
    let restamp = matches!(problem, Problem::TimestampOutOfRange(_));
    let reason = Reason::Malformed {
        at,
        problem,
        hint: first_malformed && looks_like_text(policy.format, bytes),
    };
    match policy.on_error {
        OnError::FallbackToString | OnError::SilentlyFallbackToString if restamp => {
            Decision::Restamp(reason)
        }
        OnError::FallbackToString | OnError::SilentlyFallbackToString => {
            if router.can_fall_back() {
                Decision::SendAsString(reason)
            } else if let Reason::Malformed { at, problem, .. } = reason {
                Decision::Fail(Reason::NoFallbackTopic { at, problem })
            } else {
                Decision::Fail(reason)
            }
        }
        OnError::DropMessage | OnError::SilentlyDropMessage => Decision::Drop(reason),
        OnError::Exit => Decision::Stop(reason),
    }
}

/// Whether a record given as JSON looks like plain text instead.
fn looks_like_text(format: Format, bytes: &[u8]) -> bool {
    matches!(format, Format::Ndjson | Format::Json)
        && !matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[' | b'"')
        )
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
