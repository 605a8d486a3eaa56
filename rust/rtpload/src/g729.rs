//! Hand-written bindings to libbcg729 (see /usr/include/bcg729/encoder.h and decoder.h): one
//! encoder or decoder channel per value, freed on drop. A G.729 frame is 10 ms: 80 linear
//! samples in, 10 bytes out (VAD off, so every frame is a full voice frame).

use std::ffi::c_void;

/// Linear samples per 10 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 80;
/// Encoded bytes per voice frame.
pub const FRAME_BYTES: usize = 10;

#[link(name = "bcg729")]
extern "C" {
    fn initBcg729EncoderChannel(enable_vad: u8) -> *mut c_void;
    fn closeBcg729EncoderChannel(ctx: *mut c_void);
    fn bcg729Encoder(ctx: *mut c_void, input: *const i16, bitstream: *mut u8, length: *mut u8);
    fn initBcg729DecoderChannel() -> *mut c_void;
    fn closeBcg729DecoderChannel(ctx: *mut c_void);
    fn bcg729Decoder(
        ctx: *mut c_void,
        bitstream: *const u8,
        length: u8,
        frame_erased: u8,
        sid_frame: u8,
        rfc3389_payload: u8,
        output: *mut i16,
    );
}

pub struct Encoder(*mut c_void);

impl Encoder {
    /// An encoder channel with VAD/DTX off.
    pub fn new() -> Result<Encoder, String> {
        // SAFETY: plain constructor; a null return (allocation failure) is checked.
        let ctx = unsafe { initBcg729EncoderChannel(0) };
        if ctx.is_null() {
            return Err("initBcg729EncoderChannel failed".into());
        }
        Ok(Encoder(ctx))
    }

    /// Encodes one 10 ms frame; returns the bitstream length (10 with VAD off).
    pub fn encode(&mut self, input: &[i16; FRAME_SAMPLES], out: &mut [u8; FRAME_BYTES]) -> usize {
        let mut length = 0u8;
        // SAFETY: the context is live; input holds the 80 samples the encoder reads and out
        // the 10 bytes it writes at most.
        unsafe { bcg729Encoder(self.0, input.as_ptr(), out.as_mut_ptr(), &mut length) };
        usize::from(length)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context came from initBcg729EncoderChannel and is freed once.
        unsafe { closeBcg729EncoderChannel(self.0) };
    }
}

pub struct Decoder(*mut c_void);

impl Decoder {
    pub fn new() -> Result<Decoder, String> {
        // SAFETY: plain constructor; a null return is checked.
        let ctx = unsafe { initBcg729DecoderChannel() };
        if ctx.is_null() {
            return Err("initBcg729DecoderChannel failed".into());
        }
        Ok(Decoder(ctx))
    }

    /// Decodes one 10-byte voice frame into 80 samples.
    pub fn decode(&mut self, frame: &[u8; FRAME_BYTES], out: &mut [i16; FRAME_SAMPLES]) {
        // SAFETY: the context is live; frame holds the 10 bytes announced and out the 80
        // samples the decoder writes.
        unsafe {
            bcg729Decoder(
                self.0,
                frame.as_ptr(),
                FRAME_BYTES as u8,
                0,
                0,
                0,
                out.as_mut_ptr(),
            );
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from initBcg729DecoderChannel and is freed once.
        unsafe { closeBcg729DecoderChannel(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_tone() -> Result<(), String> {
        let mut encoder = Encoder::new()?;
        let mut decoder = Decoder::new()?;
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut bits = [0u8; FRAME_BYTES];
        let mut out = [0i16; FRAME_SAMPLES];
        let mut energy = 0i64;
        for n in 0..20 {
            for (i, sample) in frame.iter_mut().enumerate() {
                let t = (n * FRAME_SAMPLES + i) as f64 / 8000.0;
                *sample = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            assert_eq!(encoder.encode(&frame, &mut bits), FRAME_BYTES);
            decoder.decode(&bits, &mut out);
            if n >= 10 {
                energy += out
                    .iter()
                    .map(|&s| i64::from(s) * i64::from(s))
                    .sum::<i64>();
            }
        }
        // A 440 Hz tone at amplitude 8000 survives the codec with most of its energy.
        let expected = 10 * FRAME_SAMPLES as i64 * 8000 * 8000 / 2;
        assert!(energy > expected / 4, "energy {energy} of {expected}");
        Ok(())
    }
}
