//! The codec floor: what libbcg729 alone costs per transcoded call-second, the least any
//! engine built on it can spend. One call-second of PCMA ↔ G.729 is 50 packets each way, i.e.
//! 100 G.729 frames encoded (A's speech towards B) and 100 decoded (B's towards A). The
//! measurement runs that on the speech clip in one thread until it has used the requested CPU
//! time (thread CPU clock) and divides. G.711 conversion, resampling-free here, is left out: a
//! table lookup per sample, negligible next to G.729.

use crate::g729::{self, FRAME_BYTES, FRAME_SAMPLES};
use crate::speech::Speech;
use std::time::Duration;

/// Packets per direction per call-second at 20 ms.
const PACKETS_PER_SECOND: usize = 50;

pub struct Floor {
    pub call_seconds: u64,
    pub encode_s: f64,
    pub decode_s: f64,
}

impl Floor {
    pub fn ms_per_call_second(&self) -> f64 {
        (self.encode_s + self.decode_s) * 1000.0 / self.call_seconds.max(1) as f64
    }

    pub fn json(&self) -> String {
        let per = |s: f64| s * 1000.0 / self.call_seconds.max(1) as f64;
        format!(
            "{{\"mode\":\"codec-floor\",\"codec\":\"libbcg729\",\"call_seconds\":{},\
             \"cpu_s\":{:.3},\"cpu_ms_per_call_second\":{:.4},\
             \"encode_ms_per_call_second\":{:.4},\"decode_ms_per_call_second\":{:.4}}}",
            self.call_seconds,
            self.encode_s + self.decode_s,
            self.ms_per_call_second(),
            per(self.encode_s),
            per(self.decode_s),
        )
    }

    pub fn human(&self) -> String {
        format!(
            "codec floor (libbcg729, {} call-seconds): {:.3} ms CPU per call-second \
             (encode {:.3}, decode {:.3}) = {:.2}% of a core per call",
            self.call_seconds,
            self.ms_per_call_second(),
            self.encode_s * 1000.0 / self.call_seconds.max(1) as f64,
            self.decode_s * 1000.0 / self.call_seconds.max(1) as f64,
            self.ms_per_call_second() / 10.0,
        )
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Result<Duration, String> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec the call writes into.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Err(format!(
            "clock_gettime: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    ))
}

pub fn measure(speech: &Speech, cpu_budget: Duration) -> Result<Floor, String> {
    let mut encoder = g729::Encoder::new()?;
    let mut decoder = g729::Decoder::new()?;
    let frames_linear: Vec<&[i16; FRAME_SAMPLES]> = speech
        .linear
        .iter()
        .flat_map(|p| p.chunks_exact(FRAME_SAMPLES))
        .filter_map(|f| f.try_into().ok())
        .collect();
    let frames_g729: Vec<&[u8; FRAME_BYTES]> = speech
        .g729
        .iter()
        .flat_map(|p| p.chunks_exact(FRAME_BYTES))
        .filter_map(|f| f.try_into().ok())
        .collect();
    if frames_linear.is_empty() || frames_g729.is_empty() {
        return Err("empty speech clip".into());
    }
    let frames_per_second = 2 * PACKETS_PER_SECOND;
    let (mut bits, mut samples) = ([0u8; FRAME_BYTES], [0i16; FRAME_SAMPLES]);
    let (mut encode, mut decode) = (Duration::ZERO, Duration::ZERO);
    let mut call_seconds = 0u64;
    let mut next = 0usize;
    while encode + decode < cpu_budget {
        let t0 = thread_cpu()?;
        for i in 0..frames_per_second {
            let frame = frames_linear[(next + i) % frames_linear.len()];
            if encoder.encode(frame, &mut bits) != FRAME_BYTES {
                return Err("G.729 encoder returned a short frame".into());
            }
        }
        let t1 = thread_cpu()?;
        for i in 0..frames_per_second {
            decoder.decode(frames_g729[(next + i) % frames_g729.len()], &mut samples);
        }
        let t2 = thread_cpu()?;
        std::hint::black_box((&bits, &samples));
        encode += t1.saturating_sub(t0);
        decode += t2.saturating_sub(t1);
        next = (next + frames_per_second) % frames_linear.len();
        call_seconds += 1;
    }
    Ok(Floor {
        call_seconds,
        encode_s: encode.as_secs_f64(),
        decode_s: decode.as_secs_f64(),
    })
}
