//! Record timestamps from JSON: epoch milliseconds, or RFC 3339 text (parsed by `jiff`).

use jiff::Timestamp;

/// Milliseconds since the epoch from the JSON text of a number, a string of digits, or an
/// RFC 3339 string.
pub fn from_json(text: &str) -> Option<i64> {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return inner.parse::<i64>().ok().or_else(|| parse_rfc3339(inner));
    }
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

/// Parses `2026-11-25T10:00:00.123+01:00` (or `Z`, or a space for `T`) to epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    // jiff takes ISO 8601 forms RFC 3339 does not (no seconds, time zone annotations); the
    // shape check keeps kpipe to RFC 3339 with its usual space variant.
    let b = s.as_bytes();
    let shaped = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && matches!(b[10], b'T' | b't' | b' ')
        && !s.contains('[');
    if !shaped {
        return None;
    }
    s.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-25T10:00:00.5+01:00"),
            Some(1_795_597_200_500)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T09:00:00.500Z"),
            Some(1_795_597_200_500)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25 09:00:00.500z"),
            Some(1_795_597_200_500)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "2026-+1-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-25T10:00:00",
            "2026-11-25T25:00:00Z",
            "2026-11-25",
            "2026-11-25T10:00Z",
            "2026-11-25T10:00:00Z[Europe/Paris]",
            "+002026-11-25T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_values() {
        assert_eq!(from_json("1795597200500"), Some(1_795_597_200_500));
        assert_eq!(from_json("\"1795597200500\""), Some(1_795_597_200_500));
        assert_eq!(from_json("1.5e3"), Some(1500));
        assert_eq!(from_json("\"1970-01-01T00:00:01Z\""), Some(1000));
        assert_eq!(from_json("\"2026-+1-01T00:00:00Z\""), None);
        assert_eq!(from_json("\"nope\""), None);
        assert_eq!(from_json("true"), None);
    }
}
