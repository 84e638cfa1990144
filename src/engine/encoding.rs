//! The text encoding of a file's first bytes: a byte order mark says UTF-8 or UTF-16; bytes that
//! are not UTF-8 are read as Latin-1, and said to be.

/// A sample decoded to text, and the encoding's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

fn utf16(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|pair| {
        if big_endian {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_le_bytes([pair[0], pair[1]])
        }
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Decode the start of a file. `whole`: the sample is the whole file (else its last character
/// may be cut, which is not an error).
pub fn decode(sample: &[u8], whole: bool) -> Decoded {
    if let Some(rest) = sample.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Decoded {
            text: utf8_prefix(rest, whole).unwrap_or_else(|| latin1(rest)),
            encoding: "utf-8-bom",
        };
    }
    if let Some(rest) = sample.strip_prefix(&[0xFF, 0xFE]) {
        return Decoded {
            text: utf16(rest, false),
            encoding: "utf-16le",
        };
    }
    if let Some(rest) = sample.strip_prefix(&[0xFE, 0xFF]) {
        return Decoded {
            text: utf16(rest, true),
            encoding: "utf-16be",
        };
    }
    match utf8_prefix(sample, whole) {
        Some(text) => Decoded {
            text,
            encoding: "utf-8",
        },
        None => Decoded {
            text: latin1(sample),
            encoding: "latin-1",
        },
    }
}

/// The sample as UTF-8, allowing a character cut at its end when it is not the whole file.
fn utf8_prefix(bytes: &[u8], whole: bool) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.to_string()),
        Err(e) if !whole && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_and_invalid_utf8_are_told_apart() {
        assert_eq!(decode(b"a,b", true).encoding, "utf-8");
        let bom = decode(b"\xEF\xBB\xBFa,b", true);
        assert_eq!((bom.text.as_str(), bom.encoding), ("a,b", "utf-8-bom"));
        let le = decode(b"\xFF\xFEa\0,\0b\0", true);
        assert_eq!((le.text.as_str(), le.encoding), ("a,b", "utf-16le"));
        let be = decode(b"\xFE\xFF\0a\0,\0b", true);
        assert_eq!((be.text.as_str(), be.encoding), ("a,b", "utf-16be"));
        let latin = decode(b"caf\xE9", true);
        assert_eq!((latin.text.as_str(), latin.encoding), ("café", "latin-1"));
        // A sample cut inside a character is still UTF-8.
        let cut = decode("naïve".as_bytes().split_at(3).0, false);
        assert_eq!((cut.text.as_str(), cut.encoding), ("na", "utf-8"));
    }
}
