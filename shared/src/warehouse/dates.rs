//! `dim_date`: a calendar without gaps from the earliest to the latest date any fact uses,
//! generated, never loaded from files.

use chrono::{Datelike, NaiveDate, Weekday};

use super::tx::Tx;
use crate::contract::CalendarConfig;
use crate::{Error, Result};

/// One row of `dim_date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    /// `YYYYMMDD` as an integer, the key facts reference.
    pub date_key: i32,
    /// The date.
    pub date: NaiveDate,
    /// Calendar year.
    pub year: i32,
    /// Quarter, 1 to 4.
    pub quarter: i32,
    /// Month, 1 to 12.
    pub month: i32,
    /// `January` … `December`.
    pub month_name: &'static str,
    /// Day of the month.
    pub day: i32,
    /// ISO day of the week, Monday = 1 … Sunday = 7.
    pub day_of_week: i32,
    /// `Monday` … `Sunday`.
    pub day_name: &'static str,
    /// ISO week number.
    pub iso_week: i32,
    /// Saturday or Sunday.
    pub is_weekend: bool,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `YYYYMMDD` of a date as an integer: the key of `dim_date` that facts reference (cheap, as
/// it runs once per fact row).
pub fn date_key(date: NaiveDate) -> i32 {
    date.year() * 10_000 + date.month() as i32 * 100 + date.day() as i32
}

impl DateRow {
    /// The row of a date.
    pub fn of(date: NaiveDate) -> DateRow {
        let weekday = date.weekday();
        DateRow {
            date_key: date_key(date),
            date,
            year: date.year(),
            quarter: (date.month0() / 3 + 1) as i32,
            month: date.month() as i32,
            month_name: MONTHS[date.month0() as usize],
            day: date.day() as i32,
            day_of_week: weekday.number_from_monday() as i32,
            day_name: match weekday {
                Weekday::Mon => "Monday",
                Weekday::Tue => "Tuesday",
                Weekday::Wed => "Wednesday",
                Weekday::Thu => "Thursday",
                Weekday::Fri => "Friday",
                Weekday::Sat => "Saturday",
                Weekday::Sun => "Sunday",
            },
            iso_week: date.iso_week().week() as i32,
            is_weekend: matches!(weekday, Weekday::Sat | Weekday::Sun),
        }
    }
}

/// The widest calendar filled without gaps (about 200 years); facts dated further apart get
/// their own dates only.
const WIDEST_CALENDAR_DAYS: i64 = 73_050;

/// Adds the missing `dim_date` rows of `dates`, then every date the calendar lacks between
/// its first and last (the facts' earliest and latest, widened by the contract's margin), so
/// it has no gaps, and gives new rows their fiscal year. Returns the rows added for `dates`
/// and those added to fill the calendar.
pub(super) async fn insert_dates(tx: &mut Tx, dates: &[NaiveDate], calendar: &CalendarConfig) -> Result<(u64, u64)> {
    let referenced = insert_rows(tx, dates).await?;
    let bounds = tx
        .fetch_text(
            "reading dim_date's range",
            "SELECT CAST(MIN(\"date\") AS TEXT), CAST(MAX(\"date\") AS TEXT), CAST(COUNT(*) AS TEXT) FROM \"dim_date\""
                .to_string(),
        )
        .await?;
    let row = bounds.into_iter().next().unwrap_or_default();
    let value = |index: usize| row.get(index).cloned().flatten();
    let parse = |text: Option<String>| text.and_then(|text| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok());
    let (Some(mut first), Some(mut last)) = (parse(value(0)), parse(value(1))) else {
        return Ok((referenced, 0));
    };
    let count: i64 = value(2).and_then(|text| text.parse().ok()).unwrap_or(0);
    let margin = chrono::Days::new(u64::from(calendar.margin_days));
    if let (Some(earliest), Some(latest)) = (dates.iter().min(), dates.iter().max()) {
        first = first.min(earliest.checked_sub_days(margin).unwrap_or(*earliest));
        last = last.max(latest.checked_add_days(margin).unwrap_or(*latest));
    }
    let span = (last - first).num_days() + 1;
    let filled = if span == count {
        0
    } else if span > WIDEST_CALENDAR_DAYS {
        tracing::warn!(first = %first, last = %last, "The facts' dates are too far apart for a calendar without gaps; dim_date holds the dates they use.");
        0
    } else {
        let every_day: Vec<NaiveDate> = first.iter_days().take(span as usize).collect();
        insert_rows(tx, &every_day).await?
    };
    set_fiscal_years(tx, calendar, true).await?;
    Ok((referenced, filled))
}

/// Gives `dim_date`'s rows the fiscal year and quarter of the contract's fiscal start: only
/// rows without one (`only_new`), or every row whose values differ (the start changed).
pub(super) async fn set_fiscal_years(tx: &mut Tx, calendar: &CalendarConfig, only_new: bool) -> Result<u64> {
    let start = calendar.fiscal_year_start_month.clamp(1, 12);
    let year = format!("\"year\" + CASE WHEN {start} > 1 AND \"month\" >= {start} THEN 1 ELSE 0 END");
    let quarter = format!("((\"month\" - {start} + 12) % 12) / 3 + 1");
    let rows = if only_new {
        "\"fiscal_year\" IS NULL".to_string()
    } else {
        format!("\"fiscal_year\" IS NULL OR \"fiscal_year\" <> {year} OR \"fiscal_quarter\" <> {quarter}")
    };
    let statement =
        format!("UPDATE \"dim_date\" SET \"fiscal_year\" = {year}, \"fiscal_quarter\" = {quarter} WHERE {rows}");
    tx.execute("setting dim_date's fiscal years", statement, None).await
}

/// Adds the `dim_date` rows of `dates` that are missing, in batches of bound parameters.
async fn insert_rows(tx: &mut Tx, dates: &[chrono::NaiveDate]) -> Result<u64> {
    let mut rows: Vec<DateRow> = dates.iter().copied().map(DateRow::of).collect();
    rows.sort_by_key(|row| row.date_key);
    rows.dedup_by_key(|row| row.date_key);
    const COLUMNS: &str = "\"date_key\", \"date\", \"year\", \"quarter\", \"month\", \"month_name\", \"day\", \"day_of_week\", \"day_name\", \"iso_week\", \"is_weekend\"";
    let mut inserted = 0;
    for chunk in rows.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|row| {
                let values: Vec<String> = (1..=11).map(|column| format!("${}", row * 11 + column)).collect();
                format!("({})", values.join(", "))
            })
            .collect();
        let statement = format!(
            "INSERT INTO \"dim_date\" ({COLUMNS}) VALUES {} ON CONFLICT (\"date_key\") DO NOTHING",
            placeholders.join(", ")
        );
        // The same binds for both backends; SQLite stores the date as ISO text.
        macro_rules! bind_rows {
            ($connection:expr, $date:expr) => {{
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                for row in chunk {
                    query = query
                        .bind(row.date_key)
                        .bind($date(row))
                        .bind(row.year)
                        .bind(row.quarter)
                        .bind(row.month)
                        .bind(row.month_name)
                        .bind(row.day)
                        .bind(row.day_of_week)
                        .bind(row.day_name)
                        .bind(row.iso_week)
                        .bind(row.is_weekend);
                }
                query.execute($connection).await.map(|done| done.rows_affected())
            }};
        }
        inserted += match tx {
            Tx::Postgres(tx) => bind_rows!(&mut **tx, |row: &DateRow| row.date),
            Tx::Sqlite(tx) => bind_rows!(&mut **tx, |row: &DateRow| row.date.format("%Y-%m-%d").to_string()),
        }
        .map_err(|error| Error::database("adding dim_date rows", error))?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_day_and_a_new_year_week() {
        let row = DateRow::of(NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"));
        assert_eq!(row.date_key, 20_240_229);
        assert_eq!(
            (row.quarter, row.month_name, row.day_name, row.day_of_week, row.iso_week),
            (1, "February", "Thursday", 4, 9)
        );
        assert!(!row.is_weekend);
        // 1 January 2021 was a Friday in ISO week 53 of 2020.
        let row = DateRow::of(NaiveDate::from_ymd_opt(2021, 1, 1).expect("date"));
        assert_eq!((row.iso_week, row.day_name), (53, "Friday"));
        assert!(DateRow::of(NaiveDate::from_ymd_opt(2024, 1, 6).expect("date")).is_weekend);
    }
}
