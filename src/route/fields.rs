//! Pulls only the JSON fields that templates name out of a record, validating the rest
//! without building it: no tree, and no allocation for fields left unnamed.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The set of dotted field paths the templates use, as a tree.
#[derive(Debug, Default)]
pub struct FieldSet {
    root: Node,
    count: usize,
}

/// One step of a path: the keys below it, and the field id if a path ends here.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) children: Vec<(String, Node)>,
    pub(super) leaf: Option<usize>,
}

/// Where each wanted field's JSON text lies in the record (byte range), indexed by field id.
/// Ranges rather than references, so one buffer serves every record.
pub type Found = Vec<Option<(usize, usize)>>;

/// The JSON text of field `id`, if the record had it.
pub fn found_text<'a>(
    json: &'a str,
    found: &[Option<(usize, usize)>],
    id: usize,
) -> Option<&'a str> {
    let (start, end) = found.get(id).copied().flatten()?;
    json.get(start..end)
}

impl FieldSet {
    /// Adds a dotted path (`user.id`) and returns its id; the same path gives the same id.
    pub fn add(&mut self, path: &str) -> usize {
        let mut node = &mut self.root;
        for part in path.split('.') {
            let at = match node.children.iter().position(|(k, _)| k == part) {
                Some(i) => i,
                None => {
                    node.children.push((part.to_string(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        *node.leaf.get_or_insert_with(|| {
            self.count += 1;
            self.count - 1
        })
    }

    /// Whether any field is wanted.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Validates `json` as one UTF-8 JSON value, fills `found` with where the wanted fields
    /// are, and returns the record as text (what `found` indexes).
    pub fn extract<'de>(
        &self,
        json: &'de [u8],
        found: &mut Found,
    ) -> Result<&'de str, serde_json::Error> {
        found.clear();
        found.resize(self.count, None);
        // One check of the whole line is cheaper than serde_json's per string, and it also
        // catches invalid UTF-8 in values serde_json would skip without looking.
        let text = std::str::from_utf8(json).map_err(|e| {
            <serde_json::Error as de::Error>::custom(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            ))
        })?;
        if super::scan::scan(json, &self.root, found).is_ok() {
            return Ok(text);
        }
        self.seek(text, found)?;
        Ok(text)
    }

    /// The slow path: serde_json decides, for records the scanner is unsure of. Starts from no
    /// field found, whatever the scanner noted before it gave up.
    fn seek(&self, text: &str, found: &mut Found) -> Result<(), serde_json::Error> {
        found.fill(None);
        let mut de = serde_json::Deserializer::from_str(text);
        Seek {
            node: &self.root,
            found,
            base: text.as_ptr() as usize,
        }
        .deserialize(&mut de)?;
        de.end()
    }
}

struct Seek<'n, 'f> {
    node: &'n Node,
    found: &'f mut Found,
    /// Address of the record's first byte: raw values borrow from it, so their offsets follow.
    base: usize,
}

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.node.children.is_empty() {
            IgnoredAny::deserialize(d).map(|_| ())
        } else {
            d.deserialize_any(self)
        }
    }
}

/// A map key, borrowed from the input unless it holds escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let Some((_, child)) = self.node.children.iter().find(|(k, _)| k == key.as_str())
            else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let raw: &'de RawValue = map.next_value()?;
            if let Some(id) = child.leaf {
                let start = raw.get().as_ptr() as usize - self.base;
                self.found[id] = Some((start, start + raw.get().len()));
            }
            if !child.children.is_empty() {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                Seek {
                    node: child,
                    found: &mut *self.found,
                    base: self.base,
                }
                .deserialize(&mut de)
                .map_err(de::Error::custom)?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The text a field renders as: strings unescaped, anything else as its JSON text.
pub fn field_text<'a>(text: &'a str, scratch: &'a mut String) -> &'a str {
    if !text.starts_with('"') {
        return text;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return inner;
    }
    match serde_json::from_str::<String>(text) {
        Ok(s) => {
            *scratch = s;
            scratch
        }
        Err(_) => inner,
    }
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
