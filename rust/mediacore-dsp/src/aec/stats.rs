//! Per-call echo measurements exported in [`super::EchoStats`].
//!
//! ERL (echo return loss: far-end power over near-end echo power) and ERLE
//! (echo return loss enhancement: near-end power over the linear
//! canceller's output power) are measured over windows of
//! [`WINDOW`] samples of far-end single talk (far end active, no double
//! talk). For the canceller's own use (the double-talk detector's
//! thresholds follow the ERL) each window's value is smoothed in the dB
//! domain, quickly. The exported per-call figures are power ratios over
//! the last [`REPORTED_WINDOWS`] windows (2 s of far-end single talk):
//! dominated by the windows where the echo is loud enough to measure, and
//! not by whichever half second came last (a quiet stretch of far-end
//! speech, its echo near the line noise, gives windows of a few dB ERLE
//! whatever the filter). The ERLE is that of the linear filter, before the
//! non-linear processor, whose comfort noise would otherwise make the
//! figure the ratio of echo to background noise.

/// Single-talk samples per measurement window (250 ms).
const WINDOW: u32 = 2000;
/// Windows summed for the exported figures.
const REPORTED_WINDOWS: usize = 8;
/// Weight of a new window in the smoothed dB figures.
const SMOOTHING: f32 = 0.5;
/// Floor added to powers so silent windows give finite figures, i16².
const POWER_FLOOR: f64 = 1e-3;

#[derive(Default)]
pub(super) struct EchoMeter {
    far: f64,
    near: f64,
    residual: f64,
    count: u32,
    erl_db: Option<f32>,
    erle_db: Option<f32>,
    /// Far-end, near-end and residual energy of the last windows, a ring.
    recent: [[f64; 3]; REPORTED_WINDOWS],
    recent_next: usize,
    recent_count: usize,
    single_talk_samples: u64,
    double_talk_samples: u64,
}

impl EchoMeter {
    pub(super) fn reset(&mut self) {
        *self = EchoMeter::default();
    }

    /// Account one sample with the far end active. Returns true when a
    /// window has just completed (new ERL/ERLE figures).
    pub(super) fn observe(
        &mut self,
        far: f32,
        near: f32,
        residual: f32,
        double_talk: bool,
    ) -> bool {
        if double_talk {
            self.double_talk_samples += 1;
            return false;
        }
        self.single_talk_samples += 1;
        self.far += f64::from(far * far);
        self.near += f64::from(near * near);
        self.residual += f64::from(residual * residual);
        self.count += 1;
        if self.count < WINDOW {
            return false;
        }
        let erl = db(self.far, self.near);
        let erle = db(self.near, self.residual);
        self.erl_db = Some(smooth(self.erl_db, erl));
        self.erle_db = Some(smooth(self.erle_db, erle));
        self.recent[self.recent_next] = [self.far, self.near, self.residual];
        self.recent_next = (self.recent_next + 1) % REPORTED_WINDOWS;
        self.recent_count = (self.recent_count + 1).min(REPORTED_WINDOWS);
        self.far = 0.0;
        self.near = 0.0;
        self.residual = 0.0;
        self.count = 0;
        true
    }

    /// Forget the ERLE (echo path change): the next window sets it afresh.
    pub(super) fn forget_erle(&mut self) {
        self.erle_db = None;
        self.recent_count = 0;
    }

    pub(super) fn erl_db(&self) -> Option<f32> {
        self.erl_db
    }

    /// The exported ERL and ERLE, dB: power ratios over the last windows.
    pub(super) fn reported(&self) -> Option<(f32, f32)> {
        if self.recent_count == 0 {
            return None;
        }
        let mut sum = [0.0f64; 3];
        for window in self.recent.iter().take(self.recent_count) {
            for (s, v) in sum.iter_mut().zip(window) {
                *s += v;
            }
        }
        Some((db(sum[0], sum[1]), db(sum[1], sum[2])))
    }

    /// Share of far-end-active time spent in double talk.
    pub(super) fn double_talk_ratio(&self) -> f32 {
        let total = self.single_talk_samples + self.double_talk_samples;
        if total == 0 {
            0.0
        } else {
            (self.double_talk_samples as f64 / total as f64) as f32
        }
    }
}

fn db(num: f64, den: f64) -> f32 {
    (10.0 * ((num + POWER_FLOOR) / (den + POWER_FLOOR)).log10()) as f32
}

fn smooth(previous: Option<f32>, new: f32) -> f32 {
    match previous {
        Some(p) => p + SMOOTHING * (new - p),
        None => new,
    }
}
