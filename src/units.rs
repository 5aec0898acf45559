//! Parsers for the size and duration values of the command line.

use std::time::Duration;

/// A byte count such as `64MiB`, `1MB`, `512k` or `1000` (k, M, G are powers of 1000; Ki, Mi,
/// Gi of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s.trim())
        .map_err(|e| format!("`{s}` is not a size ({e}); try 64MiB, 1MB or 1000"))
}

/// A time limit; `None` is `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

/// A duration such as `30s` or `5m`, or `never` for no limit.
pub fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(Timeout(None));
    }
    humantime::parse_duration(s)
        .map(|d| Timeout(Some(d)))
        .map_err(|e| format!("`{s}` is not a duration ({e}); try 30s, 5m or never"))
}

/// A duration such as `100ms` or `10s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); try 100ms or 10s"))
}

/// Turns `\n`, `\t`, `\0`, `\r`, `\\` and `\xNN` escapes into bytes; other bytes stay as they are.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match b[i + 1] {
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            b'0' => (0, 2),
            b'\\' => (b'\\', 2),
            b'x' => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("`{s}`: \\x must be followed by two hex digits"))?;
                (hex, 4)
            }
            _ => (b'\\', 1),
        };
        out.push(byte);
        i += used;
    }
    if out.is_empty() {
        return Err("a delimiter cannot be empty".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("512k"), Ok(512_000));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("\\0").unwrap(), vec![0]);
        assert_eq!(unescape("\\r\\n").unwrap(), b"\r\n".to_vec());
        assert_eq!(unescape("::\\x1f").unwrap(), b"::\x1f".to_vec());
        assert_eq!(unescape("ab").unwrap(), b"ab".to_vec());
        assert!(unescape("").is_err());
        assert!(unescape("\\xZZ").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("never"), Ok(Timeout(None)));
        assert_eq!(
            parse_timeout("3s"),
            Ok(Timeout(Some(Duration::from_secs(3))))
        );
    }
}
