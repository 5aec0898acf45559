//! Kafka's rules for topic names, checked before a record reaches librdkafka: a name the
//! broker would refuse (or librdkafka would take for a passing error, as it does a NUL byte)
//! is a permanent failure of that record, known at once.

/// The longest topic name Kafka accepts.
pub const MAX_LEN: usize = 249;

/// How many topic names a table kept per topic (the router's allowed topics, the sink's topic
/// handles) holds before it starts over: a template can name topics without bound.
pub const REMEMBERED: usize = 4096;

/// Whether `topic` is a name Kafka accepts; if not, why.
pub fn check(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        Err("a topic name cannot be empty")
    } else if topic == "." || topic == ".." {
        Err("`.` and `..` are not topic names")
    } else if topic.starts_with("__") {
        Err("names starting with `__` are Kafka's own (__consumer_offsets, __transaction_state)")
    } else if topic.len() > MAX_LEN {
        Err("a topic name has at most 249 characters")
    } else if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("a topic name has only ASCII letters, digits, `.`, `_` and `-`")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_rules() {
        for good in ["logs", "logs.sshd", "a_b-C.9", "_schemas", &"x".repeat(249)] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "a\0b",
            "../../x",
            "é",
            "a/b",
            "__consumer_offsets",
            &"x".repeat(250),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
