//! NDJSON events from a file or stdin, one per line, with their line numbers
//! (the file source's offsets).

use std::io::{BufRead, BufReader, Read};

/// Reads lines as raw bytes (an event may be invalid UTF-8; the decoder
/// rejects it with a reason instead of the reader failing), each at most a
/// byte limit long: a longer line is returned cut, with its length, so
/// memory stays bounded whatever the input holds.
pub struct LineSource<R> {
    reader: BufReader<R>,
    line_no: u64,
    bytes: u64,
    buf: Vec<u8>,
    max: usize,
}

/// One non-empty line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based.
    pub no: u64,
    /// The line without surrounding whitespace; its first `max` bytes when
    /// it was longer.
    pub bytes: &'a [u8],
    /// The line's whole length when it was longer than the limit.
    pub cut_from: Option<u64>,
}

impl<R: Read> LineSource<R> {
    /// Lines of at most `max` bytes (line end excluded).
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 20, inner),
            line_no: 0,
            bytes: 0,
            buf: Vec::with_capacity(4096),
            max,
        }
    }

    /// Bytes read so far (blank lines and line ends included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next non-empty line; `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        loop {
            self.buf.clear();
            // One byte beyond the limit (and its line end) tells a line at
            // the limit from a longer one.
            let limit = self.max as u64 + 2;
            let n = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line_no += 1;
            let mut cut_from = None;
            if self.buf.last() != Some(&b'\n') && n as u64 == limit {
                // Too long: the rest of the line is read past, not kept.
                let mut rest = 0u64;
                loop {
                    let available = self.reader.fill_buf()?;
                    if available.is_empty() {
                        break;
                    }
                    match available.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            self.reader.consume(i + 1);
                            rest += i as u64;
                            self.bytes += 1;
                            break;
                        }
                        None => {
                            let len = available.len();
                            self.reader.consume(len);
                            rest += len as u64;
                        }
                    }
                }
                self.bytes += rest;
                cut_from = Some(n as u64 + rest);
                self.buf.truncate(self.max);
            }
            let start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
            if let Some(start) = start {
                let end = self
                    .buf
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(start, |e| e + 1);
                return Ok(Some(Line {
                    no: self.line_no,
                    bytes: &self.buf[start..end],
                    cut_from,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blank_lines_and_counts_them() {
        let mut s = LineSource::new(&b"a\n\n  \nb\r\nc"[..], 100);
        let mut got = Vec::new();
        while let Some(l) = s.next_line().unwrap() {
            got.push((l.no, String::from_utf8(l.bytes.to_vec()).unwrap()));
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

    #[test]
    fn long_lines_are_cut_and_read_past() {
        let long = "x".repeat(5_000_000);
        let input = format!("{long}\nabc\n{}\n{long}", "y".repeat(10));
        let mut s = LineSource::new(input.as_bytes(), 10);
        let mut got = Vec::new();
        while let Some(l) = s.next_line().unwrap() {
            got.push((l.no, l.bytes.len(), l.cut_from));
            // Memory stays at the limit, not at the line.
            assert!(s.buf.capacity() < 1 << 16);
        }
        assert_eq!(
            got,
            [
                (1, 10, Some(5_000_000)),
                (2, 3, None),
                (3, 10, None),
                (4, 10, Some(5_000_000))
            ]
        );
        assert_eq!(s.bytes(), input.len() as u64);
    }
}
