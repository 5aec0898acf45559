//! A bound on how long one record may grow while it is read. Without it, a writer that never
//! sends a delimiter makes the read buffer grow with the input (200 MB without a newline took
//! 460 MB). With it, the first `limit` bytes become a `Cut` piece as soon as that many have come
//! without an end, and the rest of that record is dropped up to the next delimiter.

use memchr::memmem;

use super::{Framer, Piece};

/// Wraps a framer with a record length limit.
pub struct Capped<F> {
    inner: F,
    limit: usize,
    /// Where a cut record's rest ends: the format's delimiter (a newline for JSON).
    resync: memmem::Finder<'static>,
    dropping: bool,
}

impl<F: Framer> Capped<F> {
    /// Cuts records of `inner` longer than `limit` bytes; after a cut, drops input until `resync`.
    pub fn new(inner: F, limit: usize, resync: &[u8]) -> Capped<F> {
        Capped {
            inner,
            limit: limit.max(1),
            resync: memmem::Finder::new(resync).into_owned(),
            dropping: false,
        }
    }
}

impl<F: Framer> Framer for Capped<F> {
    fn next_piece(&mut self, window: &[u8], eof: bool) -> Option<Piece> {
        if self.dropping {
            match self.resync.find(window) {
                Some(0) => self.dropping = false,
                Some(i) => {
                    self.dropping = false;
                    return Some(Piece::Tail(i));
                }
                None if window.is_empty() => return None,
                None => return Some(Piece::Tail(window.len())),
            }
        }
        match self.inner.next_piece(window, eof) {
            None if window.len() > self.limit => {
                self.inner.reset();
                self.dropping = true;
                Some(Piece::Cut(self.limit))
            }
            piece => piece,
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.dropping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{split_all, split_streaming, LinesFramer};
    use super::*;

    #[test]
    fn a_record_without_end_is_cut_at_the_limit_and_the_rest_dropped() {
        let mut f = Capped::new(LinesFramer::new(b"\n"), 8, b"\n");
        let input = b"ok\n0123456789abcdefghij\nnext\n";
        assert_eq!(
            split_streaming(&mut f, input, &[4]),
            vec![
                Piece::Record(2),
                Piece::Skip(1),
                Piece::Cut(8),
                // The 12 bytes after the cut, as the 4-byte reads bring them.
                Piece::Tail(1),
                Piece::Tail(4),
                Piece::Tail(4),
                Piece::Tail(3),
                Piece::Skip(1),
                Piece::Record(4),
                Piece::Skip(1),
            ]
        );
    }

    #[test]
    fn a_long_record_that_arrives_whole_is_left_to_the_size_check() {
        let mut f = Capped::new(LinesFramer::new(b"\n"), 8, b"\n");
        assert_eq!(
            split_all(&mut f, b"0123456789abc\n"),
            vec![Piece::Record(13), Piece::Skip(1)]
        );
    }

    #[test]
    fn a_cut_record_that_never_ends_is_dropped_to_eof() {
        let mut f = Capped::new(LinesFramer::new(b"\n"), 4, b"\n");
        let pieces = split_streaming(&mut f, &[b'x'; 20], &[8]);
        assert_eq!(pieces[0], Piece::Cut(4));
        assert!(pieces[1..].iter().all(|p| matches!(p, Piece::Tail(_))));
        assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), 20);
    }
}
