//! Time-stretching of 8 kHz PCM by whole pitch periods (WSOLA-style).
//!
//! Theory of operation: speech is locally periodic, so one pitch period can
//! be removed (accelerate) or repeated (pre-emptive expand) without an
//! audible jump if the splice is made where the waveform matches itself: the
//! lag `P` maximising the normalised cross-correlation between a segment and
//! the segment `P` samples later. The splice is a linear cross-fade over one
//! period, so the first and last output samples continue the signal on both
//! sides:
//! - accelerate: `x[0..2P]` becomes `P` samples fading from `x[0..P]` into
//!   `x[P..2P]`;
//! - expand: `x[0..P]` is followed by `P` samples fading from `x[P..2P]`
//!   into `x[0..P]`, then `x[P..]` again.
//!
//! The lag search is the shared [`search_lag`]: a 2:1 decimated coarse
//! search, refined at full rate around the best coarse lag.

/// Shortest lag searched, samples (2.5 ms: a 400 Hz voice).
pub(crate) const MIN_LAG: usize = 20;
/// Longest lag searched, samples (15 ms: a 66 Hz voice).
pub(crate) const MAX_LAG: usize = 120;
/// Correlation window, samples (10 ms).
pub(crate) const WINDOW: usize = 80;

/// A lag and how well the signal matches itself at that lag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Match {
    pub(crate) lag: usize,
    /// Normalised cross-correlation, -1..=1.
    pub(crate) correlation: f64,
    /// Mean square of the compared segments (i16 units squared).
    pub(crate) power: f64,
}

/// The best lag in `min_lag..=max_lag`; `pair(lag)` gives the two
/// equal-length segments to compare at `lag` (or `None` if out of range).
pub(crate) fn search_lag<'a, F>(min_lag: usize, max_lag: usize, pair: F) -> Option<Match>
where
    F: Fn(usize) -> Option<(&'a [i16], &'a [i16])>,
{
    let consider = |best: Option<Match>, lag: usize, step: usize| -> Option<Match> {
        let Some((a, b)) = pair(lag) else {
            return best;
        };
        let m = correlate(a, b, step, lag);
        match best {
            Some(old) if old.correlation >= m.correlation => Some(old),
            _ => Some(m),
        }
    };
    let coarse = (min_lag..=max_lag)
        .step_by(2)
        .fold(None, |best, lag| consider(best, lag, 2))?;
    let low = coarse.lag.saturating_sub(1).max(min_lag);
    let high = (coarse.lag + 1).min(max_lag);
    (low..=high).fold(None, |best, lag| consider(best, lag, 1))
}

