//! The router, format by format: what each record becomes, and what is wrong when it cannot.

use super::*;

fn router(format: Format, rules: Rules) -> Router {
    Router::new(format, &rules).unwrap()
}

fn topic(t: &str) -> Rules<'_> {
    Rules {
        topic: Some(t),
        ..Rules::default()
    }
}

#[test]
fn a_line_goes_to_the_topic_as_it_is() {
    let mut r = router(Format::Lines, topic("logs"));
    r.route(b"hello").unwrap();
    let rec = r.record(b"hello");
    assert_eq!(
        rec,
        Record {
            topic: "logs",
            value: Some(b"hello"),
            ..Record::default()
        }
    );
}

#[test]
fn a_key_delimiter_splits_key_from_value_and_a_line_without_it_has_no_key() {
    let mut r = router(
        Format::Lines,
        Rules {
            key_delimiter: Some(b"::".to_vec()),
            ..topic("t")
        },
    );
    r.route(b"k1::v::1").unwrap();
    let rec = r.record(b"k1::v::1");
    assert_eq!((rec.key, rec.value), (Some(&b"k1"[..]), Some(&b"v::1"[..])));
    r.route(b"plain").unwrap();
    let rec = r.record(b"plain");
    assert_eq!((rec.key, rec.value), (None, Some(&b"plain"[..])));
}

#[test]
fn static_key_headers_and_partition_apply_to_lines() {
    let headers = ["src=web".to_string()];
    let mut r = router(
        Format::Lines,
        Rules {
            key: Some("k"),
            headers: &headers,
            partition: Some(2),
            ..topic("t")
        },
    );
    r.route(b"x").unwrap();
    let rec = r.record(b"x");
    assert_eq!(rec.key, Some(&b"k"[..]));
    assert_eq!(rec.partition, Some(2));
    assert_eq!(rec.headers, vec![("src", Some(&b"web"[..]))]);
}

#[test]
fn ndjson_templates_render_topic_key_and_headers_and_keep_the_line_byte_exact() {
    let headers = ["h=${PID}".to_string()];
    let mut r = router(
        Format::Ndjson,
        Rules {
            key: Some("${HOST}"),
            headers: &headers,
            ..topic("logs.${PROGRAM}")
        },
    );
    let line = br#"{"PROGRAM":"sshd", "HOST":"h1","PID":42}"#;
    r.route(line).unwrap();
    let rec = r.record(line);
    assert_eq!(rec.topic, "logs.sshd");
    assert_eq!(rec.key, Some(&b"h1"[..]));
    assert_eq!(rec.value, Some(&line[..]));
    assert_eq!(rec.headers, vec![("h", Some(&b"42"[..]))]);
}

