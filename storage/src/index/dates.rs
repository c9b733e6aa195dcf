//! Dates for the index: what days a text speaks of, as terms of the `when` field.
//!
//! A turn is about the day it was said, and often about other days it names relative to
//! that one ("yesterday", "last weekend", "two weeks ago", "next month") or outright
//! ("on May 3", "2022-05-03", "in 2022"). [`turn_terms`] resolves those against the
//! turn's event time when the turn is indexed; [`query_terms`] finds the dates a question
//! names outright ("on October 13, 2023", "2023-10-13", "in June", "in 2023"), so the
//! search can favour what was said on, or about, those days. A question's relative words are not resolved: a search
//! has no "now" of the asker's to resolve them against.
//!
//! Terms, one per granularity, so a question matches at the granularity it names:
//! `d:2023-05-07` (a day), `md:05-07` (a day of any year), `m:2023-05` (a month),
//! `mo:05` (a month of any year), `y:2023` (a year).

use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};

/// A span of days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    from: NaiveDate,
    to: NaiveDate,
}

impl Span {
    fn day(day: NaiveDate) -> Self {
        Self { from: day, to: day }
    }

    fn days(from: NaiveDate, len: i64) -> Self {
        Self {
            from,
            to: from + Duration::days(len - 1),
        }
    }

    fn month(year: i32, month: u32) -> Option<Self> {
        let from = NaiveDate::from_ymd_opt(year, month, 1)?;
        let to = from.checked_add_months(Months::new(1))? - Duration::days(1);
        Some(Self { from, to })
    }

    fn months(year: i32, first: u32, count: u32) -> Option<Self> {
        let from = NaiveDate::from_ymd_opt(year, first, 1)?;
        let to = from.checked_add_months(Months::new(count))? - Duration::days(1);
        Some(Self { from, to })
    }

    fn year(year: i32) -> Option<Self> {
        Some(Self {
            from: NaiveDate::from_ymd_opt(year, 1, 1)?,
            to: NaiveDate::from_ymd_opt(year, 12, 31)?,
        })
    }

    /// Its terms: days for a span of up to [`MAX_DAY_SPAN`] days, months for one of up to
    /// [`MAX_MONTH_SPAN`], and the years it touches.
    fn terms(self, out: &mut Vec<String>) {
        let len = (self.to - self.from).num_days() + 1;
        if len <= MAX_DAY_SPAN {
            let mut day = self.from;
            while day <= self.to {
                out.push(day_term(day));
                out.push(format!("md:{:02}-{:02}", day.month(), day.day()));
                day += Duration::days(1);
            }
        }
        if len <= MAX_MONTH_SPAN {
            let mut month = self.from.with_day(1).unwrap_or(self.from);
            while month <= self.to {
                out.push(month_term(month.year(), month.month()));
                out.push(format!("mo:{:02}", month.month()));
                match month.checked_add_months(Months::new(1)) {
                    Some(next) => month = next,
                    None => break,
                }
            }
        }
        if self.to.year() - self.from.year() <= 1 {
            for year in self.from.year()..=self.to.year() {
                out.push(year_term(year));
            }
        }
    }
}

/// Spans longer than this many days are not spelt out day by day.
const MAX_DAY_SPAN: i64 = 10;
/// Spans longer than this many days (a season) name their years only.
const MAX_MONTH_SPAN: i64 = 100;

fn day_term(day: NaiveDate) -> String {
    format!("d:{}", day.format("%Y-%m-%d"))
}

fn month_term(year: i32, month: u32) -> String {
    format!("m:{year:04}-{month:02}")
}

