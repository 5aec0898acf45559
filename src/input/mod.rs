//! Standard input cut into records: a block reader and one framer per format.

mod capped;
pub mod json;
mod lines;
mod reader;

pub use capped::Capped;
pub use json::JsonFramer;
pub use lines::LinesFramer;
pub use reader::{is_stream, readable, BlockReader, Fill, Operand};

/// One piece of input: every input byte belongs to exactly one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A record's bytes.
    Record(usize),
    /// Delimiters and blank space between records.
    Skip(usize),
    /// An empty record (a delimiter with no record before it): skipped, and counted as such.
    Empty(usize),
    /// Bytes that cannot be a record of this format, with the reason.
    Malformed(usize, &'static str),
    /// The first bytes of a record longer than the limit, cut there (`Capped`).
    Cut(usize),
    /// The rest of a cut record, dropped up to the next delimiter.
    Tail(usize),
}

impl Piece {
    /// How many input bytes the piece covers.
    pub fn len(self) -> usize {
        match self {
            Piece::Record(n)
            | Piece::Skip(n)
            | Piece::Empty(n)
            | Piece::Malformed(n, _)
            | Piece::Cut(n)
            | Piece::Tail(n) => n,
        }
    }

    /// Whether the piece covers no bytes (never returned by a framer).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Finds the next piece at the start of the unconsumed input.
pub trait Framer {
    /// Returns the piece that starts `window`, or `None` when more input is needed.
    /// At `eof`, returns `None` only for an empty window.
    fn next_piece(&mut self, window: &[u8], eof: bool) -> Option<Piece>;

    /// Forgets a record in progress (its bytes were taken away).
    fn reset(&mut self);
}

/// Cuts a whole buffer into pieces; used by tests and property checks.
pub fn split_all(framer: &mut dyn Framer, input: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = framer.next_piece(&input[at..], true) {
        assert!(!p.is_empty(), "framer returned an empty piece");
        at += p.len();
        out.push(p);
    }
    out
}

/// Feeds `input` in chunks of the given sizes, as reads from a pipe would arrive.
#[cfg(test)]
pub fn split_streaming(framer: &mut dyn Framer, input: &[u8], chunks: &[usize]) -> Vec<Piece> {
    let mut out = Vec::new();
    let (mut start, mut end) = (0, 0);
    let mut sizes = chunks.iter().cycle();
    loop {
        let eof = end == input.len();
        while let Some(p) = framer.next_piece(&input[start..end], eof) {
            assert!(
                !p.is_empty() && start + p.len() <= end,
                "piece {p:?} outside the window"
            );
            start += p.len();
            out.push(p);
        }
        if eof {
            return out;
        }
        end = (end + sizes.next().copied().unwrap_or(1).max(1)).min(input.len());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Joins neighbouring delimiter pieces: where a run of blank space is cut depends on reads.
    fn merge_skips(pieces: Vec<Piece>) -> Vec<Piece> {
        let mut out: Vec<Piece> = Vec::new();
        for p in pieces {
            match (out.last_mut(), p) {
                (Some(Piece::Skip(a)), Piece::Skip(b)) => *a += b,
                _ => out.push(p),
            }
        }
        out
    }

    type MakeFramer = Box<dyn Fn() -> Box<dyn Framer>>;

    fn framers() -> Vec<(&'static str, MakeFramer)> {
        vec![
            (
                "newline",
                Box::new(|| Box::new(LinesFramer::new(b"\n")) as Box<dyn Framer>),
            ),
            ("nul", Box::new(|| Box::new(LinesFramer::new(b"\0")))),
            (
                "multi-byte",
                Box::new(|| Box::new(LinesFramer::new(b"\r\n--"))),
            ),
            ("json", Box::new(|| Box::new(JsonFramer::new()))),
        ]
    }

    fn bytes_with_structure() -> impl Strategy<Value = Vec<u8>> {
        // Arbitrary bytes, weighted towards the ones framers care about.
        let byte = prop_oneof![
            4 => any::<u8>(),
            2 => Just(b'\n'),
            1 => Just(0u8),
            1 => prop::sample::select(b"{}[]\",:\\ \r-tfn0123456789".to_vec()),
        ];
        prop::collection::vec(byte, 0..600)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Every input byte lands in exactly one record, delimiter or reported error, and a
        /// stream read in pieces frames exactly as the whole buffer does.
        #[test]
        fn every_byte_is_accounted_for(input in bytes_with_structure(), chunks in prop::collection::vec(1usize..64, 1..8)) {
            for (name, make) in framers() {
                let whole = merge_skips(split_all(make().as_mut(), &input));
                let total: usize = whole.iter().map(|p| p.len()).sum();
                prop_assert_eq!(total, input.len(), "{} lost or doubled bytes", name);
                let streamed = merge_skips(split_streaming(make().as_mut(), &input, &chunks));
                prop_assert_eq!(&streamed, &whole, "{} framed differently when streamed", name);
            }
        }

        /// A capped framer, read in any chunks, still accounts for every byte, and never lets a
        /// record grow past its limit before cutting it.
        #[test]
        fn a_capped_framer_accounts_for_every_byte(input in bytes_with_structure(), chunks in prop::collection::vec(1usize..64, 1..8), limit in 1usize..40) {
            let mut lines = Capped::new(LinesFramer::new(b"\n"), limit, b"\n");
            let mut json = Capped::new(JsonFramer::new(), limit, b"\n");
            for f in [&mut lines as &mut dyn Framer, &mut json] {
                let pieces = split_streaming(f, &input, &chunks);
                let total: usize = pieces.iter().map(|p| p.len()).sum();
                prop_assert_eq!(total, input.len());
                prop_assert!(pieces.iter().all(|p| !matches!(p, Piece::Cut(n) if *n != limit)));
            }
        }
    }
}
