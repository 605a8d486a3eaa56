//! G.729 (Annex A, with Annex B VAD/DTX/CNG) through libbcg729 1.1.1.
//!
//! RTP payload (RFC 3551 §4.5.6): zero or more 10-byte frames of 10 ms,
//! optionally followed by one 2-byte Annex B SID (silence descriptor)
//! frame, which may only come last. Any other length is malformed.
//!
//! Theory of DTX: with VAD on, the encoder classifies each 10 ms frame as
//! voice (10 bytes), SID (2 bytes: the comfort-noise parameters changed,
//! always the first inactive frame) or untransmitted (0 bytes: keep
//! generating the same noise). The receiver decodes a SID as comfort noise
//! and, for the silent gap that follows, feeds the decoder *erased* frames:
//! bcg729 (as G.729 B.27 specifies) treats an erasure after an inactive
//! frame as an untransmitted frame and continues comfort-noise generation,
//! and an erasure after a voice frame as packet loss (G.729 §4.4
//! concealment). So [`Decoder::conceal`] is the right call both for lost
//! packets and for DTX gaps; the jitter buffer need not know which.
//!
//! One bcg729 context per stream, owned and freed by an RAII wrapper.

use std::ptr::NonNull;

use super::{lookup_kind, CodecDef, CodecError, CodecKind, Decoder, Encoder};

/// Samples per G.729 frame (10 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 80;
/// Bytes per voice frame.
pub const FRAME_BYTES: usize = 10;
/// Bytes per Annex B SID frame.
pub const SID_BYTES: usize = 2;

/// Hand-written declarations of `bcg729/encoder.h` and `bcg729/decoder.h`
/// (version 1.1.1, `BCG729_VERSION_NUMBER 0x010101`).
pub(crate) mod ffi {
    /// `bcg729EncoderChannelContextStruct`, opaque.
    #[repr(C)]
    pub struct EncoderContext {
        _private: [u8; 0],
    }

    /// `bcg729DecoderChannelContextStruct`, opaque.
    #[repr(C)]
    pub struct DecoderContext {
        _private: [u8; 0],
    }

    extern "C" {
        /// Returns a malloc'ed context (NULL if malloc failed).
        pub fn initBcg729EncoderChannel(enable_vad: u8) -> *mut EncoderContext;
        pub fn closeBcg729EncoderChannel(context: *mut EncoderContext);
        /// `input_frame`: 80 samples; `bit_stream`: room for 10 bytes;
        /// `bit_stream_length` receives 10, 2 (SID) or 0 (untransmitted).
        pub fn bcg729Encoder(
            context: *mut EncoderContext,
            input_frame: *const i16,
            bit_stream: *mut u8,
            bit_stream_length: *mut u8,
        );
        pub fn initBcg729DecoderChannel() -> *mut DecoderContext;
        pub fn closeBcg729DecoderChannel(context: *mut DecoderContext);
        /// `bit_stream` may be NULL when `frame_erasure_flag` is set;
        /// `signal` receives 80 samples.
        pub fn bcg729Decoder(
            context: *mut DecoderContext,
            bit_stream: *const u8,
            bit_stream_length: u8,
            frame_erasure_flag: u8,
            sid_frame_flag: u8,
            rfc3389_payload_flag: u8,
            signal: *mut i16,
        );
    }
}

/// Owns one bcg729 encoder context.
struct EncoderChannel(NonNull<ffi::EncoderContext>);

// SAFETY: the context is plain heap memory owned by this value; bcg729 keeps
// no global or thread-local state, so using it from another thread (one at
// a time, as `&mut self` guarantees) is sound.
unsafe impl Send for EncoderChannel {}

impl EncoderChannel {
    fn new(vad: bool) -> Result<Self, CodecError> {
        // SAFETY: no preconditions; the result is checked for NULL.
        let raw = unsafe { ffi::initBcg729EncoderChannel(u8::from(vad)) };
        NonNull::new(raw)
            .map(EncoderChannel)
            .ok_or_else(|| CodecError::Init("initBcg729EncoderChannel returned NULL".into()))
    }

    /// Encodes one frame; returns the bytes written to `bits` (0, 2 or 10).
    fn encode_frame(
        &mut self,
        frame: &[i16; FRAME_SAMPLES],
        bits: &mut [u8; FRAME_BYTES],
    ) -> usize {
        let mut length = 0u8;
        // SAFETY: the context is live; `frame` has the 80 samples and `bits`
        // the 10 bytes the function accesses.
        unsafe {
            ffi::bcg729Encoder(
                self.0.as_ptr(),
                frame.as_ptr(),
                bits.as_mut_ptr(),
                &mut length,
            )
        };
        usize::from(length).min(FRAME_BYTES)
    }
}

impl Drop for EncoderChannel {
    fn drop(&mut self) {
        // SAFETY: created by initBcg729EncoderChannel, freed exactly once.
        unsafe { ffi::closeBcg729EncoderChannel(self.0.as_ptr()) }
    }
}

/// Owns one bcg729 decoder context.
struct DecoderChannel(NonNull<ffi::DecoderContext>);

// SAFETY: as for EncoderChannel.
unsafe impl Send for DecoderChannel {}

impl DecoderChannel {
    fn new() -> Result<Self, CodecError> {
        // SAFETY: no preconditions; the result is checked for NULL.
        let raw = unsafe { ffi::initBcg729DecoderChannel() };
        NonNull::new(raw)
            .map(DecoderChannel)
            .ok_or_else(|| CodecError::Init("initBcg729DecoderChannel returned NULL".into()))
    }

