//! Why a record was not delivered as it came: typed, so that code decides by matching (which
//! outlet, which hint) and only messages turn it into text.

use std::fmt;

use rdkafka::types::RDKafkaErrorCode::{self, *};

/// Whether a failure could pass (broker down, timeout) or would repeat (too large, no such topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Passing,
    Permanent,
}

/// Where a record starts in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset from the start of the input.
    pub offset: u64,
    /// The file the record is in, when files were named on the command line (line and byte
    /// count from its start).
    pub file: Option<&'static str>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "line {}, byte {}", self.line, self.offset)
    }
}

/// Why a record is not valid for its format or its routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The framer could not cut a record of this format.
    Framing(&'static str),
    /// Not one JSON value (or not UTF-8).
    InvalidJson(String),
    /// A template names a field the record lacks (and no --fallback-topic is given).
    MissingField(String),
    /// `--timestamp-field` is absent or not a time.
    BadTimestamp,
    /// The record's own timestamp (ms) is before 1970 or after 2109: no broker takes it.
    TimestampOutOfRange(i64),
    /// An envelope line that does not say what to send, with what is wrong.
    Envelope(String),
    /// The record's topic is not a name Kafka accepts.
    InvalidTopic { topic: String, why: &'static str },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Framing(why) => f.write_str(why),
            Problem::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            Problem::MissingField(name) => write!(f, "missing field `{name}`"),
            Problem::BadTimestamp => f.write_str("the timestamp field is missing or not a time"),
            Problem::TimestampOutOfRange(ts) => write!(
                f,
                "timestamp {ts} is outside 1970 to 2109, which no broker takes by default"
            ),
            Problem::Envelope(e) => f.write_str(e),
            Problem::InvalidTopic { topic, why } => {
                write!(f, "invalid topic {topic:?}: {why}")
            }
        }
    }
}

/// Why a record went to the spool, the dead-letter file or the lost count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Malformed; `hint` adds the "is the input JSON?" advice.
    Malformed {
        at: Position,
        problem: Problem,
        hint: bool,
    },
    /// Malformed, and fallback-to-string has no topic to send it to.
    NoFallbackTopic { at: Position, problem: Problem },
    /// Larger than `--max-record-size`; `cut`: only its first `size` bytes were kept.
    TooLarge {
        at: Position,
        size: u64,
        limit: u64,
        cut: bool,
    },
    /// The producer or the broker refused or gave up on it.
    Kafka {
        code: Option<RDKafkaErrorCode>,
        text: String,
    },
    /// kpipe was stopped while the producer's queue was full.
    Stopped,
    /// The producer hit a fatal error.
    Fatal(String),
    /// The `--atomic` transaction the record belonged to was aborted.
    Aborted(String),
    /// The record could not be written where it had to be first: `--dry-run`'s stdout, or
    /// the `--exactly-once` log.
    Unwritten(String),
    /// A spool file line that is not an envelope (a truncated write, or not kpipe's).
    CorruptSpool {
        file: String,
        line: u64,
        problem: Problem,
    },
}

impl Reason {
    /// Whether sending the record again later could succeed.
    pub fn kind(&self) -> Kind {
        match self {
            Reason::Malformed { .. }
            | Reason::NoFallbackTopic { .. }
            | Reason::TooLarge { .. }
            | Reason::CorruptSpool { .. } => Kind::Permanent,
            Reason::Kafka { code, .. } => classify(*code),
            Reason::Stopped | Reason::Fatal(_) | Reason::Aborted(_) | Reason::Unwritten(_) => {
                Kind::Passing
            }
        }
    }

    /// A short name for the kind of reason, for a metric's label: librdkafka's name for a
    /// Kafka error, else the reason's own.
    pub fn class(&self) -> String {
        match self {
            Reason::Malformed { .. } => "Malformed".into(),
            Reason::NoFallbackTopic { .. } => "NoFallbackTopic".into(),
            Reason::TooLarge { .. } => "TooLarge".into(),
            Reason::Kafka { code: Some(c), .. } => format!("{c:?}"),
            Reason::Kafka { code: None, .. } => "Kafka".into(),
            Reason::Stopped => "Stopped".into(),
            Reason::Fatal(_) => "Fatal".into(),
            Reason::Aborted(_) => "Aborted".into(),
            Reason::Unwritten(_) => "Unwritten".into(),
            Reason::CorruptSpool { .. } => "CorruptSpool".into(),
        }
    }

    /// Whether librdkafka purged the record from an aborted transaction, rather than anything
    /// being wrong with it or the brokers.
    pub fn purged(&self) -> bool {
        matches!(
            self,
            Reason::Kafka {
                code: Some(PurgeQueue | PurgeInflight),
                ..
            }
        )
    }

