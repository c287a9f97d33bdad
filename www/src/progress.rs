//! Download progress in words: bytes so far, speed and time left, as a learner reads them under a progress bar.

/// `1.5 MB`, `548 MB`, `812 kB`, `97 B` (decimal units, as browsers and the hub show sizes).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e8 => format!("{:.0} MB", n / 1e6),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// `42 s`, `3 min 5 s`, `1 h 2 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

/// One file's progress: `model.safetensors: 12.0 MB of 548 MB · 4.0 MB/s · 2 min 14 s left`. Speed and time
/// left appear once a moment has passed; without a total (no Content-Length) only bytes and speed.
pub fn line(file: &str, loaded: u64, total: Option<u64>, elapsed_s: f64, cached: bool) -> String {
    if cached {
        return format!("{file}: {} from this browser's cache", bytes(loaded));
    }
    let mut text = match total {
        Some(t) => format!("{file}: {} of {}", bytes(loaded), bytes(t)),
        None => format!("{file}: {}", bytes(loaded)),
    };
    if elapsed_s >= 0.5 && loaded > 0 {
        let speed = loaded as f64 / elapsed_s;
        text += &format!(" · {}/s", bytes(speed as u64));
        if let Some(t) = total.filter(|&t| t > loaded) {
            text += &format!(" · {} left", duration((t - loaded) as f64 / speed));
        }
    }
    text
}

/// Fraction done in [0, 1], when the total is known.
pub fn fraction(loaded: u64, total: Option<u64>) -> Option<f64> {
    total.filter(|&t| t > 0).map(|t| (loaded as f64 / t as f64).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes(97), "97 B");
        assert_eq!(bytes(812_400), "812 kB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(548_105_000), "548 MB");
        assert_eq!(bytes(2_300_000_000), "2.30 GB");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(3720.0), "1 h 2 min");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            line("model.safetensors", 12_000_000, Some(548_000_000), 3.0, false),
            "model.safetensors: 12.0 MB of 548 MB · 4.0 MB/s · 2 min 14 s left"
        );
        assert_eq!(line("config.json", 0, Some(800), 0.0, false), "config.json: 0 B of 800 B");
        assert_eq!(line("a", 2_000_000, None, 1.0, false), "a: 2.0 MB · 2.0 MB/s");
        assert_eq!(line("a", 2_000_000, Some(2_000_000), 1.0, true), "a: 2.0 MB from this browser's cache");
        assert_eq!(fraction(5, Some(10)), Some(0.5));
        assert_eq!(fraction(5, None), None);
        assert_eq!(fraction(5, Some(0)), None);
    }
}
