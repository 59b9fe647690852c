//! An extraction's pages: NDJSON lines gzip-compressed into pages of at most `page_size` rows
//! (and 64 MiB of JSON), each written under its key, recorded in the source's state with its
//! SHA-256, and not written again when the state already records those bytes under that key.

use std::io::{Read, Seek, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{Extractor, SourceState};
use crate::contract::source::Source;
use crate::{Error, Result};

/// The most JSON one page holds before it is closed, whatever its rows.
const PAGE_BYTES: usize = 64 << 20;

/// One written page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Its landing key.
    pub key: String,
    /// Its rows.
    pub rows: u64,
    /// The SHA-256 of its bytes (the gzip file), hex.
    pub sha256: String,
}

/// Pages being written: at once (databases, whose range is known before the first row) or
/// spooled to temporary files and written by [`Pages::commit`] (HTTP, which knows whether it
/// found anything new only at the end).
pub(super) struct Pages<'a> {
    extractor: &'a Extractor,
    source: &'a Source,
    stop_after: Option<usize>,
    spool: Option<Vec<(Page, std::fs::File)>>,
    page: GzEncoder<Vec<u8>>,
    rows: u64,
    bytes: usize,
    number: usize,
    /// Pages this call wrote (not found written).
    pub(super) written: usize,
}

impl<'a> Pages<'a> {
    pub(super) fn new(
        extractor: &'a Extractor,
        source: &'a Source,
        stop_after: Option<usize>,
        spool: bool,
    ) -> Pages<'a> {
        Pages {
            extractor,
            source,
            stop_after,
            spool: spool.then(Vec::new),
            page: GzEncoder::new(Vec::new(), Compression::fast()),
            rows: 0,
            bytes: 0,
            number: 0,
            written: 0,
        }
    }

    /// Adds one record, a JSON object's text on one line; closes the page when it is full.
    pub(super) async fn push(&mut self, state: &mut SourceState, line: &str) -> Result<()> {
        let line: std::borrow::Cow<str> =
            if line.contains(['\n', '\r']) { crate::ingest::compact_json(line).into() } else { line.into() };
        self.page.write_all(line.as_bytes()).and_then(|()| self.page.write_all(b"\n")).map_err(Error::temp_io)?;
        self.rows += 1;
        self.bytes += line.len() + 1;
        if self.rows as usize >= self.source.page_size || self.bytes >= PAGE_BYTES {
            self.close(state).await?;
        }
        Ok(())
    }

    /// Closes the page being filled, if it has rows: writes it (or spools it).
    pub(super) async fn close(&mut self, state: &mut SourceState) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let encoder = std::mem::replace(&mut self.page, GzEncoder::new(Vec::new(), Compression::fast()));
        let bytes = encoder.finish().map_err(Error::temp_io)?;
        self.number += 1;
        let range =
            &state.pending.as_ref().ok_or_else(|| Error::Internal("a page outside an extraction".to_string()))?.range;
        let page = Page {
            key: self.source.page_key(range, self.number),
            rows: std::mem::take(&mut self.rows),
            sha256: hex(&sha2::Sha256::digest(&bytes)),
        };
        self.bytes = 0;
        match &mut self.spool {
            Some(spool) => {
                let mut file = tempfile::tempfile().map_err(Error::temp_io)?;
                file.write_all(&bytes).map_err(Error::temp_io)?;
                spool.push((page, file));
                Ok(())
            }
            None => self.write(state, page, bytes).await,
        }
    }

    /// Writes the spooled pages (after [`Pages::close`]).
    pub(super) async fn commit(&mut self, state: &mut SourceState) -> Result<()> {
        for (page, mut file) in self.spool.take().unwrap_or_default() {
            let mut bytes = Vec::new();
            file.rewind().and_then(|()| file.read_to_end(&mut bytes)).map_err(Error::temp_io)?;
            self.write(state, page, bytes).await?;
        }
        Ok(())
    }

    async fn write(&mut self, state: &mut SourceState, page: Page, bytes: Vec<u8>) -> Result<()> {
        if state.recorded(&page.key) != Some(&page) {
            self.extractor.lake.put_bytes(&page.key, bytes, "application/x-ndjson").await?;
            self.written += 1;
        }
        let pending =
            state.pending.as_mut().ok_or_else(|| Error::Internal("a page outside an extraction".to_string()))?;
        pending.pages.retain(|known| known.key != page.key);
        pending.pages.push(page);
        self.extractor.save(state).await?;
        let pages = state.pending.as_ref().map_or(0, |pending| pending.pages.len());
        if self.stop_after.is_some_and(|stop| pages >= stop) {
            return Err(super::unavailable(
                self.source,
                format!("stopped after {pages} page(s), as asked (a testing aid); extract again to resume"),
            ));
        }
        Ok(())
    }

    /// Pages written or spooled.
    pub(super) fn count(&self) -> usize {
        self.number
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
