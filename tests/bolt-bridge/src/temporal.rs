//! Zoned date-times in their two Bolt shapes.
//!
//! Bolt 5 (and Bolt 4.3/4.4 with the `utc` patch) sends `DateTime` (tag `I`) and
//! `DateTimeZoneId` (tag `i`) with seconds counted in UTC. Bolt 4 without the patch sends
//! the legacy `F` and `f`, whose seconds count the *local* wall-clock time as if it were
//! UTC. Moving between them adds or subtracts the zone's offset at that instant.
//!
//! For an offset (`I`/`F`) that is exact. For a zone id (`i`/`f`) it needs the zone's rules;
//! the bridge carries no time-zone database, so it converts zone ids with a fixed offset
//! (`UTC`, `Etc/GMT+3`, `+02:00`, ...) and refuses the others with a clear message.

use crate::packstream::{Structure, Value};

/// Bolt 5 `DateTime`: UTC seconds, nanoseconds, offset seconds.
pub const DATE_TIME_UTC: u8 = b'I';
/// Bolt 5 `DateTimeZoneId`: UTC seconds, nanoseconds, zone id.
pub const DATE_TIME_ZONE_ID_UTC: u8 = b'i';
/// Bolt 4 legacy `DateTime`: local seconds, nanoseconds, offset seconds.
pub const DATE_TIME_LEGACY: u8 = b'F';
/// Bolt 4 legacy `DateTimeZoneId`: local seconds, nanoseconds, zone id.
pub const DATE_TIME_ZONE_ID_LEGACY: u8 = b'f';

/// Which way a conversion goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the UTC shapes (`I`, `i`) to the legacy ones (`F`, `f`).
    ToLegacy,
    /// From the legacy shapes (`F`, `f`) to the UTC ones (`I`, `i`).
    ToUtc,
}

/// Converts `s` if it is a zoned date-time in the shape `direction` converts from;
/// `Ok(None)` for every other structure. `Err` says why it cannot be converted.
pub fn convert(s: &Structure, direction: Direction) -> Result<Option<Structure>, String> {
    let (from_offset, from_zone, to_offset, to_zone) = match direction {
        Direction::ToLegacy => (
            DATE_TIME_UTC,
            DATE_TIME_ZONE_ID_UTC,
            DATE_TIME_LEGACY,
            DATE_TIME_ZONE_ID_LEGACY,
        ),
        Direction::ToUtc => (
            DATE_TIME_LEGACY,
            DATE_TIME_ZONE_ID_LEGACY,
            DATE_TIME_UTC,
            DATE_TIME_ZONE_ID_UTC,
        ),
    };
    let to_tag = if s.tag == from_offset {
        to_offset
    } else if s.tag == from_zone {
        to_zone
    } else {
        return Ok(None);
    };
    let [Value::Int(seconds), Value::Int(nanos), zone] = s.fields.as_slice() else {
        return Err(format!(
            "a date-time (tag {:?}) does not have the fields seconds, nanoseconds, zone",
            s.tag as char
        ));
    };
    let offset = match zone {
        Value::Int(offset) => *offset,
        Value::String(id) => fixed_offset(id).ok_or_else(|| {
            format!(
                "the time zone {id:?} has no fixed offset, and the Bolt bridge carries no \
                 time-zone database to convert it between Bolt 4 and 5; use an offset \
                 (+02:00) or UTC"
            )
        })?,
        other => return Err(format!("a date-time's zone is {other:?}")),
    };
    let converted = match direction {
        Direction::ToLegacy => seconds.checked_add(offset),
        Direction::ToUtc => seconds.checked_sub(offset),
    }
    .ok_or_else(|| "a date-time is out of range".to_string())?;
    Ok(Some(Structure::new(
        to_tag,
        vec![Value::Int(converted), Value::Int(*nanos), zone.clone()],
    )))
}