fn year_term(year: i32) -> String {
    format!("y:{year:04}")
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// Words that put a following month name in time ("in May", "since March"): with them a
/// lower-case or sentence-initial "may" or "march" is still a month.
const MONTH_LEADS: [&str; 12] = [
    "in", "of", "during", "since", "until", "till", "before", "after", "early", "late", "mid",
    "last",
];

/// A word of the text: its lower-cased form, and whether it was capitalised.
#[derive(Debug)]
struct Word {
    lower: String,
    capital: bool,
}

/// The words of `text`: split on anything not alphanumeric, but an ISO date
/// ("2023-05-07") stays one word.
fn words(text: &str) -> Vec<Word> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .flat_map(|piece| {
            let whole = iso_date(piece).is_some();
            piece
                .split(move |c: char| c == '-' && !whole)
                .filter(|w| !w.is_empty())
        })
        .map(|w| Word {
            lower: w.to_lowercase(),
            capital: w.chars().next().is_some_and(char::is_uppercase),
        })
        .collect()
}

/// An ISO 8601 calendar date: "2023-05-07".
fn iso_date(word: &str) -> Option<NaiveDate> {
    let b = word.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(word, "%Y-%m-%d").ok()
}

fn month_number(word: &str) -> Option<u32> {
    let full = MONTHS.iter().position(|m| *m == word);
    // Three-letter forms, but not "mar" or "may"'s twins that are words of their own.
    let short = match word {
        "jan" => Some(0),
        "feb" => Some(1),
        "apr" => Some(3),
        "jun" => Some(5),
        "jul" => Some(6),
        "aug" => Some(7),
        "sep" | "sept" => Some(8),
        "oct" => Some(9),
        "nov" => Some(10),
        "dec" => Some(11),
        _ => None,
    };
    full.or(short).map(|i| i as u32 + 1)
}

fn weekday(word: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(w, _)| *w == word).map(|(_, d)| *d)
}

/// A day of the month: "3", "03", "3rd", "21st", "8th".
fn day_of_month(word: &str) -> Option<u32> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .unwrap_or(word);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

/// A year written out: four digits from 1900 to 2199.
fn year(word: &str) -> Option<i32> {
    if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok().filter(|y| (1900..2200).contains(y))
}

/// A count in words or digits ("two", "3", "a", "a couple of", "a few"), with the words
/// it took.
fn count(words: &[Word], at: usize) -> Option<(i64, usize)> {
    let word = words.get(at)?.lower.as_str();
    let n = match word {
        "a" | "an" | "one" => {
            // "a few" and "a couple (of)" are counts of their own.
            match words.get(at + 1).map(|w| w.lower.as_str()) {
                Some("few") => return Some((3, 2)),
                Some("couple") => {
                    let of = words.get(at + 2).is_some_and(|w| w.lower == "of");
                    return Some((2, if of { 3 } else { 2 }));
                }
                _ => 1,
            }
        }
        "couple" => 2,
        "few" | "several" => 3,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        _ => {
            if word.len() > 3 || !word.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            word.parse().ok().filter(|n| *n > 0)?
        }
    };
    Some((n, 1))
}

/// The day `weekday` most recently before `day` (a week back when `day` is one).
fn previous(day: NaiveDate, weekday: Weekday) -> NaiveDate {
    let back = (day.weekday().num_days_from_monday() + 7 - weekday.num_days_from_monday()) % 7;
    day - Duration::days(if back == 0 { 7 } else { back as i64 })
}

/// The day `weekday` next after `day` (a week on when `day` is one).
fn next(day: NaiveDate, weekday: Weekday) -> NaiveDate {
    let on = (weekday.num_days_from_monday() + 7 - day.weekday().num_days_from_monday()) % 7;
    day + Duration::days(if on == 0 { 7 } else { on as i64 })
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday() as i64)
}