    /// Advice for the exit message, chosen by what went wrong.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Reason::Kafka {
                code: Some(UnknownTopic | UnknownTopicOrPartition),
                ..
            } => Some(
                "create the topic first, or let the broker create it (auto.create.topics.enable=true)",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Malformed { at, problem, hint } => {
                write!(f, "{at}: {problem}")?;
                if *hint {
                    f.write_str(" (is the input JSON? for plain text use -f lines)")?;
                }
                Ok(())
            }
            Reason::NoFallbackTopic { at, problem } => write!(
                f,
                "{at}: {problem}; no topic to send it to (give --fallback-topic)"
            ),
            Reason::TooLarge {
                at,
                limit,
                cut: true,
                ..
            } => write!(
                f,
                "{at}: record larger than --max-record-size {limit}; cut at {limit} bytes, the rest dropped"
            ),
            Reason::TooLarge { at, size, limit, .. } => write!(
                f,
                "{at}: record of {size} bytes is larger than --max-record-size {limit}"
            ),
            Reason::Kafka { text, .. } => f.write_str(text),
            Reason::Stopped => f.write_str("kpipe stopped before the record could be queued"),
            Reason::Fatal(text) => write!(f, "the producer hit a fatal error: {text}"),
            Reason::Aborted(why) => write!(f, "its transaction was aborted: {why}"),
            Reason::Unwritten(why) => f.write_str(why),
            Reason::CorruptSpool {
                file,
                line,
                problem,
            } => write!(f, "{file}, line {line}: not an envelope ({problem})"),
        }
    }
}

/// Why the cluster would not let kpipe in: no use waiting for `--delivery-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The TLS handshake failed (a certificate not verified, a listener that is not TLS).
    Tls,
    /// The SASL credentials were refused.
    Authentication,
    /// The listener speaks another protocol: TLS to a plaintext listener or the reverse.
    Protocol,
    /// The issuer of kpipe's credentials (the OAuth token endpoint, the Kerberos KDC) did not
    /// answer: an outage, not credentials to change.
    IssuerDown,
}

impl Refused {
    /// The refusal an error event from librdkafka (its code and text) means, if any.
    pub fn of(code: Option<RDKafkaErrorCode>, text: &str) -> Option<Refused> {
        match code? {
            SSL => Some(Refused::Tls),
            Authentication | SaslAuthenticationFailed => Some(Refused::Authentication),
            // A broker that wants a client certificate and gets none (or one it does not trust)
            // sends a TLS alert after the handshake: librdkafka reports it as a transport
            // failure with no code of its own, only OpenSSL's words for the alert.
            BrokerTransportFailure if text.contains("ssl/tls alert") => Some(Refused::Tls),
            // librdkafka's own guesses, from a handshake cut short or an answer that is not
            // Kafka's: kpipe speaks to brokers of 0.11 and later, so the guess is right.
            BrokerTransportFailure
                if text.contains("connecting to a PLAINTEXT broker listener")
                    || text.contains("connecting to a SSL listener") =>
            {
                Some(Refused::Protocol)
            }
            _ => None,
        }
    }

    /// What a failure to get an OAuth token means, from the HTTP status of the token
    /// endpoint's last answer (`None`: it answered, but not with a usable token; -1: no
    /// answer at all). Statuses that librdkafka retries are the issuer's trouble, not kpipe's.
    pub fn of_token_failure(status: Option<i32>) -> Refused {
        match status {
            Some(-1 | 408 | 425 | 429 | 500..=599) => Refused::IssuerDown,
            _ => Refused::Authentication,
        }
    }

    /// Whether an error event is librdkafka's failure to get an OAuth token.
    pub fn is_token_failure(text: &str) -> bool {
        text.starts_with("Failed to acquire SASL OAUTHBEARER token")
    }

    /// The HTTP status (-1 for no answer) of a failed token request, from the line librdkafka
    /// logs before it raises the error: `Failed to retrieve OIDC token from "URL": TEXT (STATUS)`.
    pub fn token_request_status(fac: &str, text: &str) -> Option<i32> {
        if fac != "OIDC" || !text.contains("Failed to retrieve OIDC token") {
            return None;
        }
        let (_, status) = text.trim_end().strip_suffix(')')?.rsplit_once('(')?;
        status.parse().ok()
    }

    /// Whether kinit's complaint tells of a KDC that did not answer rather than of credentials.
    pub fn kdc_down(kinit_complaint: &str) -> bool {
        kinit_complaint.contains("Cannot contact any KDC")
    }

