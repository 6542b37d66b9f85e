//! The server's timestamps (`YYYY-MM-DDTHH:MM:SS[.mmm]Z`, UTC) as milliseconds since the Unix
//! epoch, without a date crate: the agent only needs how long a lease it was just given lasts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp as the server writes them.
pub(crate) fn parse_utc_ms(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            let digits: String = frac.chars().take(3).collect();
            let scale = 10i64.pow(3 - digits.len() as u32);
            (hms, digits.parse::<i64>().ok()? * scale)
        }
        None => (time, 0),
    };
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// How long from now until `expires_at` by this machine's clock; `None` if it cannot be read
/// or is already past (a clock far off the server's).
pub(crate) fn until(expires_at: &str) -> Option<Duration> {
    let at = parse_utc_ms(expires_at)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    u64::try_from(at - now).ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timestamps_read_as_epoch_milliseconds() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_utc_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        // 2024-02-29 (a leap day) 12:34:56.789 UTC.
        assert_eq!(
            parse_utc_ms("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_utc_ms("2024-02-29T12:34:56Z"),
            Some(1_709_210_096_000)
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T12:34:56",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad:?}");
        }
        assert_eq!(until("1970-01-01T00:00:00.000Z"), None);
    }
}