fn month_of(day: NaiveDate, shift: i32) -> Option<Span> {
    let index = day.year() * 12 + day.month0() as i32 + shift;
    Span::month(index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
}

/// The season's span starting in `year` (winter: December to February).
fn season(name: &str, year: i32) -> Option<Span> {
    match name {
        "spring" => Span::months(year, 3, 3),
        "summer" => Span::months(year, 6, 3),
        "fall" | "autumn" => Span::months(year, 9, 3),
        "winter" => Span::months(year, 12, 3),
        _ => None,
    }
}

/// A relative expression starting at `words[at]`, resolved against `said`: its span and
/// how many words it took.
fn relative(words: &[Word], at: usize, said: NaiveDate) -> Option<(Span, usize)> {
    let word = words[at].lower.as_str();
    let after = |n: usize| words.get(at + n).map(|w| w.lower.as_str());
    match word {
        "yesterday" => return Some((Span::day(said - Duration::days(1)), 1)),
        "tomorrow" => return Some((Span::day(said + Duration::days(1)), 1)),
        "last" | "this" | "next" | "past" => {
            let shift: i32 = match word {
                "last" | "past" => -1,
                "this" => 0,
                _ => 1,
            };
            let unit = after(1)?;
            let span = match unit {
                "night" if shift == -1 => Span::day(said - Duration::days(1)),
                "week" => Span::days(monday_of(said) + Duration::weeks(shift as i64), 7),
                "weekend" => {
                    let saturday = match shift {
                        -1 => previous(said, Weekday::Sat),
                        0 => monday_of(said) + Duration::days(5),
                        _ => monday_of(said) + Duration::days(12),
                    };
                    // Said on a Sunday, last weekend is not the Saturday before.
                    let saturday = if shift == -1 && said.weekday() == Weekday::Sun {
                        saturday - Duration::weeks(1)
                    } else {
                        saturday
                    };
                    Span::days(saturday, 2)
                }
                "month" => month_of(said, shift)?,
                "year" => Span::year(said.year() + shift)?,
                "spring" | "summer" | "fall" | "autumn" | "winter" => {
                    let year = said.year();
                    match shift {
                        // The last such season that ended before the day it was said.
                        -1 => (year - 2..=year)
                            .rev()
                            .filter_map(|y| season(unit, y))
                            .find(|s| s.to < said)?,
                        0 => (year - 1..=year)
                            .rev()
                            .filter_map(|y| season(unit, y))
                            .find(|s| s.from <= said)?,
                        _ => (year..=year + 1)
                            .filter_map(|y| season(unit, y))
                            .find(|s| s.from > said)?,
                    }
                }
                _ => {
                    let weekday = weekday(unit)?;
                    match shift {
                        -1 => Span::day(previous(said, weekday)),
                        1 => Span::day(next(said, weekday)),
                        _ => return None,
                    }
                }
            };
            return Some((span, 2));
        }
        "the" if after(1) == Some("other") && after(2) == Some("day") => {
            return Some((Span::days(said - Duration::days(4), 3), 3));
        }
        _ => {}
    }
    // "two weeks ago", "a few days ago", "in three weeks".
    let ahead = word == "in";
    let start = if ahead { at + 1 } else { at };
    let (n, taken) = count(words, start)?;
    let unit = words.get(start + taken)?.lower.as_str();
    let direction = words.get(start + taken + 1).map(|w| w.lower.as_str());
    let sign = match (ahead, direction) {
        (false, Some("ago")) => -1,
        (true, _) => 1,
        _ => return None,
    };
    let used = start + taken + if ahead { 1 } else { 2 } - at;
    let span = match unit.trim_end_matches('s') {
        "day" => Span::day(said + Duration::days(sign * n)),
        "week" => Span::days(said + Duration::weeks(sign * n) - Duration::days(3), 7),
        "month" => month_of(said, sign as i32 * i32::try_from(n).ok()?)?,
        "year" => Span::year(said.year() + sign as i32 * i32::try_from(n).ok()?)?,
        _ => return None,
    };
    Some((span, used))
}

/// The parts of a date a text names outright.
#[derive(Debug, Clone, Copy)]
struct Named {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
}

/// What an absolute date expression at `words[at]` names, and the words it took. A month
/// name counts only when capitalised after the first word, or next to a day, a year or a
/// word like "in".
fn absolute(words: &[Word], at: usize) -> Option<(Named, usize)> {
    let word = &words[at];
    if let Some(date) = iso_date(&word.lower) {
        let named = Named {
            year: Some(date.year()),
            month: Some(date.month()),
            day: Some(date.day()),
        };
        return Some((named, 1));
    }
    if let Some(y) = year(&word.lower) {
        let named = Named {
            year: Some(y),
            month: None,
            day: None,
        };
        return Some((named, 1));
    }
    // "13 October 2023", "8th of December", "3 June".
    if let Some(day) = day_of_month(&word.lower) {
        let of = words.get(at + 1).is_some_and(|w| w.lower == "of") as usize;
        let month = words
            .get(at + 1 + of)
            .and_then(|w| month_number(&w.lower))?;
        let y = words.get(at + 2 + of).and_then(|w| year(&w.lower));
        let named = Named {
            year: y,
            month: Some(month),
            day: Some(day),
        };
        return Some((named, 2 + of + y.is_some() as usize));
    }
    let month = month_number(&word.lower)?;
    // "October 13, 2023", "May 3", "June 2023", "in June".
    let day = words.get(at + 1).and_then(|w| day_of_month(&w.lower));
    let y = words
        .get(at + 1 + day.is_some() as usize)
        .and_then(|w| year(&w.lower));
    let led = at > 0 && MONTH_LEADS.contains(&words[at - 1].lower.as_str());
    let plain = word.capital && at > 0 && !matches!(word.lower.as_str(), "may" | "march");
    if day.is_none() && y.is_none() && !led && !plain {
        return None;
    }
    let taken = 1 + day.is_some() as usize + y.is_some() as usize;
    let named = Named {
        year: y,
        month: Some(month),
        day,
    };
    Some((named, taken))
}

/// The `when` terms of a text said on `said`: that day, and the days the text names,
/// relative to it or outright (a day or month without a year is taken in `said`'s year).
pub fn turn_terms(text: &str, said: NaiveDate) -> Vec<String> {
    let mut terms = Vec::new();
    Span::day(said).terms(&mut terms);
    let words = words(text);
    let mut at = 0;
    while at < words.len() {
        if let Some((span, used)) = relative(&words, at, said) {
            span.terms(&mut terms);
            at += used;
            continue;
        }
        if let Some((named, used)) = absolute(&words, at) {
            let y = named.year.unwrap_or(said.year());
            let span = match (named.month, named.day) {
                (Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m, d).map(Span::day),
                (Some(m), None) => Span::month(y, m),
                _ => Span::year(y),
            };
            if let Some(span) = span {
                span.terms(&mut terms);
            }
            at += used;
            continue;
        }
        at += 1;
    }
    terms.sort();
    terms.dedup();
    terms
}

/// The `when` terms of the dates a query names outright, at the granularity it names
/// them: "on October 13, 2023" a day, "in May 2023" a month, "in June" a month of any
/// year, "3 June" a day of any year, "in 2023" a year.
pub fn query_terms(text: &str) -> Vec<String> {
    let words = words(text);
    let mut terms = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let Some((named, used)) = absolute(&words, at) else {
            at += 1;
            continue;
        };
        match (named.year, named.month, named.day) {
            (Some(y), Some(m), Some(d)) => {
                if let Some(date) = NaiveDate::from_ymd_opt(y, m, d) {
                    terms.push(day_term(date));
                }
            }
            (None, Some(m), Some(d)) => terms.push(format!("md:{m:02}-{d:02}")),
            (Some(y), Some(m), None) => terms.push(month_term(y, m)),
            (None, Some(m), None) => terms.push(format!("mo:{m:02}")),
            (Some(y), None, _) => terms.push(year_term(y)),
            (None, None, _) => {}
        }
        at += used;
    }
    terms.sort();
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
    }

    /// The day terms of `text` said on `said`, without the day itself.
    fn days(text: &str, said: NaiveDate) -> Vec<String> {
        let own = day_term(said);
        turn_terms(text, said)
            .into_iter()
            .filter(|t| t.starts_with("d:") && *t != own)
            .collect()
    }

    fn has(text: &str, said: NaiveDate, term: &str) -> bool {
        turn_terms(text, said).iter().any(|t| t == term)
    }

    // 2023-05-08 is a Monday.
    const MONDAY: (i32, u32, u32) = (2023, 5, 8);

    fn monday() -> NaiveDate {
        date(MONDAY.0, MONDAY.1, MONDAY.2)
    }

    #[test]
    fn a_turn_is_about_the_day_it_was_said() {
        let terms = turn_terms("nothing dated here", monday());
        assert_eq!(
            terms,
            vec!["d:2023-05-08", "m:2023-05", "md:05-08", "mo:05", "y:2023"]
        );
    }

    #[test]
    fn days_relative_to_the_day_said() {
        assert_eq!(days("I went yesterday", monday()), vec!["d:2023-05-07"]);
        assert_eq!(days("Last night was fun", monday()), vec!["d:2023-05-07"]);
        assert_eq!(days("see you tomorrow!", monday()), vec!["d:2023-05-09"]);
        assert_eq!(days("two days ago", monday()), vec!["d:2023-05-06"]);
        assert_eq!(days("3 days ago", monday()), vec!["d:2023-05-05"]);
        assert_eq!(days("a couple of days ago", monday()), vec!["d:2023-05-06"]);
        assert_eq!(days("in two days", monday()), vec!["d:2023-05-10"]);
        assert_eq!(
            days("I saw her the other day", monday()),
            vec!["d:2023-05-04", "d:2023-05-05", "d:2023-05-06"]
        );
    }

    #[test]
    fn weekdays_before_and_after() {
        assert_eq!(days("last Friday", monday()), vec!["d:2023-05-05"]);
        // Said on a Friday, last Friday is a week back.
        assert_eq!(days("last friday", date(2023, 5, 12)), vec!["d:2023-05-05"]);
        assert_eq!(days("next Monday", monday()), vec!["d:2023-05-15"]);
        assert_eq!(days("next Wednesday", monday()), vec!["d:2023-05-10"]);
    }

    #[test]
    fn weeks_and_weekends() {
        let last_week: Vec<String> = (1..=7).map(|d| format!("d:2023-05-{d:02}")).collect();
        assert_eq!(days("Last week I ran", monday()), last_week);
        assert_eq!(
            days("last weekend", monday()),
            vec!["d:2023-05-06", "d:2023-05-07"]
        );
        // Said on a Sunday, last weekend is the one before.
        assert_eq!(
            days("last weekend", date(2023, 5, 14)),
            vec!["d:2023-05-06", "d:2023-05-07"]
        );
        assert_eq!(
            days("this weekend", monday()),
            vec!["d:2023-05-13", "d:2023-05-14"]
        );
        // Two weeks ago: the week around the day fourteen days back.
        assert_eq!(
            days("two weeks ago", monday()),
            (21..=27)
                .map(|d| format!("d:2023-04-{d:02}"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn months_years_and_seasons() {
        assert!(has("last month", monday(), "m:2023-04"));
        assert!(has("next month", date(2023, 12, 20), "m:2024-01"));
        assert!(has("three months ago", date(2023, 2, 10), "m:2022-11"));
        assert!(has("last year", monday(), "y:2022"));
        assert!(
            !has("last year", monday(), "m:2022-05"),
            "a year names no months"
        );
        assert!(has("five years ago", monday(), "y:2018"));
        // Last summer, said in October, is this year's; said in May, last year's.
        assert!(has("last summer", date(2023, 10, 1), "m:2023-07"));
        assert!(has("last summer", monday(), "m:2022-07"));
        assert!(has("last winter", monday(), "m:2023-01"));
        assert!(has("last winter", monday(), "m:2022-12"));
    }

    #[test]
    fn dates_named_outright_in_a_turn() {
        assert!(has("my birthday is on June 3rd", monday(), "d:2023-06-03"));
        assert!(has("the 8th of December", monday(), "d:2023-12-08"));
        assert!(has("back in 2019 we met", monday(), "y:2019"));
        assert!(has("we met in March", monday(), "m:2023-03"));
        assert!(has("It was October 2021", monday(), "m:2021-10"));
    }

    #[test]
    fn iso_dates_in_turns_and_queries() {
        assert!(has(
            "The launch is set for 2023-06-14.",
            monday(),
            "d:2023-06-14"
        ));
        assert_eq!(
            query_terms("what happened on 2023-10-13?"),
            vec!["d:2023-10-13"]
        );
        // Not a date: the parts are words again.
        assert!(query_terms("ticket 2023-13-45").contains(&"y:2023".to_owned()));
        assert_eq!(turn_terms("well-known re-run", monday()).len(), 5);
    }

    #[test]
    fn modal_may_and_march_are_not_months() {
        assert_eq!(
            days("May I come? We may go.", monday()),
            Vec::<String>::new()
        );
        assert!(!has("They march on", date(2023, 7, 1), "m:2023-03"));
        assert!(!has("A may be", date(2023, 7, 1), "mo:05"));
    }

    #[test]
    fn queries_name_dates_at_their_granularity() {
        assert_eq!(
            query_terms("What painting did Melanie show on October 13, 2023?"),
            vec!["d:2023-10-13"]
        );
        assert_eq!(
            query_terms("What book did Tim finish on 8th December, 2023?"),
            vec!["d:2023-12-08"]
        );
        assert_eq!(
            query_terms("Who came on 3 June, 2023?"),
            vec!["d:2023-06-03"]
        );
        assert_eq!(
            query_terms("What setback in October 2023?"),
            vec!["m:2023-10"]
        );
        assert_eq!(
            query_terms("When did she go camping in June?"),
            vec!["mo:06"]
        );
        assert_eq!(
            query_terms("How often at the beach in 2023?"),
            vec!["y:2023"]
        );
        assert_eq!(query_terms("What happened on May 3?"), vec!["md:05-03"]);
        assert_eq!(
            query_terms("Where was John between August 11 and August 15 2023?"),
            vec!["d:2023-08-15", "md:08-11"]
        );
        assert!(query_terms("What did Melanie paint last week?").is_empty());
        assert!(query_terms("May I ask what she may like?").is_empty());
    }

    #[test]
    fn a_query_date_matches_the_turns_of_that_day_and_about_it() {
        // Said on May 4 about the day before; asked about May 3.
        let asked = query_terms("Who did Maria have dinner with on May 3, 2023?");
        let turn = turn_terms("I had dinner with my mom yesterday", date(2023, 5, 4));
        assert!(
            asked.iter().all(|t| turn.contains(t)),
            "{asked:?} in {turn:?}"
        );
        // A month of any year.
        let asked = query_terms("When did Melanie go camping in June?");
        let turn = turn_terms("We went camping last week", date(2023, 7, 3));
        assert!(
            asked.iter().all(|t| turn.contains(t)),
            "{asked:?} in {turn:?}"
        );
    }

    #[test]
    fn nonsense_and_edges_do_not_panic() {
        for text in [
            "",
            "last",
            "in",
            "999 years ago",
            "31 February 2023",
            "February 30",
            "next",
            "a couple",
            "the other",
            "in a few",
            "December 31, 2199 and January 1, 1900",
        ] {
            let _ = turn_terms(text, date(2023, 12, 31));
            let _ = query_terms(text);
        }
        assert!(turn_terms("999 years ago", monday()).contains(&"y:2023".to_owned()));
    }
}