    /// Whether a line librdkafka logged (`fac`, `text`) tells of a broker that closed the
    /// connection while kpipe asked for its ApiVersion, as a TLS listener does with a
    /// plaintext client. (librdkafka means to add that guess to its error, but checks the
    /// format string, "%s", for "Disconnected", so it never does, and it logs a close without
    /// raising an error.)
    pub fn closed_at_hello(fac: &str, text: &str) -> bool {
        // A listener closes; a broker that dies or restarts resets ("reset by peer"), which is
        // an outage to ride out, not a protocol to change.
        fac == "FAIL"
            && text.contains("Disconnected: connection closed by peer")
            && text.contains("in state APIVERSION_QUERY")
    }

    /// What to check.
    pub fn hint(self) -> &'static str {
        match self {
            Refused::Tls => "check --ca (the brokers' certificates must be signed by it and name the host kpipe connects to), that the listener speaks TLS, and --cert and --tls-key if it wants client certificates",
            Refused::Authentication => {
                "check --sasl-mechanism and its credentials: --sasl-username and the password, --kerberos-keytab and --kerberos-principal, or --oauth-client-id and its secret"
            }
            Refused::IssuerDown => {
                "the issuer of kpipe's credentials did not answer: check --oauth-token-url (or the KDC that krb5.conf names) and that it is up"
            }
            Refused::Protocol => {
                "the listener speaks another protocol: give --tls (or --ca) for a TLS listener, none of them for a plaintext one, and check the port"
            }
        }
    }
}