    /// Decodes a 10-byte voice frame or a 2-byte SID frame into `signal`.
    fn decode_frame(&mut self, frame: &[u8], signal: &mut [i16; FRAME_SAMPLES]) {
        let sid = frame.len() == SID_BYTES;
        debug_assert!(sid || frame.len() == FRAME_BYTES);
        // SAFETY: the context is live; `frame` holds the 10 (voice) or 2
        // (SID, flagged) bytes bcg729 reads; `signal` has room for 80.
        unsafe {
            ffi::bcg729Decoder(
                self.0.as_ptr(),
                frame.as_ptr(),
                frame.len() as u8,
                0,
                u8::from(sid),
                0,
                signal.as_mut_ptr(),
            )
        }
    }

    /// One erased frame: loss concealment after voice, comfort noise after
    /// a SID or untransmitted frame.
    fn erase_frame(&mut self, signal: &mut [i16; FRAME_SAMPLES]) {
        // SAFETY: a NULL bit stream is allowed with the erasure flag set
        // (bcg729 then reads no input); `signal` has room for 80.
        unsafe {
            ffi::bcg729Decoder(
                self.0.as_ptr(),
                std::ptr::null(),
                0,
                1,
                0,
                0,
                signal.as_mut_ptr(),
            )
        }
    }
}

impl Drop for DecoderChannel {
    fn drop(&mut self) {
        // SAFETY: created by initBcg729DecoderChannel, freed exactly once.
        unsafe { ffi::closeBcg729DecoderChannel(self.0.as_ptr()) }
    }
}

pub struct G729Decoder {
    channel: DecoderChannel,
}

impl G729Decoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(G729Decoder {
            channel: DecoderChannel::new()?,
        })
    }
}

impl std::fmt::Debug for G729Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G729Decoder").finish_non_exhaustive()
    }
}

/// Frames in a payload of `len` bytes (a trailing SID counts as one), or
/// `None` if the length is not 10·k or 10·k + 2.
pub fn frames_in_payload(len: usize) -> Option<usize> {
    match len % FRAME_BYTES {
        0 => Some(len / FRAME_BYTES),
        SID_BYTES => Some(len / FRAME_BYTES + 1),
        _ => None,
    }
}

impl Decoder for G729Decoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(CodecKind::G729)
    }

    /// An empty payload carries no duration (RTP does not normally send
    /// one); it decodes to 0 samples and the caller covers the gap with
    /// [`Decoder::conceal`], which during DTX is comfort noise.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let frames = frames_in_payload(payload.len()).ok_or(CodecError::BadPayload(
            "G.729 payload is not 10*k or 10*k+2 bytes",
        ))?;
        let mut signal = [0i16; FRAME_SAMPLES];
        out.reserve(frames * FRAME_SAMPLES);
        // chunks() yields the 10-byte frames, then the 2-byte SID if present.
        for frame in payload.chunks(FRAME_BYTES) {
            self.channel.decode_frame(frame, &mut signal);
            out.extend_from_slice(&signal);
        }
        Ok(frames * FRAME_SAMPLES)
    }

    /// bcg729 frame-erasure decoding, one 10 ms frame at a time; a request
    /// that is not a multiple of 80 samples truncates the last frame (the
    /// decoder state has then advanced by the whole frame).
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let mut signal = [0i16; FRAME_SAMPLES];
        let mut remaining = samples;
        out.reserve(samples);
        while remaining > 0 {
            self.channel.erase_frame(&mut signal);
            let take = remaining.min(FRAME_SAMPLES);
            out.extend_from_slice(&signal[..take]);
            remaining -= take;
        }
    }
}

pub struct G729Encoder {
    channel: EncoderChannel,
}

impl G729Encoder {
    /// `vad`: G.729 Annex B voice activity detection with DTX.
    pub fn new(vad: bool) -> Result<Self, CodecError> {
        Ok(G729Encoder {
            channel: EncoderChannel::new(vad)?,
        })
    }
}

impl std::fmt::Debug for G729Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G729Encoder").finish_non_exhaustive()
    }
}

impl Encoder for G729Encoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(CodecKind::G729)
    }

    /// Any positive multiple of 80 samples. The frames' outputs are
    /// concatenated in order, keeping the payload well formed with VAD on:
    /// - untransmitted frames add nothing; if all frames are untransmitted
    ///   the result is 0 bytes: send no packet;
    /// - a SID is kept only if no voice frame follows it in the same packet
    ///   (RFC 3551: the SID comes last), and of several SIDs only the last.
    ///
    /// When voice resumes inside a packet after DTX frames, the payload
    /// still starts at the packet's timestamp, so that voice plays up to
    /// `ptime − 10 ms` early; the next packet is on time again.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        if pcm.is_empty() || pcm.len() % FRAME_SAMPLES != 0 {
            return Err(CodecError::BadPayload(
                "G.729 encoder needs a multiple of 80 samples",
            ));
        }
        let start = out.len();
        let mut pending_sid = false;
        let mut bits = [0u8; FRAME_BYTES];
        for frame in pcm.chunks_exact(FRAME_SAMPLES) {
            let Ok(input) = <&[i16; FRAME_SAMPLES]>::try_from(frame) else {
                continue; // unreachable: chunks_exact yields whole frames
            };
            let written = self.channel.encode_frame(input, &mut bits);
            if written == 0 {
                continue;
            }
            if pending_sid {
                // A SID must be last: drop it; a newer SID or voice follows.
                out.truncate(out.len() - SID_BYTES);
            }
            pending_sid = written == SID_BYTES;
            out.extend_from_slice(&bits[..written]);
        }
        Ok(out.len() - start)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
