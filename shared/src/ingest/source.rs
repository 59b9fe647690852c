//! Opening a landing file: decompression and text decoding decided by its first bytes and
//! the contract, all streaming.

use std::io::{BufRead, BufReader, Read};

use crate::contract::{Dataset, Format};

/// The read buffer: big enough for few system calls, small against a Lambda's memory.
const BUFFER: usize = 256 * 1024;

/// What a landing file holds once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Delimited text.
    Csv,
    /// A JSON array or a sequence of JSON objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

impl SourceFormat {
    /// The name shown in the stage's output.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Csv => "csv",
            SourceFormat::Json => "json",
            SourceFormat::Ndjson => "ndjson",
            SourceFormat::Parquet => "parquet",
        }
    }
}

/// An opened landing file: a buffered byte stream, gzip already undone, and its format.
pub struct Source {
    /// The decompressed bytes.
    pub reader: Box<dyn BufRead + Send>,
    /// The format the contract and the bytes say.
    pub format: SourceFormat,
    /// Whether the object was gzip-compressed.
    pub gzip: bool,
}

/// Opens a landing file: gzip is recognised by its magic bytes, Parquet by `PAR1`, and
/// otherwise the contract's format (or the key's extension) decides.
pub fn open(reader: impl Read + Send + 'static, key: &str, dataset: &Dataset) -> std::io::Result<Source> {
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(BUFFER, reader));
    let gzip = starts_with(&mut reader, &[0x1f, 0x8b])?;
    if gzip {
        reader = Box::new(BufReader::with_capacity(BUFFER, flate2::bufread::MultiGzDecoder::new(reader)));
    }
    let format = if starts_with(&mut reader, b"PAR1")? {
        SourceFormat::Parquet
    } else {
        declared_format(dataset.config.format, key)
    };
    Ok(Source { reader, format, gzip })
}

/// The format the contract declares, or the one the key's extension implies.
pub fn declared_format(format: Format, key: &str) -> SourceFormat {
    match format {
        Format::Csv => SourceFormat::Csv,
        Format::Json => SourceFormat::Json,
        Format::Ndjson => SourceFormat::Ndjson,
        Format::Parquet => SourceFormat::Parquet,
        Format::Auto => {
            let lower = key.to_ascii_lowercase();
            let name = lower.strip_suffix(".gz").unwrap_or(&lower);
            if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
                SourceFormat::Ndjson
            } else if name.ends_with(".json") {
                SourceFormat::Json
            } else if name.ends_with(".parquet") {
                SourceFormat::Parquet
            } else {
                SourceFormat::Csv
            }
        }
    }
}

/// Text decoding: UTF-8 passes through untouched (invalid bytes are caught row by row, so
/// one bad row does not sink the file), a byte-order mark is dropped, and other encodings
/// (declared in the contract, or UTF-16 announced by a BOM) are decoded to UTF-8.
pub fn decode(reader: Box<dyn BufRead + Send>, dataset: &Dataset) -> Box<dyn BufRead + Send> {
    let declared = (dataset.encoding != encoding_rs::UTF_8).then_some(dataset.encoding);
    let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(declared)
        .bom_override(true)
        .utf8_passthru(true)
        .build(reader);
    Box::new(BufReader::with_capacity(BUFFER, decoder))
}

fn starts_with(reader: &mut Box<dyn BufRead + Send>, magic: &[u8]) -> std::io::Result<bool> {
    let buffer = reader.fill_buf()?;
    Ok(buffer.starts_with(magic))
}
