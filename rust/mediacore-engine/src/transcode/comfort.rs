//! Comfort noise toward the receiver of a decoded direction whose sender has gone quiet.
//!
//! Theory of operation. While the sender's audio plays, each block that is the sender's own
//! audio (packets still buffered behind it: not the concealment tail) updates a noise-floor
//! estimate: the mean square of the quietest recent block, a minimum that rises slowly
//! ([`RISE_DB_PER_S`]) so it follows a background that gets louder, and drops at once to a
//! quieter block. Speech raises the block energies but rarely the minimum, since speech has
//! pauses. When the sender goes quiet the playout sends blocks of noise at that level instead
//! of nothing: white noise from a xorshift generator seeded per session (deterministic), through
//! a one-pole low-pass (background noise falls off with frequency), scaled to the level. The
//! level is clamped to [`MIN_DBOV`]..[`MAX_DBOV`]; before anything was learnt it is
//! [`DEFAULT_DBOV`]. Levels are in dBov: 0 dBov is a full-scale square wave (mean square
//! 32768²), as in RFC 3389.

/// Quietest comfort noise, dBov: below it G.711 (the commonest receiving codec) codes the noise
/// as mostly its smallest steps or zero, and the line sounds dead again.
pub const MIN_DBOV: f32 = -78.0;
/// Loudest comfort noise, dBov: a background louder than this (or a floor misled by speech
/// without pauses) is not reproduced; -50 dBov is already a clearly audible hiss.
pub const MAX_DBOV: f32 = -50.0;
/// Level before a background was learnt: a quiet office line.
pub const DEFAULT_DBOV: f32 = -65.0;
/// How fast the noise-floor minimum rises while every block is louder than it, dB per second.
pub const RISE_DB_PER_S: f32 = 2.0;
/// Pole of the low-pass shaping the white noise (0: white).
const POLE: f32 = 0.5;
/// Mean square of a full-scale square wave (0 dBov).
const FULL_SCALE_MS: f32 = 32768.0 * 32768.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComfortNoise {
    /// Mean square of the sender's background, once learnt.
    floor: Option<f32>,
    rng: u32,
    lp: f32,
    /// The sender's audio has played on this path: a gap now gets noise.
    pub primed: bool,
}

pub fn dbov(mean_square: f32) -> f32 {
    10.0 * (mean_square.max(1e-3) / FULL_SCALE_MS).log10()
}

fn mean_square_of(dbov: f32) -> f32 {
    FULL_SCALE_MS * 10f32.powf(dbov / 10.0)
}

impl ComfortNoise {
    /// `seed`: any per-session number (the output SSRC); 0 is replaced.
    pub fn new(seed: u32) -> Self {
        ComfortNoise {
            floor: None,
            rng: if seed == 0 { 0x9e37_79b9 } else { seed },
            lp: 0.0,
            primed: false,
        }
    }

    /// A block of the sender's audio was played; `learn`: it is the sender's own audio (not
    /// concealment), so it counts toward the noise floor.
    pub fn played(&mut self, block: &[i16], learn: bool) {
        self.primed = true;
        if !learn || block.is_empty() {
            return;
        }
        let sum: i64 = block.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        // Below the quietest level it makes no difference (and a floor of 0 could not rise).
        let ms = (sum as f32 / block.len() as f32).max(mean_square_of(MIN_DBOV));
        let rise = 10f32.powf(RISE_DB_PER_S * block.len() as f32 / 8000.0 / 10.0);
        self.floor = Some(match self.floor {
            Some(f) if ms >= f => (f * rise).min(ms),
            _ => ms,
        });
    }

    /// The level the noise is made at, dBov.
    pub fn level_dbov(&self) -> f32 {
        self.floor
            .map_or(DEFAULT_DBOV, dbov)
            .clamp(MIN_DBOV, MAX_DBOV)
    }

    /// Fills `out` with noise at [`Self::level_dbov`].
    pub fn fill(&mut self, out: &mut [i16]) {
        // Uniform noise in [-1, 1) has variance 1/3; the low-pass scales it by (1-a)/(1+a).
        let shaped_var = (1.0 / 3.0) * (1.0 - POLE) / (1.0 + POLE);
        let gain = (mean_square_of(self.level_dbov()) / shaped_var).sqrt();
        for s in out.iter_mut() {
            let mut x = self.rng;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.rng = x;
            let white = (x as i32) as f32 / 2_147_483_648.0;
            self.lp = POLE * self.lp + (1.0 - POLE) * white;
            *s = (self.lp * gain).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn level(block: &[i16]) -> f32 {
        let sum: i64 = block.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        dbov(sum as f32 / block.len() as f32)
    }

    #[test]
    fn noise_is_made_at_the_default_level_before_anything_was_learnt() {
        let mut c = ComfortNoise::new(7);
        let mut out = vec![0i16; 8000];
        c.fill(&mut out);
        let l = level(&out);
        assert!((l - DEFAULT_DBOV).abs() < 1.0, "{l}");
        let mut again = vec![0i16; 8000];
        ComfortNoise::new(7).fill(&mut again);
        assert_eq!(out, again, "deterministic for one seed");
    }

    #[test]
    fn the_floor_follows_the_quietest_blocks_and_is_clamped() {
        let mut c = ComfortNoise::new(1);
        let mut bg = ComfortNoise::new(2);
        bg.floor = Some(mean_square_of(-60.0));
        let mut quiet = vec![0i16; 160];
        for i in 0..100 {
            bg.fill(&mut quiet);
            c.played(&quiet, true);
            // Speech-like loud blocks in between do not lift the floor much.
            if i % 3 == 0 {
                c.played(&[3000, -3000].repeat(80), true);
            }
        }
        assert!((c.level_dbov() + 60.0).abs() < 2.0, "{}", c.level_dbov());
        // Concealment (not learnt) changes nothing.
        c.played(&[0; 160], false);
        assert!((c.level_dbov() + 60.0).abs() < 2.0);
        c.played(&[0; 160], true);
        assert_eq!(
            c.level_dbov(),
            MIN_DBOV,
            "digital silence: the quietest noise"
        );
        for _ in 0..2000 {
            c.played(&[8000, -8000].repeat(80), true);
        }
        assert_eq!(
            c.level_dbov(),
            MAX_DBOV,
            "loud throughout: the loudest noise"
        );
    }
}
