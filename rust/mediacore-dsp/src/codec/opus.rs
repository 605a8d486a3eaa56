//! Opus (RFC 6716, RTP per RFC 7587) through libopus, at 8 kHz mono.
//!
//! The RTP clock is always 48 kHz (timestamps advance 960 per 20 ms), but
//! the engine's PCM is 8 kHz, so libopus runs at 8 kHz: the encoder takes
//! narrowband input (`OPUS_APPLICATION_VOIP`), the decoder resamples any
//! received bandwidth down to 8 kHz and downmixes stereo to mono.
//!
//! Packetisation: one Opus frame per packet, of the packet's whole duration
//! (20, 40 or 60 ms; Opus codes 40 and 60 ms frames natively), rather than
//! several 20 ms frames glued by the repacketiser: fewer TOC/framing bytes
//! and one library call per packet.
//!
//! Received packets may hold anything RFC 6716 allows (up to 120 ms, any
//! frame count); the decoder sizes its output from the packet itself.

use std::ffi::c_int;
use std::ptr::NonNull;

use super::{lookup_kind, CodecDef, CodecError, CodecKind, Decoder, Encoder};

/// Encoder input unit: 20 ms at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Longest Opus packet, 120 ms, at 8 kHz.
pub const MAX_PACKET_SAMPLES: usize = 960;
/// Concealment granularity: libopus PLC works in multiples of 2.5 ms.
const PLC_STEP_SAMPLES: usize = 20;
/// Encoder output room per packet, bytes. RFC 6716 caps a frame at 1275
/// bytes; narrowband speech at any sane bitrate is far below.
const MAX_PAYLOAD_BYTES: usize = 1500;
const RATE_HZ: i32 = 8000;

/// Hand-written declarations from `opus/opus.h` and `opus/opus_defines.h`
/// (libopus 1.3).
pub(crate) mod ffi {
    use std::ffi::c_int;

    pub const OPUS_OK: c_int = 0;
    pub const OPUS_BAD_ARG: c_int = -1;
    pub const OPUS_BUFFER_TOO_SMALL: c_int = -2;
    pub const OPUS_INVALID_PACKET: c_int = -4;
    pub const OPUS_APPLICATION_VOIP: c_int = 2048;
    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;

    /// `OpusEncoder`, opaque.
    #[repr(C)]
    pub struct OpusEncoder {
        _private: [u8; 0],
    }

    /// `OpusDecoder`, opaque.
    #[repr(C)]
    pub struct OpusDecoder {
        _private: [u8; 0],
    }

    extern "C" {
        pub fn opus_encoder_create(
            fs: i32,
            channels: c_int,
            application: c_int,
            error: *mut c_int,
        ) -> *mut OpusEncoder;
        pub fn opus_encoder_destroy(st: *mut OpusEncoder);
        /// Returns the packet length in bytes, or a negative error code.
        pub fn opus_encode(
            st: *mut OpusEncoder,
            pcm: *const i16,
            frame_size: c_int,
            data: *mut u8,
            max_data_bytes: i32,
        ) -> i32;
        pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
        pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int)
            -> *mut OpusDecoder;
        pub fn opus_decoder_destroy(st: *mut OpusDecoder);
        /// `data` NULL means packet loss (PLC). Returns samples per channel
        /// decoded, or a negative error code.
        pub fn opus_decode(
            st: *mut OpusDecoder,
            data: *const u8,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        /// Samples per channel in a packet at rate `fs`, or a negative error.
        pub fn opus_packet_get_nb_samples(packet: *const u8, len: i32, fs: i32) -> c_int;
    }
}

fn error_text(code: c_int) -> &'static str {
    match code {
        ffi::OPUS_BAD_ARG => "Opus: bad argument",
        ffi::OPUS_BUFFER_TOO_SMALL => "Opus: buffer too small",
        ffi::OPUS_INVALID_PACKET => "Opus: invalid packet",
        _ => "Opus: codec error",
    }
}

pub struct OpusEncoder {
    state: NonNull<ffi::OpusEncoder>,
}

