//! The fast path of `FieldSet::extract`: one pass over a record that validates it as JSON and
//! notes where the wanted fields lie, without serde's per-token calls (three quarters of the
//! instructions `ndjson` spent per record went to them).
//!
//! It answers only when it is sure serde_json would agree. Whenever serde_json would look
//! closer than structure (an escaped key or string where fields are sought, which serde
//! decodes; a number there, which it converts), or on anything invalid, it gives up with
//! `Unsure` and `extract` asks serde_json, which decides and words the error. So a record is
//! accepted here only if serde_json accepts it, with the same fields found; the property test
//! in `fields_tests.rs` holds the two together.

use super::fields::{Found, Node};

/// Deeper input is left to serde_json, whose limit (128) is near.
const MAX_DEPTH: u32 = 100;

/// The scanner cannot vouch for the record; serde_json must look.
#[derive(Debug)]
pub struct Unsure;

type Scan<T = ()> = Result<T, Unsure>;

/// Validates `json` (already known to be UTF-8) and fills `found` (sized for `root`'s fields,
/// all `None`) with the byte range of each wanted field.
pub fn scan(json: &[u8], root: &Node, found: &mut Found) -> Scan {
    let mut s = Scanner {
        b: json,
        i: 0,
        found,
    };
    s.space();
    s.value(wanted(root), 0)?;
    s.space();
    if s.i == json.len() {
        Ok(())
    } else {
        Err(Unsure)
    }
}

/// The node to seek fields under, if any are wanted below it.
fn wanted(node: &Node) -> Option<&Node> {
    (!node.children.is_empty()).then_some(node)
}

struct Scanner<'a, 'f> {
    b: &'a [u8],
    i: usize,
    found: &'f mut Found,
}

impl Scanner<'_, '_> {
    fn peek(&self) -> Scan<u8> {
        self.b.get(self.i).copied().ok_or(Unsure)
    }

    fn space(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// `byte`, with any whitespace around it.
    fn expect(&mut self, byte: u8) -> Scan {
        self.space();
        if !self.eat(byte) {
            return Err(Unsure);
        }
        self.space();
        Ok(())
    }

    /// One value at `i`; `node` names the fields sought inside it, if it is an object.
    fn value(&mut self, node: Option<&Node>, depth: u32) -> Scan {
        match self.peek()? {
            b'{' => self.object(node, depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => match self.string()? {
                // serde_json decodes a string where fields are sought (checking its escapes
                // more strictly than when it skips one).
                true if node.is_some() => Err(Unsure),
                _ => Ok(()),
            },
            // ... and converts a number there, refusing one out of range.
            b'-' | b'0'..=b'9' if node.is_some() => Err(Unsure),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Unsure),
        }
    }

    fn object(&mut self, node: Option<&Node>, depth: u32) -> Scan {
        if self.open(depth, b'}')? {
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(Unsure);
            }
            let key_start = self.i + 1;
            let escaped = self.string()?;
            let child = match node {
                // serde_json unescapes a key before comparing it.
                Some(_) if escaped => return Err(Unsure),
                Some(n) => {
                    let key = &self.b[key_start..self.i - 1];
                    n.children
                        .iter()
                        .find(|(k, _)| k.as_bytes() == key)
                        .map(|(_, c)| c)
                }
                None => None,
            };
            self.expect(b':')?;
            let start = self.i;
            self.value(child.and_then(wanted), depth)?;
            if let Some(id) = child.and_then(|c| c.leaf) {
                if let Some(slot) = self.found.get_mut(id) {
                    *slot = Some((start, self.i));
                }
            }
            if self.after_element(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: u32) -> Scan {
        if self.open(depth, b']')? {
            return Ok(());
        }
        loop {
            self.value(None, depth)?;
            if self.after_element(b']')? {
                return Ok(());
            }
        }
    }

    /// Steps into the object or array at `i`; whether it is empty (`close` follows at once).
    fn open(&mut self, depth: u32, close: u8) -> Scan<bool> {
        if depth > MAX_DEPTH {
            return Err(Unsure);
        }
        self.i += 1;
        self.space();
        Ok(self.eat(close))
    }

    /// After an element: whether `close` ends its container, or a comma another element follows.
    fn after_element(&mut self, close: u8) -> Scan<bool> {
        self.space();
        if self.eat(close) {
            return Ok(true);
        }
        self.expect(b',')?;
        Ok(false)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let here = self.b.get(self.i) == Some(&byte);
        if here {
            self.i += 1;
        }
        here
    }

    /// A string at `i` (its opening quote); whether it holds escapes.
    fn string(&mut self) -> Scan<bool> {
        self.i += 1;
        let mut escaped = false;
        loop {
            self.i = special(self.b, self.i).ok_or(Unsure)?;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(escaped);
                }
                b'\\' => escaped = true,
                _ => return Err(Unsure), // a raw control character
            }
            self.i += 1;
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5).ok_or(Unsure)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Unsure);
                    }
                    self.i += 5;
                }
                _ => return Err(Unsure),
            }
        }
    }

    /// A number as JSON writes them: `-`? int frac? exp?, no leading zeros.
    fn number(&mut self) -> Scan {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(Unsure),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        // Whatever follows (`01`, `1x`) is for the caller to refuse.
        Ok(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Scan {
        let from = self.i;
        self.digits();
        if self.i == from {
            Err(Unsure)
        } else {
            Ok(())
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Unsure)
        }
    }
}

const ONES: u64 = u64::MAX / 255;

/// Where the first byte at or after `from` that a string cannot simply hold lies: a quote, a
/// backslash or a control character. Eight bytes a step: most of a record is string content.
fn special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let x = u64::from_le_bytes(chunk);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // A byte's high bit ends up set where it is zero (or below 0x20, for `x`); bits above
        // the first such byte may be wrong, so only the lowest is used.
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hits = hits & (ONES << 7);
        if hits != 0 {
            return Some(i + hits.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let tail = b.get(i..)?;
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}