fn correlate(a: &[i16], b: &[i16], step: usize, lag: usize) -> Match {
    let (mut ab, mut aa, mut bb) = (0i64, 0i64, 0i64);
    for (&x, &y) in a.iter().zip(b).step_by(step.max(1)) {
        let (x, y) = (i64::from(x), i64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let norm = ((aa as f64) * (bb as f64)).sqrt();
    let terms = a.len().min(b.len()).div_ceil(step.max(1)).max(1) as f64;
    Match {
        lag,
        correlation: if norm > 0.0 { ab as f64 / norm } else { 0.0 },
        power: (aa + bb) as f64 / (2.0 * terms),
    }
}

/// The lag at which `x` (the start of the unplayed audio) best repeats
/// itself, with `lag <= max_lag` and room for the window after it.
pub(crate) fn find_period(x: &[i16], max_lag: usize) -> Option<Match> {
    let max_lag = max_lag.min(MAX_LAG).min(x.len().saturating_sub(WINDOW));
    if max_lag < MIN_LAG {
        return None;
    }
    search_lag(MIN_LAG, max_lag, |lag| {
        Some((x.get(..WINDOW)?, x.get(lag..lag + WINDOW)?))
    })
}

/// Cross-fades `from` into `to` (same length), writing into `out`.
pub(crate) fn cross_fade(from: &[i16], to: &[i16], out: &mut [i16]) {
    let len = out.len().min(from.len()).min(to.len());
    let steps = len as i32 + 1;
    for (j, ((o, &f), &t)) in out.iter_mut().zip(from).zip(to).enumerate() {
        let w = j as i32 + 1;
        let mixed =
            (i64::from(f) * i64::from(steps - w) + i64::from(t) * i64::from(w)) / i64::from(steps);
        *o = mixed.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
    }
}

/// Accelerate: replaces `x[0..2·lag]` by the `lag` samples fading from
/// `x[0..lag]` into `x[lag..2·lag]`, written into `x[lag..2·lag]`; the
/// caller then drops `x[0..lag]`. Returns false (nothing changed) if `x`
/// is too short.
pub(crate) fn accelerate_in_place(x: &mut [i16], lag: usize) -> bool {
    if lag == 0 || x.len() < 2 * lag {
        return false;
    }
    let (head, rest) = x.split_at_mut(lag);
    let second = &mut rest[..lag];
    for (j, (h, s)) in head.iter().zip(second.iter_mut()).enumerate() {
        let w = j as i64 + 1;
        let steps = lag as i64 + 1;
        *s = ((i64::from(*h) * (steps - w) + i64::from(*s) * w) / steps) as i16;
    }
    true
}

/// Expand: `x` is `lag` free samples followed by the unplayed audio `y`;
/// afterwards `x` holds `y[0..lag]`, then `lag` samples fading from
/// `y[lag..2·lag]` into `y[0..lag]`, then `y[lag..]` untouched. Returns
/// false (nothing changed) if `y` is shorter than `2·lag`.
pub(crate) fn expand_in_place(x: &mut [i16], lag: usize) -> bool {
    if lag == 0 || x.len() < 3 * lag {
        return false;
    }
    // x = [free(lag) | y0 (lag) | y1 (lag) | ...]
    x.copy_within(lag..2 * lag, 0);
    let (done, rest) = x.split_at_mut(lag);
    let (fade, after) = rest.split_at_mut(lag);
    let y1 = &after[..lag];
    // fade currently holds y0 == done; fade from y1 into y0.
    for (j, (f, &from)) in fade.iter_mut().zip(y1).enumerate() {
        let to = i64::from(done[j]);
        let w = j as i64 + 1;
        let steps = lag as i64 + 1;
        *f = ((i64::from(from) * (steps - w) + to * w) / steps) as i16;
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tone(period: usize, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / period as f64;
                (8000.0 * phase.sin() + 3000.0 * (2.0 * phase).sin()) as i16
            })
            .collect()
    }

    fn max_jump(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn finds_the_period_of_a_harmonic_signal() {
        for period in [25, 57, 100] {
            let x = tone(period, 400);
            let m = find_period(&x, MAX_LAG).unwrap();
            assert!(
                m.lag % period <= 1 || period - m.lag % period <= 1,
                "{period} {m:?}"
            );
            assert!(m.correlation > 0.95);
        }
    }

    #[test]
    fn accelerate_and_expand_splice_without_jumps() {
        let x = tone(57, 480);
        let natural = max_jump(&x);
        let lag = find_period(&x, MAX_LAG).unwrap().lag;

        let mut a = x.clone();
        assert!(accelerate_in_place(&mut a, lag));
        let accelerated = &a[lag..];
        assert_eq!(accelerated.len(), x.len() - lag);
        assert!(max_jump(accelerated) <= natural + natural / 10);

        let mut e = vec![0i16; lag];
        e.extend_from_slice(&x);
        assert!(expand_in_place(&mut e, lag));
        assert_eq!(e.len(), x.len() + lag);
        assert_eq!(&e[..lag], &x[..lag]);
        assert_eq!(&e[2 * lag..], &x[lag..]);
        assert!(max_jump(&e) <= natural + natural / 10);
    }

    #[test]
    fn short_input_is_left_alone() {
        let mut x = [1i16; 10];
        assert!(!accelerate_in_place(&mut x, 6));
        assert!(!expand_in_place(&mut x, 4));
        assert!(find_period(&x, MAX_LAG).is_none());
    }
}
