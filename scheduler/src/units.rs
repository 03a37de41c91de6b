//! Sizes and durations as people write them in allocation files and
//! settings: `512MiB`, `2g`, `30s`, `1.5m`.

use std::time::Duration;

/// Parses a byte size: `0`, `512`, `64KiB`, `100MB`, `1.5GiB`, `2g`, `1t`.
/// Units are powers of 1024 (`k`, `m`, `g`, `t`, with or without `iB`/`B`,
/// any case).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let (number, unit) = split_number(text)
        .ok_or_else(|| format!("expected a size like 512MiB or 2GiB, got '{text}'"))?;
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    let bytes = number * multiplier;
    if bytes >= usize::MAX as f64 {
        return Err(format!("size '{text}' is too large"));
    }
    Ok(bytes.round() as usize)
}

/// Parses a duration: `250ms`, `30s`, `1.5m`, `2h`, `1d`; a bare number is
/// seconds. `0` is a zero duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)
        .ok_or_else(|| format!("expected a duration like 30s, 500ms or 5m, got '{text}'"))?;
    let seconds: f64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 0.001,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}'")),
    };
    Duration::try_from_secs_f64(number * seconds)
        .map_err(|_| format!("duration '{text}' is out of range"))
}

/// A duration as [`parse_duration`] reads it back: `30s`, `250ms`, `1.5s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 || !millis.is_multiple_of(100) {
        format!("{millis}ms")
    } else {
        let text = format!("{:.1}", duration.as_secs_f64());
        format!("{}s", text.trim_end_matches(".0"))
    }
}

/// A non-negative decimal number and the unit after it (both trimmed).
fn split_number(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    number.is_finite().then_some((number, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64KiB").unwrap(), 64 * 1024);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 3 << 29);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999t").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration(" 2 H ").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn durations_format_back() {
        for text in ["30s", "250ms", "1.5s", "1500ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1250ms");
    }
}
