//! A session file as an append-only log: each save appends one framed
//! record (the session's whole JSON form, then a trailer line with its length
//! and CRC-32), and the last record that checks is the session. An append is
//! one durable write, where replacing the file takes two; a crash in the
//! middle of one leaves a torn tail that readers skip, never a changed
//! earlier record.
//!
//! ```text
//! { ...session JSON, ending in a newline... }
//! #warden-record <JSON length in bytes> <CRC-32 of the JSON, 8 hex digits>
//! ```
//!
//! A file with no trailer anywhere is the earlier layout (the JSON alone).

use std::ops::Range;

/// What starts a trailer line.
const TAG: &[u8] = b"#warden-record ";
/// The longest trailer: the tag, 20 digits, a space, 8 hex digits, a newline.
pub const MAX_TRAILER: usize = TAG.len() + 20 + 1 + 8 + 1;

/// One record: `json` (a newline is added if it does not end in one), then its trailer.
pub fn frame(json: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(json.len() + MAX_TRAILER + 1);
    record.extend_from_slice(json);
    if record.last() != Some(&b'\n') {
        record.push(b'\n');
    }
    let trailer = format!("{:08x}", crc32fast::hash(&record));
    let length = record.len();
    record.extend_from_slice(TAG);
    record.extend_from_slice(format!("{length} {trailer}\n").as_bytes());
    record
}

/// A trailer read from the end of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Length of the JSON the trailer closes, which ends where the trailer starts.
    pub json_len: u64,
    crc: u32,
    /// Length of the trailer line itself.
    pub len: usize,
}

impl Trailer {
    /// Whether `json` is the record this trailer closes.
    pub fn closes(&self, json: &[u8]) -> bool {
        json.len() as u64 == self.json_len && crc32fast::hash(json) == self.crc
    }
}

/// The trailer that `tail` (the last bytes of a file) ends with, if it ends
/// with a whole one that follows a newline.
pub fn trailer_at_end(tail: &[u8]) -> Option<Trailer> {
    let body = tail.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if start == 0 {
        return None;
    }
    let trailer = parse_trailer(&body[start..])?;
    Some(Trailer { len: tail.len() - start, ..trailer })
}

fn parse_trailer(line: &[u8]) -> Option<Trailer> {
    let rest = line.strip_prefix(TAG)?;
    let text = std::str::from_utf8(rest).ok()?;
    let (length, crc) = text.split_once(' ')?;
    if crc.len() != 8 || length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Trailer {
        json_len: length.parse().ok()?,
        crc: u32::from_str_radix(crc, 16).ok()?,
        len: line.len() + 1,
    })
}

/// How a whole file's bytes hold a session.
#[derive(Debug, PartialEq, Eq)]
pub enum Layout {
    /// The JSON of the last record that checks.
    Framed(Range<usize>),
    /// No trailer anywhere: the earlier layout, the whole file is the JSON.
    Plain,
    /// Trailers, none of which checks.
    Torn,
}

/// Find the session in a whole file: the last record whose trailer checks,
/// walking back over a torn tail.
pub fn layout(file: &[u8]) -> Layout {
    if let Some(trailer) = trailer_at_end(file)
        && let Some(start) = (file.len() - trailer.len).checked_sub(trailer.json_len as usize)
        && trailer.closes(&file[start..file.len() - trailer.len])
    {
        return Layout::Framed(start..file.len() - trailer.len);
    }
    let mut seen_trailer = false;
    let mut end = file.len();
    while let Some(at) = find_last(&file[..end], TAG) {
        end = at;
        if at == 0 || file[at - 1] != b'\n' {
            continue;
        }
        let line_end = match file[at..].iter().position(|&b| b == b'\n') {
            Some(i) => at + i,
            None => continue,
        };
        let Some(trailer) = parse_trailer(&file[at..line_end]) else { continue };
        seen_trailer = true;
        let Some(start) = (at as u64).checked_sub(trailer.json_len) else { continue };
        let json = start as usize..at;
        if trailer.closes(&file[json.clone()]) {
            return Layout::Framed(json);
        }
    }
    if seen_trailer { Layout::Torn } else { Layout::Plain }
}

/// The session JSON a whole file holds: its newest whole record, or all of
/// it in the earlier layout.
pub fn newest_json(file: &[u8]) -> Result<&[u8], String> {
    match layout(file) {
        Layout::Framed(range) => Ok(&file[range]),
        Layout::Plain => Ok(file),
        Layout::Torn => Err("no record in it is whole".into()),
    }
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut end = haystack.len();
    while let Some(at) = haystack[..end].iter().rposition(|&b| b == needle[0]) {
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        end = at;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(n: usize) -> Vec<u8> {
        format!("{{\n  \"n\": {n},\n  \"text\": \"{}\"\n}}\n", "x".repeat(n)).into_bytes()
    }

    #[test]
    fn the_last_record_wins() {
        let mut file = frame(&json(1));
        file.extend(frame(&json(2)));
        let Layout::Framed(range) = layout(&file) else { panic!() };
        assert_eq!(&file[range], &json(2)[..]);
        let trailer = trailer_at_end(&file).unwrap();
        let start = file.len() - trailer.len - trailer.json_len as usize;
        assert!(trailer.closes(&file[start..file.len() - trailer.len]));
    }

    #[test]
    fn a_torn_tail_is_skipped_and_the_next_append_is_found() {
        let mut file = frame(&json(1));
        let second = frame(&json(2));
        for cut in 1..second.len() {
            let mut torn = file.clone();
            torn.extend_from_slice(&second[..cut]);
            let Layout::Framed(range) = layout(&torn) else { panic!("cut {cut}") };
            assert_eq!(&torn[range], &json(1)[..], "cut {cut}");
            if let Some(trailer) = trailer_at_end(&torn) {
                let start = torn.len() - trailer.len - trailer.json_len as usize;
                assert!(!trailer.closes(&torn[start..torn.len() - trailer.len]), "cut {cut}");
            }
            torn.extend(frame(&json(3)));
            let Layout::Framed(range) = layout(&torn) else { panic!("cut {cut}") };
            assert_eq!(&torn[range], &json(3)[..], "cut {cut}");
        }
        file.extend(second);
        assert!(matches!(layout(&file), Layout::Framed(_)));
    }

    #[test]
    fn the_earlier_layout_and_garbage_are_told_apart() {
        assert_eq!(layout(&json(4)), Layout::Plain);
        assert_eq!(trailer_at_end(&json(4)), None);
        let mut flipped = frame(&json(5));
        flipped[3] ^= 1;
        assert_eq!(layout(&flipped), Layout::Torn);
        assert_eq!(layout(b"#warden-record 3 00000000\n"), Layout::Plain);
        assert_eq!(layout(b"\n#warden-record 99 00000000\n"), Layout::Torn);
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = layout(&bytes);
            let _ = trailer_at_end(&bytes);
        }

        #[test]
        fn a_record_after_any_garbage_is_found(garbage in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..50) {
            let mut file = garbage;
            file.extend(frame(&json(n)));
            let Layout::Framed(range) = layout(&file) else { panic!() };
            prop_assert_eq!(&file[range], &json(n)[..]);
        }
    }
}
