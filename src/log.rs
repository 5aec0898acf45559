//! kpipe's one way to write to stderr. A stderr that is closed, full or a broken pipe loses the
//! line and nothing else: `eprintln!` would panic, and inside a librdkafka callback a panic
//! aborts the process with every record it holds. Control characters are escaped, so text from
//! a record (a topic, a field) cannot forge a line of its own or move the terminal's cursor.

use std::fmt::{self, Write as _};
use std::io::Write;

/// The longest line kpipe writes: a report quoting a huge field or topic stays readable, and
/// a stream of them cannot fill a disk with stderr.
pub const LINE_LIMIT: usize = 4096;

/// Writes one line to stderr, ignoring any error.
pub fn line(args: fmt::Arguments<'_>) {
    let mut text = String::new();
    let _ = text.write_fmt(args);
    bound(&mut text, LINE_LIMIT);
    let text = escape_controls(&text);
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(text.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// Cuts `text` to about `limit` bytes (at a character boundary), saying how much was cut.
pub fn bound(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let mut at = limit;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let cut = text.len() - at;
    text.truncate(at);
    let _ = write!(text, "... ({cut} bytes more not shown)");
}

/// `text` with every control character written as `\xNN`.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `say!("kpipe: ...")` writes one line to stderr and never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_line() {
        assert_eq!(
            escape_controls("topic a\nkpipe: 0 read, 0 delivered\x1b[2K"),
            "topic a\\x0akpipe: 0 read, 0 delivered\\x1b[2K"
        );
        assert_eq!(escape_controls("plain é"), "plain é");
    }

    #[test]
    fn a_long_line_is_cut_at_a_character_and_says_so() {
        let mut t = "é".repeat(3000);
        bound(&mut t, 4095);
        assert!(t.starts_with(&"é".repeat(2047)), "{t}");
        assert!(t.ends_with("... (1906 bytes more not shown)"), "{t}");
        let mut short = "short".to_string();
        bound(&mut short, 10);
        assert_eq!(short, "short");
    }
}