// SAFETY: the state is heap memory owned by this value; libopus keeps no
// global mutable state, and `&mut self` serialises all use.
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
    /// `bitrate`: target bit/s (500..=512000), or `None` for libopus's
    /// default for 8 kHz VoIP.
    pub fn new(bitrate: Option<u32>) -> Result<Self, CodecError> {
        let mut error: c_int = 0;
        // SAFETY: `error` is a valid out-pointer; the result is checked.
        let raw =
            unsafe { ffi::opus_encoder_create(RATE_HZ, 1, ffi::OPUS_APPLICATION_VOIP, &mut error) };
        let state = match NonNull::new(raw) {
            Some(state) if error == ffi::OPUS_OK => state,
            _ => {
                return Err(CodecError::Init(format!(
                    "opus_encoder_create: {}",
                    error_text(error)
                )))
            }
        };
        let encoder = OpusEncoder { state };
        if let Some(bitrate) = bitrate {
            let value = i32::try_from(bitrate)
                .ok()
                .filter(|b| (500..=512_000).contains(b))
                .ok_or_else(|| CodecError::Init(format!("Opus bitrate {bitrate} out of range")))?;
            // SAFETY: live state; OPUS_SET_BITRATE takes one opus_int32.
            let result = unsafe {
                ffi::opus_encoder_ctl(encoder.state.as_ptr(), ffi::OPUS_SET_BITRATE_REQUEST, value)
            };
            if result != ffi::OPUS_OK {
                return Err(CodecError::Init(format!(
                    "OPUS_SET_BITRATE: {}",
                    error_text(result)
                )));
            }
        }
        Ok(encoder)
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create, destroyed exactly once.
        unsafe { ffi::opus_encoder_destroy(self.state.as_ptr()) }
    }
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl Encoder for OpusEncoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(CodecKind::Opus)
    }

    /// 160, 320 or 480 samples (20, 40, 60 ms), coded as one Opus frame.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        if !matches!(pcm.len(), 160 | 320 | 480) {
            return Err(CodecError::BadPayload(
                "Opus encoder needs 20, 40 or 60 ms of PCM",
            ));
        }
        let mut packet = [0u8; MAX_PAYLOAD_BYTES];
        // SAFETY: live state; `pcm` holds `frame_size` samples (mono);
        // `packet` has the `max_data_bytes` we pass.
        let written = unsafe {
            ffi::opus_encode(
                self.state.as_ptr(),
                pcm.as_ptr(),
                pcm.len() as c_int,
                packet.as_mut_ptr(),
                MAX_PAYLOAD_BYTES as i32,
            )
        };
        let written =
            usize::try_from(written).map_err(|_| CodecError::BadPayload(error_text(written)))?;
        let bytes = packet
            .get(..written)
            .ok_or(CodecError::BadPayload("Opus: encoder overran its buffer"))?;
        out.extend_from_slice(bytes);
        Ok(written)
    }
}

pub struct OpusDecoder {
    state: NonNull<ffi::OpusDecoder>,
}

// SAFETY: as for OpusEncoder.
unsafe impl Send for OpusDecoder {}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        let mut error: c_int = 0;
        // SAFETY: `error` is a valid out-pointer; the result is checked.
        let raw = unsafe { ffi::opus_decoder_create(RATE_HZ, 1, &mut error) };
        match NonNull::new(raw) {
            Some(state) if error == ffi::OPUS_OK => Ok(OpusDecoder { state }),
            _ => Err(CodecError::Init(format!(
                "opus_decoder_create: {}",
                error_text(error)
            ))),
        }
    }
}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed exactly once.
        unsafe { ffi::opus_decoder_destroy(self.state.as_ptr()) }
    }
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl Decoder for OpusDecoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(CodecKind::Opus)
    }

    /// Any valid Opus packet; an empty payload is not one (libopus would
    /// read it as a loss, which is `conceal`'s job).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::BadPayload("Opus: empty payload"));
        }
        let len = i32::try_from(payload.len())
            .map_err(|_| CodecError::BadPayload("Opus: payload too long"))?;
        // SAFETY: `payload` is `len` readable bytes.
        let samples = unsafe { ffi::opus_packet_get_nb_samples(payload.as_ptr(), len, RATE_HZ) };
        let samples =
            usize::try_from(samples).map_err(|_| CodecError::BadPayload(error_text(samples)))?;
        if samples == 0 || samples > MAX_PACKET_SAMPLES {
            return Err(CodecError::BadPayload("Opus: packet duration out of range"));
        }
        let start = out.len();
        out.resize(start + samples, 0);
        let Some(pcm) = out.get_mut(start..) else {
            return Err(CodecError::BadPayload("Opus: output buffer"));
        };
        // SAFETY: live state; `payload` is `len` bytes; `pcm` has room for
        // `samples` mono samples, the frame_size we pass.
        let decoded = unsafe {
            ffi::opus_decode(
                self.state.as_ptr(),
                payload.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                samples as c_int,
                0,
            )
        };
        match usize::try_from(decoded) {
            Ok(decoded) if decoded <= samples => {
                out.truncate(start + decoded);
                Ok(decoded)
            }
            _ => {
                out.truncate(start);
                Err(CodecError::BadPayload(error_text(decoded)))
            }
        }
    }

    /// libopus packet-loss concealment (decode with no data), in steps of
    /// 2.5 ms up to 120 ms; a request that is not a multiple of 2.5 ms
    /// truncates the last step.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let mut scratch = [0i16; MAX_PACKET_SAMPLES];
        let mut remaining = samples;
        out.reserve(samples);
        while remaining > 0 {
            let take = remaining.min(MAX_PACKET_SAMPLES);
            let step = take.div_ceil(PLC_STEP_SAMPLES) * PLC_STEP_SAMPLES;
            // SAFETY: live state; NULL data requests PLC of `step` samples,
            // which fit in `scratch` (step <= MAX_PACKET_SAMPLES).
            let decoded = unsafe {
                ffi::opus_decode(
                    self.state.as_ptr(),
                    std::ptr::null(),
                    0,
                    scratch.as_mut_ptr(),
                    step as c_int,
                    0,
                )
            };
            // On a (not expected) failure, conceal with silence.
            let valid = usize::try_from(decoded).unwrap_or(0).min(take);
            out.extend_from_slice(&scratch[..valid]);
            out.resize(out.len() + (take - valid), 0);
            remaining -= take;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
