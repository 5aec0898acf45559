//! A record as kpipe hands it on: to librdkafka, to `--dry-run`, to the dead-letter file and
//! the spool. A leaf: the envelope form, timestamps and JSON compaction live here, and nothing
//! here knows about routing or sinks.

pub mod compact;
pub mod envelope;
pub mod timestamp;
pub mod topic;

/// One header: a name and a value, or no value at all.
pub type Header<'a> = (&'a str, Option<&'a [u8]>);

/// One record ready to produce, borrowed from the input and the router's buffers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub topic: &'a str,
    /// A partition the user chose; `None` leaves it to the partitioner.
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: Vec<Header<'a>>,
    /// Milliseconds since the epoch; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

/// Where one header lies in a `HeaderBuf`: name start, name end, and the value's span.
type HeaderSpan = (usize, usize, Option<(usize, usize)>);

/// Headers rendered for one record, kept in one reused buffer so a record can borrow them all.
#[derive(Debug, Default)]
pub struct HeaderBuf {
    bytes: Vec<u8>,
    spans: Vec<HeaderSpan>,
}

impl HeaderBuf {
    /// Forgets the previous record's headers, keeping the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Adds a header.
    pub fn push(&mut self, name: &str, value: Option<&[u8]>) {
        let n0 = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        let n1 = self.bytes.len();
        let value = value.map(|v| {
            self.bytes.extend_from_slice(v);
            (n1, self.bytes.len())
        });
        self.spans.push((n0, n1, value));
    }

    /// Whether no header was added.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The headers, in the order they were added.
    pub fn list(&self) -> Vec<Header<'_>> {
        self.spans
            .iter()
            .map(|&(n0, n1, v)| {
                // Names were pushed as `&str`, so the span is UTF-8.
                let name = std::str::from_utf8(&self.bytes[n0..n1]).unwrap_or_default();
                (name, v.map(|(a, b)| &self.bytes[a..b]))
            })
            .collect()
    }
}

/// A record's headers as read back from librdkafka, for the dead-letter file and the spool.
pub fn header_list<H: rdkafka::message::Headers>(headers: Option<&H>) -> Vec<Header<'_>> {
    headers
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_buf_keeps_order_names_and_null_values() {
        let mut h = HeaderBuf::default();
        h.push("a", Some(b"1"));
        h.push("b", None);
        h.push("c", Some(b""));
        assert_eq!(
            h.list(),
            vec![("a", Some(&b"1"[..])), ("b", None), ("c", Some(&b""[..]))]
        );
        h.clear();
        assert!(h.is_empty() && h.list().is_empty());
    }
}