/// Whether a record that failed with `code` could succeed if sent again later.
pub fn classify(code: Option<RDKafkaErrorCode>) -> Kind {
    match code {
        Some(
            MessageSizeTooLarge
            | InvalidMessageSize
            | InvalidMessage
            | InvalidRecord
            | MessageBatchTooLarge
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | InvalidTopic
            | UnknownTopic
            | UnknownTopicOrPartition
            | UnknownPartition
            | PolicyViolation
            | UnsupportedForMessageFormat
            | InvalidRequiredAcks
            | InvalidArgument
            // Refused for what the record is: sending it again cannot help.
            | InvalidTimestamp
            | UnsupportedCompressionType
            // librdkafka's own verdicts on one message.
            | BadMessage
            | InvalidType
            | UnsupportedFeature,
        ) => Kind::Permanent,
        _ => Kind::Passing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Position = Position {
        line: 3,
        offset: 40,
        file: None,
    };

    #[test]
    fn sorts_errors() {
        assert_eq!(classify(Some(MessageSizeTooLarge)), Kind::Permanent);
        assert_eq!(classify(Some(TopicAuthorizationFailed)), Kind::Permanent);
        assert_eq!(classify(Some(InvalidTimestamp)), Kind::Permanent);
        assert_eq!(classify(Some(BadMessage)), Kind::Permanent);
        assert_eq!(classify(Some(UnknownPartition)), Kind::Permanent);
        assert_eq!(classify(Some(NotLeaderForPartition)), Kind::Passing);
        // A leader just elected, its high watermark not caught up yet (the offsets topic's
        // reader asks again).
        assert_eq!(classify(Some(OffsetNotAvailable)), Kind::Passing);
        assert_eq!(classify(Some(RequestTimedOut)), Kind::Passing);
        assert_eq!(classify(Some(MessageTimedOut)), Kind::Passing);
        assert_eq!(classify(Some(PurgeQueue)), Kind::Passing);
        assert_eq!(classify(Some(AllBrokersDown)), Kind::Passing);
        assert_eq!(classify(None), Kind::Passing);
    }

    #[test]
    fn what_a_record_did_wrong_is_permanent_and_what_happened_to_it_passes() {
        let malformed = Reason::Malformed {
            at: AT,
            problem: Problem::BadTimestamp,
            hint: false,
        };
        assert_eq!(malformed.kind(), Kind::Permanent);
        let large = Reason::TooLarge {
            at: AT,
            size: 9,
            limit: 8,
            cut: false,
        };
        assert_eq!(large.kind(), Kind::Permanent);
        assert_eq!(Reason::Stopped.kind(), Kind::Passing);
        assert_eq!(Reason::Fatal("x".into()).kind(), Kind::Passing);
        let timeout = Reason::Kafka {
            code: Some(MessageTimedOut),
            text: "timed out".into(),
        };
        assert_eq!(timeout.kind(), Kind::Passing);
    }

    #[test]
    fn messages_name_the_record() {
        let r = Reason::Malformed {
            at: AT,
            problem: Problem::InvalidJson("expected value".into()),
            hint: true,
        };
        assert_eq!(
            r.to_string(),
            "line 3, byte 40: invalid JSON: expected value (is the input JSON? for plain text use -f lines)"
        );
        let r = Reason::NoFallbackTopic {
            at: AT,
            problem: Problem::MissingField("HOST".into()),
        };
        assert_eq!(
            r.to_string(),
            "line 3, byte 40: missing field `HOST`; no topic to send it to (give --fallback-topic)"
        );
        let r = Reason::TooLarge {
            at: AT,
            size: 3000,
            limit: 100,
            cut: false,
        };
        assert_eq!(
            r.to_string(),
            "line 3, byte 40: record of 3000 bytes is larger than --max-record-size 100"
        );
    }

    #[test]
    fn tls_and_sasl_failures_are_refusals() {
        assert_eq!(Refused::of(Some(SSL), ""), Some(Refused::Tls));
        assert_eq!(
            Refused::of(Some(Authentication), ""),
            Some(Refused::Authentication)
        );
        assert_eq!(
            Refused::of(Some(SaslAuthenticationFailed), ""),
            Some(Refused::Authentication)
        );
        let alert = "Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate";
        assert_eq!(
            Refused::of(Some(BrokerTransportFailure), alert),
            Some(Refused::Tls)
        );
        assert_eq!(
            Refused::of(Some(BrokerTransportFailure), "Connection refused"),
            None
        );
        assert_eq!(Refused::of(Some(AllBrokersDown), ""), None);
        let to_plaintext =
            "SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?";
        assert_eq!(
            Refused::of(Some(BrokerTransportFailure), to_plaintext),
            Some(Refused::Protocol)
        );
        let to_tls = "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10";
        assert_eq!(
            Refused::of(Some(BrokerTransportFailure), to_tls),
            Some(Refused::Protocol)
        );
        assert_eq!(Refused::of(None, ""), None);
        let closed = "127.0.0.1:33425/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 2ms in state APIVERSION_QUERY)";
        assert!(Refused::closed_at_hello("FAIL", closed));
        assert!(!Refused::closed_at_hello("REQTMOUT", closed));
        let reset = "127.0.0.1:49965/bootstrap: Disconnected: connection reset by peer (after 2ms in state APIVERSION_QUERY)";
        assert!(!Refused::closed_at_hello("FAIL", reset));
        let later = "127.0.0.1:9092/1: Disconnected: connection closed by peer: receive 0 after POLLIN (after 60012ms in state UP)";
        assert!(!Refused::closed_at_hello("FAIL", later));
        let refused = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)";
        assert!(!Refused::closed_at_hello("FAIL", refused));
    }

    #[test]
    fn a_token_endpoint_that_does_not_answer_is_down_and_one_that_refuses_is_authentication() {
        let down = r#"[thrd:background]: Failed to retrieve OIDC token from "http://127.0.0.1:1/token": Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server (-1)"#;
        let refused = r#"[thrd:background]: Failed to retrieve OIDC token from "http://127.0.0.1:9/token": {"error":"invalid_client"} (401)"#;
        assert_eq!(Refused::token_request_status("OIDC", down), Some(-1));
        assert_eq!(Refused::token_request_status("OIDC", refused), Some(401));
        assert_eq!(Refused::token_request_status("FAIL", refused), None);
        assert_eq!(Refused::of_token_failure(Some(-1)), Refused::IssuerDown);
        assert_eq!(Refused::of_token_failure(Some(503)), Refused::IssuerDown);
        assert_eq!(
            Refused::of_token_failure(Some(401)),
            Refused::Authentication
        );
        assert_eq!(Refused::of_token_failure(None), Refused::Authentication);
        assert!(Refused::is_token_failure(
            "Failed to acquire SASL OAUTHBEARER token: {\"error\":\"invalid_client\"}"
        ));
        assert!(!Refused::is_token_failure(
            "SASL authentication error: {\"status\":\"invalid_token\"}"
        ));
        assert!(Refused::kdc_down(
            "kinit: Cannot contact any KDC for realm 'KPIPE.TEST' while getting initial credentials"
        ));
        assert!(!Refused::kdc_down(
            "kinit: Keytab contains no suitable keys for kpipe@KPIPE.TEST while getting initial credentials"
        ));
    }

    #[test]
    fn the_unknown_topic_hint_comes_from_the_code_not_the_text() {
        let r = Reason::Kafka {
            code: Some(UnknownTopicOrPartition),
            text: "Broker: Unknown topic or partition".into(),
        };
        assert!(r.hint().is_some_and(|h| h.contains("create the topic")));
        let r = Reason::Kafka {
            code: Some(MessageTimedOut),
            text: "Unknown topic mentioned in passing".into(),
        };
        assert_eq!(r.hint(), None);
    }
}
