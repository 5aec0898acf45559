//! Standard input cut into records: a block reader and one framer per format.

pub mod json;
mod lines;
mod reader;

pub use json::JsonFramer;
pub use lines::LinesFramer;
pub use reader::{BlockReader, Fill};

/// One piece of input: every input byte belongs to exactly one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A record's bytes.
    Record(usize),
    /// Delimiters and blank space between records.
    Skip(usize),
    /// Bytes that cannot be a record of this format, with the reason.
    Malformed(usize, &'static str),
}

impl Piece {
    /// How many input bytes the piece covers.
    pub fn len(self) -> usize {
        match self {
            Piece::Record(n) | Piece::Skip(n) | Piece::Malformed(n, _) => n,
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
