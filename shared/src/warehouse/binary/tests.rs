//! The binary `COPY` format both ways: decoding in any chunking, errors that name the read,
//! numerics, and staged cells as typed fields.

use super::encode::{decimal_text, push_numeric};
use super::*;
use crate::warehouse::cells::{Cells, Kind, StageBatch, Value};

/// A binary COPY stream of `rows`, each field `None` (null) or its bytes.
fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend(0u32.to_be_bytes());
    out.extend(4u32.to_be_bytes());
    out.extend(b"skip");
    for row in rows {
        out.extend((row.len() as i16).to_be_bytes());
        for field in row {
            match field {
                Some(bytes) => {
                    out.extend((bytes.len() as i32).to_be_bytes());
                    out.extend(bytes);
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
    }
    out.extend((-1i16).to_be_bytes());
    out
}

const KINDS: [Kind; 3] = [Kind::Integer, Kind::Text, Kind::Instant];

fn sample() -> Vec<u8> {
    // 2024-01-01T00:00:00.000001Z is 757 382 400 000 001 µs after 2000-01-01.
    stream(&[
        vec![
            Some(7i64.to_be_bytes().to_vec()),
            Some("C1001".into()),
            Some(757_382_400_000_001i64.to_be_bytes().to_vec()),
        ],
        vec![Some((-3i32).to_be_bytes().to_vec()), Some("Zoë, \"quoted\"\n".into()), None],
        vec![None, None, Some(0i64.to_be_bytes().to_vec())],
    ])
}

#[test]
fn rows_decode_in_any_chunking() {
    let bytes = sample();
    let expected = vec![
        vec![Value::Integer(Some(7)), Value::Text(Some("C1001".into())), Value::Instant(Some(1_704_067_200_000_001))],
        vec![Value::Integer(Some(-3)), Value::Text(Some("Zoë, \"quoted\"\n".into())), Value::Instant(None)],
        vec![Value::Integer(None), Value::Text(None), Value::Instant(Some(POSTGRES_EPOCH_MICROS))],
    ];
    for size in [1, 2, 3, 7, 16, bytes.len()] {
        let mut rows = BinaryRows::new("reading", &KINDS);
        for chunk in bytes.chunks(size) {
            rows.push(chunk).expect("decodes");
        }
        assert_eq!(rows.finish().expect("complete"), expected, "chunks of {size}");
    }
}

#[test]
fn a_cut_stream_a_wrong_width_or_an_infinite_instant_is_an_error_naming_the_read() {
    let bytes = sample();
    let mut rows = BinaryRows::new("reading versions", &KINDS);
    rows.push(&bytes[..bytes.len() - 2]).expect("decodes what is complete");
    let error = rows.finish().expect_err("no end marker").to_string();
    assert!(error.contains("reading versions") && error.contains("end marker"), "{error}");

    let wrong = stream(&[vec![Some(vec![1, 2, 3]), None, None]]);
    let error = BinaryRows::new("reading", &KINDS).push(&wrong).expect_err("3-byte integer").to_string();
    assert!(error.contains("integer of an unexpected width"), "{error}");

    let infinite = stream(&[vec![None, None, Some(i64::MAX.to_be_bytes().to_vec())]]);
    let error = BinaryRows::new("reading", &KINDS).push(&infinite).expect_err("infinity").to_string();
    assert!(error.contains("infinite timestamp"), "{error}");

    let error = BinaryRows::new("reading", &KINDS[..2]).push(&bytes).expect_err("three fields").to_string();
    assert!(error.contains("3 fields where 2"), "{error}");
    let error =
        BinaryRows::new("reading", &KINDS).push(b"PGCOPY\nnot the binary format").expect_err("signature").to_string();
    assert!(error.contains("signature"), "{error}");
}

/// A numeric field's header and digits.
fn numeric(negative: bool, digits: &str, scale: i32) -> (i16, i16, u16, u16, Vec<i16>) {
    let mut out = Vec::new();
    push_numeric(negative, digits, scale, &mut out).expect("fits");
    let word = |at: usize| [out[at], out[at + 1]];
    let length = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    let count = i16::from_be_bytes(word(4));
    assert_eq!(length, 8 + 2 * count as usize);
    let groups = (0..count as usize).map(|index| i16::from_be_bytes(word(12 + 2 * index))).collect();
    (count, i16::from_be_bytes(word(6)), u16::from_be_bytes(word(8)), u16::from_be_bytes(word(10)), groups)
}

#[test]
fn numerics_are_base_ten_thousand_digits_around_the_point() {
    assert_eq!(numeric(false, "1250", 2), (2, 0, 0, 2, vec![12, 5000]));
    assert_eq!(numeric(true, "5", 2), (1, -1, 0x4000, 2, vec![500]));
    assert_eq!(numeric(false, "1", 4), (1, -1, 0, 4, vec![1]));
    assert_eq!(numeric(false, "1", 5), (1, -2, 0, 5, vec![1000]));
    assert_eq!(numeric(false, "123", -2), (2, 1, 0, 0, vec![1, 2300]));
    assert_eq!(numeric(false, "100000000", 0), (1, 2, 0, 0, vec![1]));
    assert_eq!(numeric(true, "0", 2), (0, 0, 0, 2, vec![]), "zero has no sign");
    assert_eq!(decimal_text("-12.50"), Some((true, "1250".to_string(), 2)));
    assert_eq!(decimal_text("+.5"), Some((false, "5".to_string(), 1)));
    // Exponents, as a float's shortest text has them: 1.5e-7, 1e300, 2E+3.
    assert_eq!(decimal_text("1.5e-7"), Some((false, "15".to_string(), 8)));
    assert_eq!(decimal_text("-1e300"), Some((true, "1".to_string(), -300)));
    assert_eq!(decimal_text("2E+3"), Some((false, "2".to_string(), -3)));
    assert_eq!(numeric(false, "1", -300), (1, 75, 0, 0, vec![1]), "10^300 is 1 × 10000^75");
    for not_decimal in ["", "-", ".", "1e", "e5", "1e5.5", "1e-2000", "NaN", "Infinity", "1.2.3", "12a"] {
        assert_eq!(decimal_text(not_decimal), None, "{not_decimal}");
    }
}

#[test]
fn staged_cells_become_typed_fields_and_a_constant_is_the_same_in_every_row() {
    let columns = |wires: &[Wire]| BinaryColumns {
        table: "stage".to_string(),
        columns: wires.iter().enumerate().map(|(index, wire)| (format!("c{index}"), *wire)).collect(),
    };
    let typed = columns(&[Wire::Timestamptz, Wire::Int8, Wire::Text]);
    let batch = StageBatch {
        columns: vec![
            Cells::Texts(vec![Some("2000-01-01T00:00:00.000001Z".to_string()), None]),
            Cells::Integers(vec![Some(7), None]),
            Cells::Constant(Some("run-1".to_string())),
        ],
        rows: 2,
    };
    let mut out = header();
    typed.encode(&batch, &mut out).expect("encodes");
    out.extend(TRAILER);
    let mut rows = BinaryRows::new("reading", &[Kind::Instant, Kind::Integer, Kind::Text]);
    rows.push(&out).expect("decodes");
    assert_eq!(
        rows.finish().expect("complete"),
        vec![
            vec![
                Value::Instant(Some(POSTGRES_EPOCH_MICROS + 1)),
                Value::Integer(Some(7)),
                Value::Text(Some("run-1".to_string()))
            ],
            vec![Value::Instant(None), Value::Integer(None), Value::Text(Some("run-1".to_string()))],
        ]
    );

    // A date from its text: days since 2000-01-01.
    let dates = StageBatch { columns: vec![Cells::Texts(vec![Some("1999-12-31".to_string())])], rows: 1 };
    let mut out = Vec::new();
    columns(&[Wire::Date]).encode(&dates, &mut out).expect("encodes");
    assert_eq!(out, [[0, 1].as_slice(), &4i32.to_be_bytes(), &(-1i32).to_be_bytes()].concat());

    // Flags as the load writes them: one byte each.
    let flags = StageBatch {
        columns: vec![Cells::Constant(Some("1".to_string())), Cells::Texts(vec![Some("0".to_string())])],
        rows: 1,
    };
    let mut out = Vec::new();
    columns(&[Wire::Bool, Wire::Bool]).encode(&flags, &mut out).expect("encodes");
    assert_eq!(out, [0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]);

    // Instants and hashes as the dimension load holds them: the same fields as their text.
    let held = StageBatch {
        columns: vec![Cells::Instants(vec![Some(1), None, Some(i64::MAX)]), Cells::Hashes(vec![0xabc, 0, u128::MAX])],
        rows: 3,
    };
    let as_text = StageBatch {
        columns: vec![
            Cells::Texts(vec![Some("1970-01-01T00:00:00.000001Z".to_string()), None, None]),
            Cells::Texts(["0".repeat(29) + "abc", "0".repeat(32), "f".repeat(32)].into_iter().map(Some).collect()),
        ],
        rows: 3,
    };
    let (mut from_held, mut from_text) = (Vec::new(), Vec::new());
    let held_columns = columns(&[Wire::Timestamptz, Wire::Text]);
    held_columns.encode(&held, &mut from_held).expect("encodes");
    held_columns.encode(&as_text, &mut from_text).expect("encodes");
    assert_eq!(from_held, from_text, "an instant chrono cannot hold is a null, as its text is");

    // Hashes to a bytea column: their 16 bytes, big-endian, read back as the same hashes.
    let hashes = StageBatch { columns: vec![Cells::Hashes(vec![0xabc, u128::MAX])], rows: 2 };
    let mut out = header();
    columns(&[Wire::Bytea]).encode(&hashes, &mut out).expect("encodes");
    let first_row = [&[0, 1][..], &16i32.to_be_bytes(), &0xabc_u128.to_be_bytes()].concat();
    assert!(out[header().len()..].starts_with(&first_row), "one field of 16 bytes");
    out.extend(TRAILER);
    let mut rows = BinaryRows::new("reading", &[Kind::Hash]);
    rows.push(&out).expect("decodes");
    assert_eq!(
        rows.finish().expect("complete"),
        vec![vec![Value::Hash(Some(0xabc))], vec![Value::Hash(Some(u128::MAX))]]
    );
    let text = StageBatch { columns: vec![Cells::Texts(vec![Some("abc".to_string())])], rows: 1 };
    assert!(columns(&[Wire::Bytea]).encode(&text, &mut Vec::new()).is_err(), "only hashes go to bytea");

    let wrong = StageBatch { columns: vec![Cells::Constant(Some("maybe".to_string()))], rows: 1 };
    let error = columns(&[Wire::Timestamptz]).encode(&wrong, &mut Vec::new()).expect_err("no instant").to_string();
    assert!(error.contains("stage") && error.contains("`c0`") && !error.contains("maybe"), "{error}");
    let short = StageBatch { columns: vec![], rows: 1 };
    assert!(typed.encode(&short, &mut Vec::new()).is_err(), "a batch must have the COPY's columns");
}
