//! CSV landing files: dialect sniffing, header mapping, and rows to raw or to quarantine.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::rc::Rc;

use csv::{ByteRecord, ReaderBuilder, StringRecord};

use super::headers::HeaderMapper;
use super::raw::{ParseReject, RawWriter, RejectWriter};
use super::{Ingested, Progress};
use crate::contract::Dataset;
use crate::{Error, Result};

/// Delimiters tried when the contract says `auto`, most common first.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Picks the delimiter that occurs most often outside quotes in the first line; `,` when
/// none does.
pub fn sniff_delimiter(head: &[u8], quote: u8) -> u8 {
    let mut counts = [0usize; CANDIDATES.len()];
    let mut quoted = false;
    for &byte in head {
        match byte {
            b'\n' | b'\r' if !quoted => break,
            byte if byte == quote => quoted = !quoted,
            byte if !quoted => {
                if let Some(index) = CANDIDATES.iter().position(|&candidate| candidate == byte) {
                    counts[index] += 1;
                }
            }
            _ => {}
        }
    }
    let (index, &count) =
        counts.iter().enumerate().max_by_key(|&(index, &count)| (count, std::cmp::Reverse(index))).unwrap_or((0, &0));
    if count == 0 { b',' } else { CANDIDATES[index] }
}

/// Reads CSV rows into `raw`, quarantining what cannot be parsed.
pub fn read(
    mut reader: Box<dyn BufRead + Send>,
    dataset: &Dataset,
    key: &str,
    raw: &mut RawWriter,
    rejects: &mut RejectWriter,
    progress: &mut Progress,
) -> Result<Ingested> {
    let quote = dataset.config.csv.quote as u8;
    // The header line is read ahead (a decoder may hand out only a few bytes at a time),
    // sniffed when the contract leaves the delimiter to us, then put back in front.
    let mut head = Vec::new();
    reader.read_until(b'\n', &mut head).map_err(|error| unreadable(key, 1, &error))?;
    let delimiter = dataset.delimiter.unwrap_or_else(|| sniff_delimiter(&head, quote));
    let lines = LineIndex::default();
    let reader = LineCounting { inner: std::io::Cursor::new(head).chain(reader), lines: lines.clone(), offset: 0 };
    let csv_config = &dataset.config.csv;
    let mut csv = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quote(quote)
        .double_quote(csv_config.escape.is_none())
        .escape(csv_config.escape.map(|escape| escape as u8))
        .comment(csv_config.comment.map(|comment| comment as u8))
        .buffer_capacity(256 * 1024)
        .from_reader(reader);

    let mut record = ByteRecord::new();
    let mut mapper = HeaderMapper::new(dataset);
    let has_header = csv.read_byte_record(&mut record).map_err(|error| csv_unreadable(key, &error, 1))?;
    if !has_header {
        return Ok(Ingested { columns: Vec::new(), drift: mapper.drift() });
    }
    let headers: Vec<String> = record.iter().map(|field| String::from_utf8_lossy(field).trim().to_string()).collect();
    for header in &headers {
        let index = mapper.add(header);
        raw.add_column(&mapper.names()[index])?;
    }
    mapper.require(key, "line 1: the header")?;
    let width = record.len();

    loop {
        let more = match csv.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(error) => return Err(csv_unreadable(key, &error, progress.rows() + 1)),
        };
        if !more {
            break;
        }
        let line = lines.line_at(record.position().map_or(0, |position| position.byte()));
        // A lone empty field is a blank line inside the data, not a row.
        if width > 1 && record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        progress.row();
        if record.len() != width {
            rejects.push(ParseReject {
                line,
                reason: format!("parse:field_count(expected {width}, got {})", record.len()),
                raw: raw_text(&record, delimiter),
            })?;
            continue;
        }
        match StringRecord::from_byte_record(std::mem::take(&mut record)) {
            Ok(text) => {
                raw.push(line, text.iter().map(Some))?;
                record = text.into_byte_record();
            }
            Err(error) => {
                record = error.into_byte_record();
                rejects.push(ParseReject {
                    line,
                    reason: format!("parse:encoding(invalid {} bytes)", dataset.encoding.name()),
                    raw: raw_text(&record, delimiter),
                })?;
            }
        }
    }
    Ok(Ingested { columns: mapper.names().to_vec(), drift: mapper.drift() })
}

/// Where the newlines of the stream are, so that a record's byte offset gives its line.
///
/// The `csv` crate's own line count lags by one after a CRLF (it counts the `\n` when the
/// next record starts), so the line of a row is counted here, from the bytes themselves.
#[derive(Debug, Default, Clone)]
struct LineIndex(Rc<RefCell<LineState>>);

#[derive(Debug, Default)]
struct LineState {
    /// Newlines before the last offset asked for.
    before: u64,
    /// Offsets of newlines read but not yet passed by a record.
    ahead: VecDeque<u64>,
}

impl LineIndex {
    /// The 1-based line of the record starting at `offset`; offsets must not decrease. A
    /// newline at the offset itself ends the previous line (the `\n` of a CRLF, or a blank
    /// line the reader skipped).
    fn line_at(&self, offset: u64) -> u64 {
        let mut state = self.0.borrow_mut();
        while state.ahead.front().is_some_and(|&newline| newline <= offset) {
            state.ahead.pop_front();
            state.before += 1;
        }
        state.before + 1
    }
}

/// A reader that notes where every newline passes.
struct LineCounting<R> {
    inner: R,
    lines: LineIndex,
    offset: u64,
}

impl<R: Read> Read for LineCounting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let mut state = self.lines.0.borrow_mut();
        state.ahead.extend(memchr::memchr_iter(b'\n', &buffer[..read]).map(|index| self.offset + index as u64));
        self.offset += read as u64;
        Ok(read)
    }
}

/// The row as text, re-joined with its delimiter, for a person to read in quarantine.
fn raw_text(record: &ByteRecord, delimiter: u8) -> String {
    let mut out =
        csv::WriterBuilder::new().delimiter(delimiter).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let text = match out.write_byte_record(record).map_err(|_| ()).and_then(|()| out.into_inner().map_err(|_| ())) {
        Ok(bytes) => bytes,
        Err(()) => record.as_slice().to_vec(),
    };
    let mut text = String::from_utf8_lossy(&text).into_owned();
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

fn csv_unreadable(key: &str, error: &csv::Error, row: u64) -> Error {
    let place = match error.position() {
        Some(position) => format!("line {}", position.line()),
        None => format!("data row {row}"),
    };
    Error::UnreadableFile {
        key: key.to_string(),
        message: format!(
            "{place}: {error}; the file may be truncated or not in the declared format, so it was not ingested: fix or re-export it and drop it again"
        ),
    }
}

fn unreadable(key: &str, line: u64, error: &std::io::Error) -> Error {
    Error::UnreadableFile { key: key.to_string(), message: format!("line {line}: {error}") }
}

#[cfg(test)]
mod tests {
    use super::sniff_delimiter;

    #[test]
    fn sniffs_the_delimiter_of_the_first_line() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2;3;4;5", b'"'), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\r\n", b'"'), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc", b'"'), b'\t');
        assert_eq!(sniff_delimiter(b"\"a,1\"|\"b,2\"|c", b'"'), b'|');
        assert_eq!(sniff_delimiter(b"single", b'"'), b',');
        assert_eq!(sniff_delimiter(b"", b'"'), b',');
    }
}
