//! Reading rows of `COPY (…) TO STDOUT (FORMAT binary)` as they arrive, into typed values.

use super::{POSTGRES_EPOCH_MICROS, SIGNATURE, read_u32};
use crate::warehouse::cells::{Kind, Value};
use crate::{Error, Result};

/// Decodes the chunks of a binary `COPY … TO STDOUT` into rows of [`Value`]s as `kinds` say.
pub(crate) struct BinaryRows<'k> {
    what: &'k str,
    kinds: &'k [Kind],
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
    rows: Vec<Vec<Value>>,
}

impl<'k> BinaryRows<'k> {
    /// `what` names the read in errors.
    pub(crate) fn new(what: &'k str, kinds: &'k [Kind]) -> BinaryRows<'k> {
        BinaryRows { what, kinds, pending: Vec::new(), header_read: false, ended: false, rows: Vec::new() }
    }

    fn error(&self, problem: &str) -> Error {
        Error::load_step(self.what, format!("the warehouse's binary COPY {problem}"))
    }

    /// Takes the next chunk of the stream, decoding every tuple it completes.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        if !self.header_read {
            let Some(header) = self.pending.get(..SIGNATURE.len() + 8) else {
                return Ok(());
            };
            if &header[..SIGNATURE.len()] != SIGNATURE {
                return Err(self.error("does not start with its signature"));
            }
            let extension = read_u32(&header[SIGNATURE.len() + 4..]) as usize;
            if self.pending.len() < SIGNATURE.len() + 8 + extension {
                return Ok(());
            }
            at = SIGNATURE.len() + 8 + extension;
            self.header_read = true;
        }
        while !self.ended {
            match self.tuple(at)? {
                Tuple::Row(row, next) => {
                    self.rows.push(row);
                    at = next;
                }
                Tuple::End(next) => {
                    self.ended = true;
                    at = next;
                }
                Tuple::Partial => break,
            }
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// The tuple starting at `at`.
    fn tuple(&self, at: usize) -> Result<Tuple> {
        let bytes = &self.pending;
        let Some(count) = bytes.get(at..at + 2) else {
            return Ok(Tuple::Partial);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Tuple::End(at + 2));
        }
        if count as usize != self.kinds.len() {
            return Err(self.error(&format!("has {count} fields where {} were asked for", self.kinds.len())));
        }
        let mut row = Vec::with_capacity(self.kinds.len());
        let mut next = at + 2;
        for kind in self.kinds {
            let Some(length) = bytes.get(next..next + 4) else {
                return Ok(Tuple::Partial);
            };
            let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
            next += 4;
            if length < 0 {
                row.push(self.value(None, *kind)?);
                continue;
            }
            let Some(value) = bytes.get(next..next + length as usize) else {
                return Ok(Tuple::Partial);
            };
            row.push(self.value(Some(value), *kind)?);
            next += length as usize;
        }
        Ok(Tuple::Row(row, next))
    }

    fn value(&self, field: Option<&[u8]>, kind: Kind) -> Result<Value> {
        Ok(match kind {
            Kind::Text => Value::Text(match field {
                Some(bytes) => {
                    Some(std::str::from_utf8(bytes).map_err(|_| self.error("sent text that is not UTF-8"))?.to_string())
                }
                None => None,
            }),
            Kind::Integer => Value::Integer(match field {
                Some(bytes) => Some(match bytes.len() {
                    8 => i64::from_be_bytes(bytes.try_into().map_err(|_| self.error("sent a short integer"))?),
                    4 => i64::from(read_u32(bytes) as i32),
                    2 => i64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
                    _ => return Err(self.error("sent an integer of an unexpected width")),
                }),
                None => None,
            }),
            Kind::Instant => Value::Instant(match field {
                Some(bytes) => {
                    let micros = i64::from_be_bytes(
                        bytes.try_into().map_err(|_| self.error("sent a timestamp of an unexpected width"))?,
                    );
                    if micros == i64::MAX || micros == i64::MIN {
                        return Err(self.error(
                            "sent an infinite timestamp: set the row's validity to a real instant (or NULL while open)",
                        ));
                    }
                    Some(
                        micros
                            .checked_add(POSTGRES_EPOCH_MICROS)
                            .ok_or_else(|| self.error("sent a timestamp out of range"))?,
                    )
                }
                None => None,
            }),
            Kind::Hash => Value::Hash(field.and_then(crate::warehouse::codec::stored_hash)),
        })
    }

    /// The rows decoded so far and not yet taken.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, Vec<Value>> {
        self.rows.drain(..)
    }

    /// The rows not yet taken, once the stream has ended.
    pub(crate) fn finish(self) -> Result<Vec<Vec<Value>>> {
        if !self.ended {
            return Err(self.error("ended before its end marker"));
        }
        Ok(self.rows)
    }
}

/// What starts at an offset of the pending bytes.
enum Tuple {
    /// A row, and the offset after it.
    Row(Vec<Value>, usize),
    /// The end marker, and the offset after it.
    End(usize),
    /// Only part of a tuple: wait for the next chunk.
    Partial,
}
