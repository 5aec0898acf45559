//! A stream of JSON values separated by whitespace, each possibly spanning lines.
//!
//! The framer only finds where a value ends (brackets, strings, escapes); whether its content
//! is valid JSON is decided by the parser afterwards. A newline followed by `{` or `[` inside an
//! unfinished value, or a raw newline inside a string, ends it as malformed: that is where the
//! next value of `jq .` output starts, so one broken value never swallows the good ones after it.

use super::{Framer, Piece};

/// Finds value boundaries, resuming where the last call stopped when more input arrives.
#[derive(Default)]
pub struct JsonFramer {
    scan: Option<Scan>,
}

#[derive(Clone, Copy)]
struct Scan {
    kind: Kind,
    pos: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    String,
    Scalar,
    Garbage,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const UNTERMINATED: &str = "unterminated JSON value";
const NOT_JSON: &str = "not a JSON value";

impl JsonFramer {
    /// A framer with no value in progress.
    pub fn new() -> JsonFramer {
        JsonFramer::default()
    }

    fn start(window: &[u8]) -> Scan {
        let kind = match window[0] {
            b'{' | b'[' => Kind::Container,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => Kind::Scalar,
            _ => Kind::Garbage,
        };
        Scan {
            kind,
            pos: 0,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Scans on from `s.pos`; the piece when the value ends, `None` when input runs out first.
    fn resume(s: &mut Scan, w: &[u8], eof: bool) -> Option<Piece> {
        let mut i = s.pos;
        while i < w.len() {
            let b = w[i];
            if s.in_string {
                if !s.escaped && !matches!(b, b'\\' | b'"' | b'\n') {
                    // Most bytes of a record are inside strings: jump to the next one that matters.
                    i += memchr::memchr3(b'\\', b'"', b'\n', &w[i..]).unwrap_or(w.len() - i);
                    continue;
                }
                if s.escaped {
                    s.escaped = false;
                } else if b == b'\\' {
                    s.escaped = true;
                } else if b == b'"' {
                    s.in_string = false;
                    if s.kind == Kind::String {
                        return Some(Piece::Record(i + 1));
                    }
                } else if b == b'\n' {
                    return Some(Piece::Malformed(i, UNTERMINATED));
                }
                i += 1;
                continue;
            }
            match s.kind {
                Kind::Garbage => {
                    if b == b'\n' {
                        return Some(Piece::Malformed(i, NOT_JSON));
                    }
                }
                Kind::Scalar => {
                    if is_space(b) || matches!(b, b'{' | b'}' | b'[' | b']' | b'"' | b',' | b':') {
                        return Some(if i == 0 {
                            Piece::Malformed(1, NOT_JSON)
                        } else {
                            Piece::Record(i)
                        });
                    }
                }
                // Only the opening quote is seen outside the string.
                Kind::String => s.in_string = true,
                Kind::Container => match b {
                    b'{' | b'[' => s.depth += 1,
                    b'}' | b']' => {
                        s.depth -= 1;
                        if s.depth == 0 {
                            return Some(Piece::Record(i + 1));
                        }
                    }
                    b'"' => s.in_string = true,
                    b'\n' => match w.get(i + 1) {
                        Some(b'{' | b'[') => return Some(Piece::Malformed(i, UNTERMINATED)),
                        Some(_) => {}
                        None if eof => {}
                        None => {
                            s.pos = i;
                            return None;
                        }
                    },
                    _ => {}
                },
            }
            i += 1;
        }
        s.pos = i;
        if !eof {
            return None;
        }
        Some(match s.kind {
            Kind::Scalar => Piece::Record(w.len()),
            Kind::Garbage => Piece::Malformed(w.len(), NOT_JSON),
            Kind::String | Kind::Container => Piece::Malformed(w.len(), UNTERMINATED),
        })
    }
}

impl Framer for JsonFramer {
    fn next_piece(&mut self, window: &[u8], eof: bool) -> Option<Piece> {
        if window.is_empty() {
            self.scan = None;
            return None;
        }
        if self.scan.is_none() {
            let blank = window.iter().take_while(|&&b| is_space(b)).count();
            if blank > 0 {
                return Some(Piece::Skip(blank));
            }
            self.scan = Some(JsonFramer::start(window));
        }
        let scan = self.scan.as_mut()?;
        let piece = JsonFramer::resume(scan, window, eof);
        if piece.is_some() {
            self.scan = None;
        }
        piece
    }

    fn reset(&mut self) {
        self.scan = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::split_all;
    use super::*;

    fn records(input: &[u8]) -> Vec<(String, &'static str)> {
        let mut f = JsonFramer::new();
        let mut at = 0;
        let mut out = Vec::new();
        for p in split_all(&mut f, input) {
            let text = String::from_utf8_lossy(&input[at..at + p.len()]).into_owned();
            match p {
                Piece::Record(_) => out.push((text, "ok")),
                Piece::Malformed(_, why) => out.push((text, why)),
                Piece::Skip(_) | Piece::Empty(_) | Piece::Cut(_) | Piece::Tail(_) => {}
            }
            at += p.len();
        }
        out
    }

    #[test]
    fn multi_line_and_concatenated() {
        let r = records(b"{\n  \"a\": [1, {\"b\": \"}\"}]\n}\n{\"c\":1}{\"d\":2} 3 \"x\\\"y\"\n");
        let texts: Vec<_> = r.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "{\n  \"a\": [1, {\"b\": \"}\"}]\n}",
                "{\"c\":1}",
                "{\"d\":2}",
                "3",
                "\"x\\\"y\""
            ]
        );
        assert!(r.iter().all(|(_, k)| *k == "ok"));
    }

    #[test]
    fn resynchronises_after_a_broken_value() {
        let r = records(b"{\n  \"a\": 1,\n{\n  \"b\": 2\n}\nhello world\n{\"c\":3}");
        assert_eq!(r[0], ("{\n  \"a\": 1,".to_string(), UNTERMINATED));
        assert_eq!(r[1], ("{\n  \"b\": 2\n}".to_string(), "ok"));
        assert_eq!(r[2], ("hello world".to_string(), NOT_JSON));
        assert_eq!(r[3], ("{\"c\":3}".to_string(), "ok"));
    }

    #[test]
    fn resumes_across_reads() {
        let mut f = JsonFramer::new();
        assert_eq!(f.next_piece(b"{\"a\":", false), None);
        assert_eq!(f.next_piece(b"{\"a\":\n", false), None);
        assert_eq!(f.next_piece(b"{\"a\":\n1}", false), Some(Piece::Record(8)));
    }
}
