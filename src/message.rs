//! Where a record came from, carried through librdkafka so its delivery report finds its way
//! back, with what the report itself cannot give: librdkafka reports -1 as the timestamp of a
//! message that failed, so a record's own timestamp travels here, and the spool and the
//! dead-letter file keep it.

// The layout below needs 64 bits; kpipe is built for 64-bit Linux.
const _: () = assert!(usize::BITS == 64);

const PINNED: usize = 1;
const HAS_TIMESTAMP: usize = 1 << 1;
const ALONE: usize = 1 << 2;
const FILE_SHIFT: u32 = 3;
const FILE_BITS: u32 = 19;
const TIMESTAMP_SHIFT: u32 = FILE_SHIFT + FILE_BITS;
/// 42 bits of milliseconds reach the year 2109.
const TIMESTAMP_MAX: i64 = (1 << (usize::BITS - TIMESTAMP_SHIFT)) - 1;

/// Where a record came from, carried through librdkafka as the delivery opaque.
///
/// Bit 0: the partition was pinned (so a dead-letter line keeps it). Bit 1: a timestamp
/// follows. Bit 2: sent again alone, after its batch was refused (see `sink::retry`).
/// Bits 3–21: the spool file it was replayed from (1-based), 0 for standard input.
/// Bits 22–63: the record's own timestamp in milliseconds since the epoch, when it had one
/// (a timestamp before 1970 or after 2109 is not carried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin(pub usize);

impl Origin {
    /// A record read from standard input, sent to `partition` if it named one.
    pub fn stdin(partition: Option<i32>) -> Origin {
        Origin(partition.is_some() as usize)
    }

    /// A record replayed from spool file number `file` (1-based; at most 2^19 - 1 per run),
    /// sent to `partition` if it named one.
    pub fn spool(file: usize, partition: Option<i32>) -> Origin {
        let file = file.min((1 << FILE_BITS) - 1);
        Origin(file << FILE_SHIFT | partition.is_some() as usize)
    }

    /// Whether a record timestamp (ms) can travel in an origin: from 1970 to 2109. Kafka refuses
    /// times before 1970, and no topic takes one that far ahead unless told to.
    pub fn carries(timestamp: i64) -> bool {
        (0..=TIMESTAMP_MAX).contains(&timestamp)
    }

    /// The same origin, carrying the record's own timestamp.
    pub fn with_timestamp(self, timestamp: Option<i64>) -> Origin {
        match timestamp {
            Some(ts) if Origin::carries(ts) => {
                Origin(self.0 | HAS_TIMESTAMP | (ts as usize) << TIMESTAMP_SHIFT)
            }
            _ => self,
        }
    }

    /// The same origin, marked as sent alone: a refusal is then the record's own.
    pub fn alone(self) -> Origin {
        Origin(self.0 | ALONE)
    }

    /// Whether the record was sent alone after its batch was refused.
    pub fn is_alone(self) -> bool {
        self.0 & ALONE != 0
    }

    /// Whether the partition was chosen by the user rather than the partitioner.
    pub fn pinned(self) -> bool {
        self.0 & PINNED != 0
    }

    /// The spool file this record was replayed from, if any.
    pub fn spool_file(self) -> Option<usize> {
        match (self.0 >> FILE_SHIFT) & ((1 << FILE_BITS) - 1) {
            0 => None,
            n => Some(n),
        }
    }

    /// The record's own timestamp, if it had one.
    pub fn timestamp(self) -> Option<i64> {
        (self.0 & HAS_TIMESTAMP != 0).then_some((self.0 >> TIMESTAMP_SHIFT) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_comes_back() {
        let o = Origin::spool(7, Some(0)).with_timestamp(Some(1_795_597_200_500));
        assert!(o.pinned() && !o.is_alone());
        assert_eq!(o.spool_file(), Some(7));
        let a = o.alone();
        assert!(a.is_alone() && a.pinned());
        assert_eq!(a.spool_file(), Some(7));
        assert_eq!(a.timestamp(), Some(1_795_597_200_500));
        assert_eq!(o.timestamp(), Some(1_795_597_200_500));
        let o = Origin::stdin(None);
        assert!(!o.pinned());
        assert_eq!((o.spool_file(), o.timestamp()), (None, None));
        assert_eq!(
            Origin::stdin(None).with_timestamp(Some(0)).timestamp(),
            Some(0)
        );
    }

    #[test]
    fn timestamps_out_of_range_are_not_carried() {
        for ts in [-1, TIMESTAMP_MAX + 1, i64::MAX] {
            let o = Origin::spool(3, None).with_timestamp(Some(ts));
            assert_eq!(o.timestamp(), None, "{ts}");
            assert_eq!(o.spool_file(), Some(3));
        }
        assert_eq!(
            Origin::stdin(Some(0))
                .with_timestamp(Some(TIMESTAMP_MAX))
                .timestamp(),
            Some(TIMESTAMP_MAX)
        );
    }
}
