//! Records separated by a delimiter of one or more bytes.

use memchr::memmem;

use super::{Framer, Piece};

/// Splits at a byte-string delimiter; an empty record is its delimiter alone, `Piece::Empty`.
pub struct LinesFramer {
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
    /// Bytes at the start of the window already searched without a match, so a long record
    /// arriving in many reads is not searched again from its start.
    searched: usize,
    /// Whether the last piece was a record, so the delimiter that comes next ends it rather
    /// than an empty one.
    after_record: bool,
}

impl LinesFramer {
    /// A framer for `delimiter` (never empty).
    pub fn new(delimiter: &[u8]) -> LinesFramer {
        LinesFramer {
            delimiter: delimiter.to_vec(),
            finder: memmem::Finder::new(delimiter).into_owned(),
            searched: 0,
            after_record: false,
        }
    }
}

impl Framer for LinesFramer {
    fn next_piece(&mut self, window: &[u8], eof: bool) -> Option<Piece> {
        if window.is_empty() {
            return None;
        }
        let d = self.delimiter.len();
        if window.starts_with(&self.delimiter) {
            self.searched = 0;
            let ends_record = std::mem::replace(&mut self.after_record, false);
            return Some(match ends_record {
                true => Piece::Skip(d),
                false => Piece::Empty(d),
            });
        }
        // A delimiter may straddle the end of what was searched before.
        let from = self.searched.saturating_sub(d - 1);
        match self.finder.find(&window[from..]) {
            Some(i) => {
                self.searched = 0;
                self.after_record = true;
                Some(Piece::Record(from + i))
            }
            None if eof => {
                self.searched = 0;
                self.after_record = true;
                Some(Piece::Record(window.len()))
            }
            None => {
                self.searched = window.len();
                None
            }
        }
    }

    fn reset(&mut self) {
        self.searched = 0;
        // The record in progress was cut: the delimiter that ends its dropped rest ends it.
        self.after_record = true;
    }
}

#[cfg(test)]
mod tests {
    use super::super::split_all;
    use super::*;

    #[test]
    fn splits_and_skips_empty() {
        let mut f = LinesFramer::new(b"\n");
        let p = split_all(&mut f, b"a\n\nbc\nd");
        assert_eq!(
            p,
            vec![
                Piece::Record(1),
                Piece::Skip(1),
                Piece::Empty(1),
                Piece::Record(2),
                Piece::Skip(1),
                Piece::Record(1)
            ]
        );
    }

    #[test]
    fn multibyte_delimiter_across_reads() {
        let mut f = LinesFramer::new(b"::");
        assert_eq!(f.next_piece(b"abc:", false), None);
        assert_eq!(f.next_piece(b"abc::d", false), Some(Piece::Record(3)));
        assert_eq!(f.next_piece(b"::d", false), Some(Piece::Skip(2)));
        assert_eq!(f.next_piece(b"d", false), None);
        assert_eq!(f.next_piece(b"d", true), Some(Piece::Record(1)));
    }
}
