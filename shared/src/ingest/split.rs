//! Splitting a CSV file into chunks at record boundaries, so that parts of one large file can
//! be read by several workers and give exactly the records of one sequential read.
//!
//! A record boundary cannot be found from an arbitrary offset (whether a newline is quoted
//! depends on every quote before it), so the splitter reads the file once from its start with
//! the state machine of the `csv` crate's reader (quotes open a quoted field only at a field's
//! start, `""` or the escape character inside one, comment lines, `\r`, `\n` and `\r\n` as
//! terminators) and cuts right after the terminator of a record, once a chunk has reached its
//! target size. Every chunk after the first is read with the header record in front of it.

use std::io::Read;

/// How a CSV file is written: what the reader is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvShape {
    /// The field delimiter.
    pub delimiter: u8,
    /// The quote character.
    pub quote: u8,
    /// The escape character inside quoted fields; `None`: a doubled quote.
    pub escape: Option<u8>,
    /// The character that starts a comment line.
    pub comment: Option<u8>,
}

/// One chunk: bytes `start..end` of the file, whose first byte is on line `first_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The chunk's first byte.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// The file's line (from 1) the chunk starts on.
    pub first_line: u64,
}

/// Where a CSV file splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvChunks {
    /// One past the header record's terminator (0 for an empty file): bytes `0..header_end`
    /// go in front of every chunk after the first.
    pub header_end: u64,
    /// The chunks, in order, covering the file; the first starts at 0 and holds the header.
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    EscapeInQuoted,
    QuoteInQuoted,
    Comment,
}

/// The chunks cut so far, and where the next one starts.
struct Cuts {
    target: u64,
    chunks: Vec<Chunk>,
    start: u64,
    first_line: u64,
}

impl Cuts {
    fn new(target: u64) -> Cuts {
        Cuts { target: target.max(1), chunks: Vec::new(), start: 0, first_line: 1 }
    }

    /// A record ends at `end` (exclusive), the next byte on line `line`: a cut when the chunk
    /// has reached its target size.
    fn record_end(&mut self, end: u64, line: u64) {
        if end - self.start >= self.target {
            self.chunks.push(Chunk { start: self.start, end, first_line: self.first_line });
            (self.start, self.first_line) = (end, line);
        }
    }

    /// The chunks, the last up to `len`.
    fn finish(mut self, len: u64) -> Vec<Chunk> {
        if len > self.start || self.chunks.is_empty() {
            self.chunks.push(Chunk { start: self.start, end: len, first_line: self.first_line });
        }
        self.chunks
    }
}

/// Calls `each` with every block `reader` reads, then returns how many bytes it read.
fn read_blocks(mut reader: impl Read, mut each: impl FnMut(u64, &[u8])) -> std::io::Result<u64> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut offset = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => return Ok(offset),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        each(offset, &buffer[..read]);
        offset += read as u64;
    }
}

/// Splits what `reader` reads into chunks of at least `target` bytes each (the last may be
/// smaller), cut only right after a record's terminator.
pub fn csv_chunks(reader: impl Read, shape: CsvShape, target: u64) -> std::io::Result<CsvChunks> {
    let mut state = State::StartRecord;
    let mut header_end = None;
    let mut cuts = Cuts::new(target);
    let mut lines = 1u64;
    let len = read_blocks(reader, |block_start, block| {
        for (index, &byte) in block.iter().enumerate() {
            let offset = block_start + index as u64 + 1;
            let before = state;
            let ended = step(&mut state, byte, shape);
            if byte == b'\n' {
                lines += 1;
            }
            if !ended || matches!(before, State::StartRecord | State::Comment) {
                continue;
            }
            // The first record (blank and comment lines before it are no record) is the
            // header. A cut goes right after the terminator of a record with content (its `\r`
            // when `\r\n`), where the reader starts its next record: the blank or comment
            // lines after it belong to the next record's start, as in one sequential read.
            match header_end {
                None => header_end = Some(offset),
                Some(_) => cuts.record_end(offset, lines),
            }
        }
    })?;
    Ok(CsvChunks { header_end: header_end.unwrap_or(len), chunks: cuts.finish(len) })
}

