//! JSON compaction for `-f json`: a pretty-printed value is sent without its layout.

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Copies a JSON value without the whitespace outside its strings.
pub fn compact_into(value: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'"' {
            // Copy the whole string at once, escapes included.
            let start = i;
            i += 1;
            while let Some(k) = memchr::memchr2(b'"', b'\\', &value[i..]) {
                i += k;
                if value[i] == b'"' {
                    break;
                }
                i += 2;
                if i >= value.len() {
                    break;
                }
            }
            i = (i + 1).min(value.len());
            out.extend_from_slice(&value[start..i]);
            continue;
        }
        if !is_space(b) {
            out.push(b);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_outside_strings() {
        let mut out = Vec::new();
        compact_into(b"{ \"a b\" : [ 1 ,\n 2 ] }", &mut out);
        assert_eq!(out, b"{\"a b\":[1,2]}");
        compact_into(br#"{ "k\" x" : "v \\" , "e": "\u0041 " }"#, &mut out);
        assert_eq!(out, br#"{"k\" x":"v \\","e":"\u0041 "}"#);
    }
}
