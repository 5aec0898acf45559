//! Where a record came from, carried through librdkafka so its delivery report finds its way back.

/// Where a record came from, carried through librdkafka as the delivery opaque.
///
/// Bit 0 says whether the partition was pinned (so a dead-letter line keeps it); the rest is
/// the index of the spool file it was replayed from, 0 for standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin(pub usize);

impl Origin {
    /// A record read from standard input.
    pub fn stdin(pinned: bool) -> Origin {
        Origin(pinned as usize)
    }

    /// A record replayed from spool file number `file` (1-based).
    pub fn spool(file: usize, pinned: bool) -> Origin {
        Origin(file << 1 | pinned as usize)
    }

    /// Whether the partition was chosen by the user rather than the partitioner.
    pub fn pinned(self) -> bool {
        self.0 & 1 == 1
    }

    /// The spool file this record was replayed from, if any.
    pub fn spool_file(self) -> Option<usize> {
        match self.0 >> 1 {
            0 => None,
            n => Some(n),
        }
    }
}
