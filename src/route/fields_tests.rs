//! Unit tests of `fields`: extraction, and the scanner held to serde_json's answers.

use super::*;
use proptest::prelude::*;

#[test]
fn extracts_named_and_nested_fields_only() {
    let mut set = FieldSet::default();
    let host = set.add("HOST");
    let uid = set.add("user.id");
    let user = set.add("user");
    let mut found = Vec::new();
    let json = br#"{"HOST":"h\u0031","x":[1,{"HOST":2}],"user":{"id":42,"n":"a"}}"#;
    let text = set.extract(json, &mut found).unwrap();
    let mut s = String::new();
    assert_eq!(
        field_text(found_text(text, &found, host).unwrap(), &mut s),
        "h1"
    );
    assert_eq!(found_text(text, &found, uid), Some("42"));
    assert_eq!(found_text(text, &found, user), Some(r#"{"id":42,"n":"a"}"#));
}

#[test]
fn invalid_json_is_an_error_and_missing_fields_are_none() {
    let mut set = FieldSet::default();
    set.add("a");
    let mut found = Vec::new();
    assert!(set.extract(b"{\"a\": tru}", &mut found).is_err());
    assert!(set.extract(b"{\"a\": 1} x", &mut found).is_err());
    assert!(set.extract(b"{\"a\": \"\xff\"}", &mut found).is_err());
    set.extract(b"[1,2]", &mut found).unwrap();
    assert!(found[0].is_none());
    set.extract(b"\"just a string\"", &mut found).unwrap();
}

fn set_of(paths: &[&str]) -> FieldSet {
    let mut set = FieldSet::default();
    for p in paths {
        set.add(p);
    }
    set
}

/// Both paths over `json`: the scanner's answer (if sure) and serde_json's.
fn both(set: &FieldSet, json: &str) -> (Option<Found>, Option<Found>) {
    let mut fast = vec![None; set.count];
    let fast = super::super::scan::scan(json.as_bytes(), &set.root, &mut fast)
        .is_ok()
        .then_some(fast);
    let mut slow = vec![None; set.count];
    let slow = set.seek(json, &mut slow).is_ok().then_some(slow);
    (fast, slow)
}

#[test]
fn the_scanner_agrees_with_serde_json_case_by_case() {
    let set = set_of(&["HOST", "user.id", "user", "n"]);
    for json in [
        r#"{"HOST":"h","user":{"id":[1,{"x":null}],"k":"v"}}"#,
        r#" { "HOST" : "a\"b" , "x" : [ 1 , -0.5e+3 , true , false , null ] } "#,
        r#"{"HOST":"dup","HOST":"last"}"#,
        r#"{"user":true,"user":{"id":2},"user":[0]}"#,
        r#"{"x":"\u00e9\n","n":[]}"#,
        r#"[{"HOST":"not at the top"}]"#,
        r#""just a string""#,
        "true",
    ] {
        let (fast, slow) = both(&set, json);
        assert!(fast.is_some(), "the scanner should be sure of {json}");
        assert_eq!(fast, slow, "{json}");
    }
    // Invalid: the scanner is never sure, serde_json refuses.
    for json in [
        r#"{"HOST":"a"} x"#,
        r#"{"HOST":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":-}"#,
        r#"{"a":1e}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12g4"}"#,
        "{\"a\":\"tab\there\"}",
        r#"{"a":tru}"#,
        r#"{"a":1,}"#,
        r#"[1,]"#,
        r#"{"a" 1}"#,
        r#"{1:2}"#,
        "",
    ] {
        assert_eq!(both(&set, json), (None, None), "{json:?}");
    }
    // Valid, but left to serde_json: an escaped key or a number where fields are sought.
    for json in [
        r#"{"HO\u0053T":"h"}"#,
        r#"{"user":1e999}"#,
        r#"{"user":"\ud800"}"#,
    ] {
        assert_eq!(both(&set, json).0, None, "{json}");
    }
    let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    assert_eq!(
        both(&set, &deep).0,
        None,
        "deep nesting is serde_json's to judge"
    );
}

/// JSON-like text: mostly valid, with the number forms, escapes and keys the scanner judges.
fn json_like() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "0",
        "-1",
        "1.5",
        "-0.5e+3",
        "2E9",
        "1e999",
        "01",
        "1.",
        "-",
        "1e",
        "true",
        "false",
        "null",
        "nul",
        r#""a b""#,
        r#""\u0041\n""#,
        r#""\ud800""#,
        r#""\q""#,
        "\"\t\"",
        r#""é""#,
        r#""""#,
    ])
    .prop_map(str::to_string);
    let key = prop::sample::select(vec![
        r#""HOST""#,
        r#""user""#,
        r#""id""#,
        r#""n""#,
        r#""x""#,
        r#""HO\u0053T""#,
        "HOST",
    ]);
    let space = prop::sample::select(vec!["", "", " ", "\n ", "\t"]);
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), space.clone())
                .prop_map(|(v, sp)| format!("[{sp}{}]", v.join(&format!(",{sp}")))),
            (
                prop::collection::vec((key.clone(), inner), 0..5),
                space.clone()
            )
                .prop_map(|(kv, sp)| {
                    let kv: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("{k}{sp}:{v}"))
                        .collect();
                    format!("{{{sp}{}{sp}}}", kv.join(","))
                }),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn what_the_scanner_accepts_serde_json_accepts_with_the_same_fields(
        json in json_like(),
        cut in proptest::option::of((0usize..200, prop::sample::select(vec!["", ",", "}", "]", "\"", ":", " 1"]))),
    ) {
        let mut json = json;
        if let Some((at, with)) = cut {
            let at = at % (json.len() + 1);
            if json.is_char_boundary(at) {
                json.insert_str(at, with);
            }
        }
        let set = set_of(&["HOST", "user.id", "user", "n"]);
        let (fast, slow) = both(&set, &json);
        if fast.is_some() {
            proptest::prop_assert_eq!(fast, slow, "{}", json);
        }
    }
}
