//! Sorting delivery errors: those that may pass (retry later, spool) and those that would
//! repeat forever (dead-letter at once).

use rdkafka::types::RDKafkaErrorCode::{self, *};

use crate::failed::Kind;

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
            | InvalidArgument,
        ) => Kind::Permanent,
        _ => Kind::Passing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_errors() {
        assert_eq!(classify(Some(MessageSizeTooLarge)), Kind::Permanent);
        assert_eq!(classify(Some(TopicAuthorizationFailed)), Kind::Permanent);
        assert_eq!(classify(Some(MessageTimedOut)), Kind::Passing);
        assert_eq!(classify(Some(PurgeQueue)), Kind::Passing);
        assert_eq!(classify(Some(AllBrokersDown)), Kind::Passing);
        assert_eq!(classify(None), Kind::Passing);
    }
}
