//! A deterministic generator of the retail example's sales data, with realistic PII (payment
//! card numbers that pass Luhn) and a configurable fraction of bad rows.

use std::io::Write;

/// The header of generated sales files: the example contract's `sales` columns.
pub const HEADER: &str =
    "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n";

/// A small, fast, seedable generator (xorshift64*): the same seed gives the same file.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A 16-digit card number that passes the Luhn check.
pub fn card_number(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = vec![4];
    while digits.len() < 15 {
        digits.push(rng.below(10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            if index % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|digit| char::from_digit(*digit, 10).unwrap_or('0')).collect()
}

/// What was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Data rows written (the header excluded).
    pub rows: u64,
    /// Rows deliberately made bad.
    pub bad: u64,
    /// Bytes written, header included.
    pub bytes: u64,
}

/// Writes sales rows until `rows` rows or `bytes` bytes are reached, whichever comes first.
pub fn sales(out: &mut impl Write, rows: u64, bytes: u64, bad_fraction: f64, seed: u64) -> std::io::Result<Generated> {
    let mut rng = Rng::new(seed);
    let mut generated = Generated { bytes: HEADER.len() as u64, ..Generated::default() };
    out.write_all(HEADER.as_bytes())?;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let mut line = String::with_capacity(160);
    let mut order = 0u64;
    while generated.rows < rows && generated.bytes < bytes {
        order += 1;
        let lines = 1 + rng.below(3);
        let day = start + chrono::Days::new(rng.below(365));
        let ship = day + chrono::Days::new(rng.below(5));
        let customer = rng.below(200_000);
        let store = 1 + rng.below(40);
        let card = card_number(&mut rng);
        let channel = if rng.chance(0.3) { "web" } else { "store" };
        for number in 1..=lines {
            line.clear();
            let product = 1 + rng.below(999);
            let quantity = 1 + rng.below(12);
            let price = format!("{}.{:02}", rng.below(200), rng.below(100));
            let mut fields = [
                format!("O{order:09}"),
                number.to_string(),
                day.format("%Y-%m-%d").to_string(),
                ship.format("%Y-%m-%d").to_string(),
                format!("C{customer:06}"),
                format!("P{product:03}"),
                format!("S{store:02}"),
                quantity.to_string(),
                price,
                card.clone(),
                channel.to_string(),
            ];
            let bad = rng.chance(bad_fraction);
            let mut short = false;
            if bad {
                generated.bad += 1;
                match rng.below(6) {
                    0 => fields[7] = "0".to_string(),
                    1 => fields[2] = day.format("%d/%m/%Y").to_string(),
                    2 => fields[3] = (day - chrono::Days::new(3)).format("%Y-%m-%d").to_string(),
                    3 => fields[8] = "n/a".to_string(),
                    4 => fields[10] = "phone".to_string(),
                    _ => short = true,
                }
            }
            let count = if short { fields.len() - 2 } else { fields.len() };
            line.push_str(&fields[..count].join(","));
            line.push('\n');
            out.write_all(line.as_bytes())?;
            generated.rows += 1;
            generated.bytes += line.len() as u64;
            if generated.rows >= rows || generated.bytes >= bytes {
                break;
            }
        }
    }
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_pass_luhn_and_files_are_deterministic() {
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let card = card_number(&mut rng);
            let digits: Vec<u8> = card.bytes().map(|byte| byte - b'0').collect();
            assert!(lakestar::mask::scan::luhn(&digits), "{card}");
        }
        let mut a = Vec::new();
        let mut b = Vec::new();
        let first = sales(&mut a, 1000, u64::MAX, 0.1, 42).expect("write");
        sales(&mut b, 1000, u64::MAX, 0.1, 42).expect("write");
        assert_eq!(a, b);
        assert_eq!(first.rows, 1000);
        assert!(first.bad > 50 && first.bad < 150, "{first:?}");
        assert_eq!(first.bytes, a.len() as u64);
    }
}
