//! NDJSON events from a file or stdin, one per line, with their line numbers
//! (the file source's offsets).

use std::io::{BufRead, BufReader, Read};

/// Reads lines as raw bytes (an event may be invalid UTF-8; the decoder
/// rejects it with a reason instead of the reader failing).
pub struct LineSource<R> {
    reader: BufReader<R>,
    line_no: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl<R: Read> LineSource<R> {
    pub fn new(inner: R) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 20, inner),
            line_no: 0,
            bytes: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Bytes read so far (blank lines and line ends included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next non-empty line and its 1-based number; `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        loop {
            self.buf.clear();
            let n = self.reader.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line_no += 1;
            let start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
            if let Some(start) = start {
                let end = self
                    .buf
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(start, |e| e + 1);
                return Ok(Some((self.line_no, &self.buf[start..end])));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blank_lines_and_counts_them() {
        let mut s = LineSource::new(&b"a\n\n  \nb\r\nc"[..]);
        let mut got = Vec::new();
        while let Some((n, l)) = s.next_line().unwrap() {
            got.push((n, String::from_utf8(l.to_vec()).unwrap()));
        }
        assert_eq!(
            got,
            [
                (1, "a".to_owned()),
                (4, "b".to_owned()),
                (5, "c".to_owned())
            ]
        );
    }
}
