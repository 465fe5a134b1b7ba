//! TFRecord framing: `u64 length`, `u32 masked CRC-32C of the length`, the data,
//! `u32 masked CRC-32C of the data`, all little-endian.

/// Bytes before a record's data: the length and its checksum.
pub const HEADER_LEN: usize = 12;
/// Bytes after a record's data: its checksum.
pub const FOOTER_LEN: usize = 4;

/// CRC-32C of `data`, masked the way TFRecord stores it.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Appends one framed record holding `data` to `out`.
pub fn write_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A whole, intact record: its data, and how many bytes it takes in the buffer.
    Record {
        /// The record's payload.
        data: &'a [u8],
        /// Header, data and footer.
        consumed: usize,
    },
    /// Not all of the record is there yet (a file still being written): try again later.
    Incomplete,
    /// Bytes that fail their checksum: skip `skip` bytes and go on.
    Corrupt {
        /// Bytes to skip.
        skip: usize,
        /// What failed.
        why: &'static str,
    },
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn header_is_valid(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && masked_crc(&buf[..8]) == u32_at(buf, 8)
}

/// Reads the frame at the start of `buf`.
///
/// A record whose data checksum fails is skipped whole. A header whose checksum fails gives no
/// trustworthy length, so the reader resynchronises at the next offset where a valid header
/// starts (keeping a possible partial header at the end of the buffer for later).
pub fn frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < HEADER_LEN {
        return Frame::Incomplete;
    }
    if !header_is_valid(buf) {
        let skip = (1..=buf.len() - HEADER_LEN)
            .find(|&at| header_is_valid(&buf[at..]))
            .unwrap_or(buf.len() - HEADER_LEN + 1);
        return Frame::Corrupt {
            skip,
            why: "length checksum mismatch",
        };
    }
    let len = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(HEADER_LEN + FOOTER_LEN));
    let Some(consumed) = end else {
        return Frame::Corrupt {
            skip: 1,
            why: "impossible record length",
        };
    };
    if buf.len() < consumed {
        return Frame::Incomplete;
    }
    let data = &buf[HEADER_LEN..consumed - FOOTER_LEN];
    if masked_crc(data) != u32_at(buf, consumed - FOOTER_LEN) {
        return Frame::Corrupt {
            skip: consumed,
            why: "data checksum mismatch",
        };
    }
    Frame::Record { data, consumed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_cut_one_is_incomplete() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"hello");
        assert_eq!(
            frame(&buf),
            Frame::Record {
                data: b"hello",
                consumed: buf.len()
            }
        );
        for cut in 0..buf.len() {
            assert_eq!(frame(&buf[..cut]), Frame::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_header_resyncs_at_the_next_record() {
        let mut buf = vec![0xff; 5];
        write_record(&mut buf, b"next");
        assert_eq!(
            frame(&buf),
            Frame::Corrupt {
                skip: 5,
                why: "length checksum mismatch"
            }
        );
    }

    #[test]
    fn the_mask_matches_tensorflow() {
        // The masked CRC of an empty record's 8-byte zero length, as TensorFlow writes it.
        assert_eq!(
            masked_crc(&[0u8; 8]).to_le_bytes(),
            [0x29, 0x03, 0x98, 0x07]
        );
    }
}