/// Splits NDJSON into chunks of at least `target` bytes each (the last may be smaller), cut
/// right after a newline: the reader reads a line at a time, so any newline is a record's end.
/// (`header_end` is 0: NDJSON has no header.)
pub fn ndjson_chunks(reader: impl Read, target: u64) -> std::io::Result<CsvChunks> {
    let mut cuts = Cuts::new(target);
    let mut lines = 1u64;
    let len = read_blocks(reader, |block_start, block| {
        for newline in memchr::memchr_iter(b'\n', block) {
            lines += 1;
            cuts.record_end(block_start + newline as u64 + 1, lines);
        }
    })?;
    Ok(CsvChunks { header_end: 0, chunks: cuts.finish(len) })
}

/// Advances the reader's state by `byte`; true when `byte` ends a record.
fn step(state: &mut State, byte: u8, shape: CsvShape) -> bool {
    let terminator = byte == b'\n' || byte == b'\r';
    let (next, ended) = match *state {
        State::StartRecord if Some(byte) == shape.comment => (State::Comment, false),
        State::StartRecord | State::StartField => match byte {
            _ if terminator => (State::StartRecord, true),
            _ if byte == shape.quote => (State::InQuoted, false),
            _ if byte == shape.delimiter => (State::StartField, false),
            _ => (State::InField, false),
        },
        State::InField => match byte {
            _ if terminator => (State::StartRecord, true),
            _ if byte == shape.delimiter => (State::StartField, false),
            _ => (State::InField, false),
        },
        State::InQuoted => match byte {
            _ if Some(byte) == shape.escape => (State::EscapeInQuoted, false),
            _ if byte == shape.quote => (State::QuoteInQuoted, false),
            _ => (State::InQuoted, false),
        },
        State::EscapeInQuoted => (State::InQuoted, false),
        State::QuoteInQuoted => match byte {
            _ if byte == shape.quote && shape.escape.is_none() => (State::InQuoted, false),
            _ if terminator => (State::StartRecord, true),
            _ if byte == shape.delimiter => (State::StartField, false),
            _ => (State::InField, false),
        },
        State::Comment => match byte {
            b'\n' => (State::StartRecord, true),
            _ => (State::Comment, false),
        },
    };
    *state = next;
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHAPE: CsvShape = CsvShape { delimiter: b',', quote: b'"', escape: None, comment: None };

    /// The line ingest gives a record the reader places at `position`: one more than the
    /// newlines up to and including it.
    fn line(bytes: &[u8], position: u64) -> u64 {
        let end = (position as usize + 1).min(bytes.len());
        1 + bytes[..end].iter().filter(|byte| **byte == b'\n').count() as u64
    }

    /// Every record of `bytes` with the byte it starts at, read as ingest reads CSV.
    fn records(bytes: &[u8], shape: CsvShape) -> Vec<(Vec<Vec<u8>>, u64)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(shape.delimiter)
            .quote(shape.quote)
            .double_quote(shape.escape.is_none())
            .escape(shape.escape)
            .comment(shape.comment)
            .from_reader(bytes);
        let mut out = Vec::new();
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).unwrap_or(false) {
            let byte = record.position().map_or(0, |position| position.byte());
            out.push((record.iter().map(<[u8]>::to_vec).collect(), byte));
        }
        out
    }

    /// The records of the chunks, each after the first read behind the header, with their
    /// bytes counted from the chunk's start: what the workers would read. Each chunk's first
    /// line is the file's line of its first byte.
    fn chunked_lines(bytes: &[u8], shape: CsvShape, target: u64) -> Vec<(Vec<Vec<u8>>, u64)> {
        chunked_records(bytes, shape, target).into_iter().map(|(fields, byte)| (fields, line(bytes, byte))).collect()
    }

    fn whole_lines(bytes: &[u8], shape: CsvShape) -> Vec<(Vec<Vec<u8>>, u64)> {
        records(bytes, shape).into_iter().map(|(fields, byte)| (fields, line(bytes, byte))).collect()
    }

    fn chunked_records(bytes: &[u8], shape: CsvShape, target: u64) -> Vec<(Vec<Vec<u8>>, u64)> {
        let split = csv_chunks(bytes, shape, target).expect("split");
        let header = &bytes[..split.header_end as usize];
        let header_records = records(header, shape).len();
        let mut out = Vec::new();
        for (index, chunk) in split.chunks.iter().enumerate() {
            let part = &bytes[chunk.start as usize..chunk.end as usize];
            if index == 0 {
                out.extend(records(part, shape));
                continue;
            }
            let lines_before = bytes[..chunk.start as usize].iter().filter(|byte| **byte == b'\n').count() as u64;
            assert_eq!(chunk.first_line, lines_before + 1, "{chunk:?}");
            let mut framed = header.to_vec();
            framed.extend_from_slice(part);
            for (fields, byte) in records(&framed, shape).into_iter().skip(header_records) {
                out.push((fields, byte - split.header_end + chunk.start));
            }
        }
        out
    }

    #[test]
    fn quoted_newlines_and_comments_stay_inside_their_chunk() {
        let text = b"id,note\n1,\"two\nlines\"\n2,plain\n#a comment, \"with a quote\n3,\"a \"\"quoted\"\"\nthing\"\n4,5\" screen\n";
        for target in 1..text.len() as u64 {
            assert_eq!(
                chunked_lines(text, CsvShape { comment: Some(b'#'), ..SHAPE }, target),
                whole_lines(text, CsvShape { comment: Some(b'#'), ..SHAPE }),
                "target {target}"
            );
        }
        let split = csv_chunks(&text[..], SHAPE, 1).expect("split");
        assert_eq!(split.header_end, 8);
        assert!(split.chunks.len() > 3, "{split:?}");
        assert!(split.chunks.windows(2).all(|pair| pair[0].end == pair[1].start));
    }

    #[test]
    fn an_empty_file_and_a_header_alone_are_one_chunk() {
        assert_eq!(
            csv_chunks(&b""[..], SHAPE, 10).expect("split"),
            CsvChunks { header_end: 0, chunks: vec![Chunk { start: 0, end: 0, first_line: 1 }] }
        );
        assert_eq!(csv_chunks(&b"a,b\n"[..], SHAPE, 1).expect("split").chunks.len(), 1);
    }

    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Bytes CSV is made of, weighted so that quotes, delimiters and terminators are common.
        let byte = prop_oneof![
            4 => Just(b'a'),
            1 => Just(b'b'),
            2 => Just(b','),
            1 => Just(b';'),
            2 => Just(b'"'),
            1 => Just(b'\''),
            1 => Just(b'\\'),
            1 => Just(b'#'),
            2 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(b' '),
        ];
        proptest::collection::vec(byte, 0..300)
    }

    fn shapes() -> impl Strategy<Value = CsvShape> {
        (
            prop_oneof![Just(b','), Just(b';')],
            prop_oneof![Just(b'"'), Just(b'\'')],
            prop_oneof![Just(None), Just(Some(b'\\'))],
            prop_oneof![Just(None), Just(Some(b'#'))],
        )
            .prop_map(|(delimiter, quote, escape, comment)| CsvShape { delimiter, quote, escape, comment })
    }

    /// The lines of `bytes` as `read_until(b'\\n')` gives them, with their line numbers.
    fn ndjson_lines(bytes: &[u8], first_line: u64) -> Vec<(Vec<u8>, u64)> {
        bytes
            .split_inclusive(|byte| *byte == b'\n')
            .zip(first_line..)
            .map(|(line, number)| (line.to_vec(), number))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

        /// Any bytes, any shape, any target: the chunks read one after the other give the
        /// records of the whole file, on the lines ingest gives them.
        #[test]
        fn chunks_read_as_the_whole_file(bytes in csv_bytes(), shape in shapes(), target in 1u64..64) {
            prop_assert_eq!(chunked_lines(&bytes, shape, target), whole_lines(&bytes, shape));
        }

        /// NDJSON: the chunks' lines, numbered from each chunk's first line, are the file's.
        #[test]
        fn ndjson_chunks_hold_the_files_lines(bytes in csv_bytes(), target in 1u64..64) {
            let split = ndjson_chunks(&bytes[..], target).expect("split");
            let mut lines = Vec::new();
            for chunk in &split.chunks {
                lines.extend(ndjson_lines(&bytes[chunk.start as usize..chunk.end as usize], chunk.first_line));
            }
            prop_assert_eq!(lines, ndjson_lines(&bytes, 1));
            prop_assert!(split.chunks.iter().all(|chunk| chunk.end == bytes.len() as u64 || chunk.end - chunk.start >= target));
        }
    }
}