/// The offset east of UTC, in seconds, of a zone id that has one and only one: the UTC
/// aliases, `Etc/GMT±N` (whose sign is inverted, as POSIX has it) and `±HH[:MM]`.
pub fn fixed_offset(id: &str) -> Option<i64> {
    const UTC_ALIASES: [&str; 18] = [
        "UTC",
        "Z",
        "UCT",
        "GMT",
        "GMT0",
        "GMT+0",
        "GMT-0",
        "Universal",
        "Zulu",
        "Greenwich",
        "Etc/UTC",
        "Etc/UCT",
        "Etc/GMT",
        "Etc/GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "Etc/Universal",
        "Etc/Zulu",
    ];
    if UTC_ALIASES.contains(&id) || id == "Etc/Greenwich" {
        return Some(0);
    }
    if let Some(hours) = id.strip_prefix("Etc/GMT") {
        let (sign, digits) = split_sign(hours)?;
        let h: i64 = digits.parse().ok().filter(|h| (1..=14).contains(h))?;
        // Etc/GMT+3 is three hours *west* of Greenwich.
        return Some(-sign * h * 3600);
    }
    let (sign, rest) = split_sign(id)?;
    let (h, m) = match rest.len() {
        2 => (rest, "00"),
        4 => (&rest[..2], &rest[2..]),
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn split_sign(s: &str) -> Option<(i64, &str)> {
    if let Some(rest) = s.strip_prefix('+') {
        Some((1, rest))
    } else {
        s.strip_prefix('-').map(|rest| (-1, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(tag: u8, seconds: i64, zone: Value) -> Structure {
        Structure::new(tag, vec![Value::Int(seconds), Value::Int(5), zone])
    }

    #[test]
    fn an_offset_date_time_moves_by_its_offset_both_ways() {
        // 2015-06-24T12:50:35+01:00 is 11:50:35 UTC: 1435146635 in UTC seconds.
        let utc = dt(DATE_TIME_UTC, 1_435_146_635, Value::Int(3600));
        let legacy = dt(DATE_TIME_LEGACY, 1_435_150_235, Value::Int(3600));
        assert_eq!(convert(&utc, Direction::ToLegacy), Ok(Some(legacy.clone())));
        assert_eq!(convert(&legacy, Direction::ToUtc), Ok(Some(utc.clone())));
        // Already in the target shape, or not a date-time: left alone.
        assert_eq!(convert(&utc, Direction::ToUtc), Ok(None));
        assert_eq!(
            convert(
                &Structure::new(b'D', vec![Value::Int(1)]),
                Direction::ToLegacy
            ),
            Ok(None)
        );
    }

    #[test]
    fn fixed_zone_ids_convert_and_others_are_refused() {
        let utc = dt(DATE_TIME_ZONE_ID_UTC, 1000, Value::string("Etc/GMT+2"));
        let legacy = dt(
            DATE_TIME_ZONE_ID_LEGACY,
            1000 - 7200,
            Value::string("Etc/GMT+2"),
        );
        assert_eq!(convert(&utc, Direction::ToLegacy), Ok(Some(legacy.clone())));
        assert_eq!(convert(&legacy, Direction::ToUtc), Ok(Some(utc)));
        let paris = dt(DATE_TIME_ZONE_ID_UTC, 1000, Value::string("Europe/Paris"));
        let refused = convert(&paris, Direction::ToLegacy).unwrap_err();
        assert!(refused.contains("Europe/Paris"), "{refused}");
    }

    #[test]
    fn offsets_are_read_from_zone_ids() {
        assert_eq!(fixed_offset("UTC"), Some(0));
        assert_eq!(fixed_offset("Etc/GMT-14"), Some(14 * 3600));
        assert_eq!(fixed_offset("+05:30"), Some(5 * 3600 + 1800));
        assert_eq!(fixed_offset("-0330"), Some(-(3 * 3600 + 1800)));
        assert_eq!(fixed_offset("+02"), Some(7200));
        assert_eq!(fixed_offset("Etc/GMT+15"), None);
        assert_eq!(fixed_offset("+2:00"), None);
        assert_eq!(fixed_offset("America/New_York"), None);
    }
}
