//! `dim_date`: one row per calendar date the facts use, generated, never loaded from files.

use chrono::{Datelike, NaiveDate, Weekday};

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