#[test]
fn a_missing_field_is_a_problem_without_a_fallback_topic() {
    let mut r = router(Format::Ndjson, topic("logs.${PROGRAM}"));
    assert_eq!(
        r.route(br#"{"HOST":"h"}"#),
        Err(Problem::MissingField("PROGRAM".into()))
    );
    assert!(!r.can_fall_back());
}

#[test]
fn a_missing_field_goes_to_the_fallback_topic_with_the_reason() {
    let mut r = router(
        Format::Ndjson,
        Rules {
            fallback_topic: Some("unrouted"),
            ..topic("logs.${PROGRAM}")
        },
    );
    let line = br#"{"HOST":"h"}"#;
    r.route(line).unwrap();
    let rec = r.record(line);
    assert_eq!(rec.topic, "unrouted");
    assert_eq!(
        rec.headers,
        vec![(ERROR_HEADER, Some(&b"missing field `PROGRAM`"[..]))]
    );
}

#[test]
fn invalid_json_is_named() {
    let mut r = router(Format::Ndjson, topic("t"));
    assert!(matches!(r.route(b"{nope"), Err(Problem::InvalidJson(_))));
    assert!(matches!(
        r.route(b"{\"a\":\"\xff\"}"),
        Err(Problem::InvalidJson(e)) if e.contains("UTF-8")
    ));
}

#[test]
fn json_is_compacted() {
    let mut r = router(Format::Json, topic("t"));
    let rec = b"{\n  \"a\": [1, 2]\n}";
    r.route(rec).unwrap();
    assert_eq!(r.record(rec).value, Some(&b"{\"a\":[1,2]}"[..]));
}

#[test]
fn the_timestamp_field_sets_the_time_or_is_a_problem() {
    let mut r = router(
        Format::Ndjson,
        Rules {
            timestamp_field: Some("DATE"),
            ..topic("t")
        },
    );
    let good = br#"{"DATE":"1970-01-01T00:00:01Z"}"#;
    r.route(good).unwrap();
    assert_eq!(r.record(good).timestamp, Some(1000));
    assert_eq!(
        r.route(br#"{"DATE":"2026-+1-01T00:00:00Z"}"#),
        Err(Problem::BadTimestamp)
    );
    assert_eq!(r.route(br#"{}"#), Err(Problem::BadTimestamp));
}

#[test]
fn an_envelope_says_everything() {
    let mut r = router(Format::Envelope, Rules::default());
    let line = br#"{"topic":"t","partition":1,"key":"k","value":{"a":1},"headers":{"h":"x","n":null},"timestamp":5}"#;
    r.route(line).unwrap();
    let rec = r.record(line);
    assert_eq!(
        rec,
        Record {
            topic: "t",
            partition: Some(1),
            key: Some(b"k"),
            value: Some(br#"{"a":1}"#),
            headers: vec![("h", Some(b"x")), ("n", None)],
            timestamp: Some(5),
        }
    );
}

#[test]
fn envelope_bytes_can_be_base64_and_null_is_a_tombstone() {
    let mut r = router(Format::Envelope, topic("dflt"));
    let line = br#"{"key":"/w==","key_encoding":"base64","value":null,"headers":{"b":"/w=="},"headers_encoding":"base64"}"#;
    r.route(line).unwrap();
    let rec = r.record(line);
    assert_eq!(rec.topic, "dflt");
    assert_eq!(rec.key, Some(&b"\xff"[..]));
    assert_eq!(rec.value, None);
    assert_eq!(rec.headers, vec![("b", Some(&b"\xff"[..]))]);
}

#[test]
fn envelope_problems_are_named() {
    let mut r = router(Format::Envelope, Rules::default());
    let problem = |r: &mut Router, line: &[u8]| match r.route(line) {
        Err(Problem::Envelope(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(problem(&mut r, br#"{"topic":"t"}"#).contains("no \"value\""));
    assert!(problem(&mut r, br#"{"value":"v"}"#).contains("names no topic"));
    assert!(problem(
        &mut r,
        br#"{"topic":"t","value":"%","value_encoding":"base64"}"#
    )
    .contains("base64"));
    assert!(
        problem(&mut r, br#"{"topic":"t","value":"v","timestamp":"soon"}"#).contains("timestamp")
    );
    assert!(problem(&mut r, b"[1]").contains("invalid envelope"));
}

#[test]
fn fallback_keeps_the_rendered_topic_or_takes_the_fallback_one() {
    let mut r = router(
        Format::Ndjson,
        Rules {
            timestamp_field: Some("DATE"),
            ..topic("logs.${PROGRAM}")
        },
    );
    let line = br#"{"PROGRAM":"cron"}"#;
    assert_eq!(r.route(line), Err(Problem::BadTimestamp));
    assert!(r.can_fall_back());
    let rec = r.fallback(line, "why").unwrap();
    assert_eq!(rec.topic, "logs.cron");
    assert_eq!(rec.value, Some(&line[..]));
    assert_eq!(rec.headers, vec![(ERROR_HEADER, Some(&b"why"[..]))]);
    r.forget();
    assert!(!r.can_fall_back());
    assert!(r.fallback(line, "why").is_none());
}

#[test]
fn bad_rules_are_refused() {
    assert!(Router::new(Format::Lines, &topic("logs.${PROGRAM}")).is_err());
    assert!(Router::new(Format::Ndjson, &topic("")).is_err());
    let headers = ["novalue".to_string()];
    assert!(Router::new(
        Format::Lines,
        &Rules {
            headers: &headers,
            ..topic("t")
        }
    )
    .is_err());
}

#[test]
fn a_rendered_topic_kafka_would_refuse_is_a_problem_or_goes_to_the_fallback_topic() {
    let mut r = router(Format::Ndjson, topic("logs.${PROGRAM}"));
    for program in ["a\\u0000b", "../../x", "a b"] {
        let line = format!(r#"{{"PROGRAM":"{program}"}}"#);
        assert!(
            matches!(r.route(line.as_bytes()), Err(Problem::InvalidTopic { .. })),
            "{program}"
        );
        assert!(!r.can_fall_back());
    }
    let mut r = router(
        Format::Ndjson,
        Rules {
            fallback_topic: Some("unrouted"),
            ..topic("logs.${PROGRAM}")
        },
    );
    let line = br#"{"PROGRAM":"a b"}"#;
    r.route(line).unwrap();
    assert_eq!(r.record(line).topic, "unrouted");
}

#[test]
fn an_envelope_topic_kafka_would_refuse_is_a_problem() {
    let mut r = router(Format::Envelope, Rules::default());
    assert!(matches!(
        r.route(br#"{"topic":"bad topic!","value":"v"}"#),
        Err(Problem::InvalidTopic { .. })
    ));
}

#[test]
fn a_static_topic_kafka_would_refuse_is_a_usage_error() {
    assert!(Router::new(Format::Lines, &topic("a b")).is_err());
    assert!(Router::new(
        Format::Lines,
        &Rules {
            fallback_topic: Some(".."),
            ..topic("t")
        }
    )
    .is_err());
}

#[test]
fn topic_allow_restricts_topics_from_the_input() {
    let mut r = router(
        Format::Ndjson,
        Rules {
            topic_allow: Some(r"logs\.(sshd|cron)"),
            ..topic("logs.${PROGRAM}")
        },
    );
    r.route(br#"{"PROGRAM":"sshd"}"#).unwrap();
    assert!(matches!(
        r.route(br#"{"PROGRAM":"sshdx"}"#),
        Err(Problem::InvalidTopic {
            why: "not allowed by --topic-allow",
            ..
        })
    ));
    let mut env = router(
        Format::Envelope,
        Rules {
            topic_allow: Some("logs"),
            ..Rules::default()
        },
    );
    assert!(env
        .route(br#"{"topic":"payments.commands","value":"x"}"#)
        .is_err());
    env.route(br#"{"topic":"logs","value":"x"}"#).unwrap();
    assert!(Router::new(
        Format::Ndjson,
        &Rules {
            topic_allow: Some("("),
            ..topic("t.${A}")
        }
    )
    .is_err());
}

#[test]
fn a_topic_from_the_input_is_accepted_once_and_a_refused_one_every_time() {
    let mut r = router(
        Format::Ndjson,
        Rules {
            topic_allow: Some(r"logs\.[a-z0-9]+"),
            ..topic("logs.${PROGRAM}")
        },
    );
    for _ in 0..2 {
        r.route(br#"{"PROGRAM":"sshd"}"#).unwrap();
        assert_eq!(r.record(br#"{"PROGRAM":"sshd"}"#).topic, "logs.sshd");
        assert!(matches!(
            r.route(br#"{"PROGRAM":"Cron"}"#),
            Err(Problem::InvalidTopic {
                why: "not allowed by --topic-allow",
                ..
            })
        ));
        assert!(matches!(
            r.route(br#"{"PROGRAM":"a b"}"#),
            Err(Problem::InvalidTopic { .. })
        ));
    }
    // Topics without bound: the remembered ones are forgotten, and each is checked again.
    for i in 0..topic::REMEMBERED + 10 {
        let rec = format!(r#"{{"PROGRAM":"p{i}"}}"#);
        r.route(rec.as_bytes()).unwrap();
        assert_eq!(r.record(rec.as_bytes()).topic, format!("logs.p{i}"));
    }
    assert!(r.accepted.len() <= topic::REMEMBERED);
    r.route(br#"{"PROGRAM":"sshd"}"#).unwrap();
    assert!(r.route(br#"{"PROGRAM":"Cron"}"#).is_err());
}
