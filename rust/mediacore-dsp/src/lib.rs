//! Codecs and signal processing for the media engine's transcoding path.
//!
//! Audio inside the engine is 8 kHz mono `i16` PCM. [`codec`] holds the
//! codec registry and the G.711 (pure Rust), G.729 (libbcg729) and Opus
//! (libopus) decoders and encoders; [`dtmf`] the in-band DTMF detector and
//! generator; [`aec`] the line echo canceller; [`jitter`] the adaptive jitter
//! buffer with concealment.
//!
//! Policy: everything here runs per packet on untrusted network input. A
//! panic is a bug, never a consequence of input: malformed payloads are
//! `Err` values for the caller to count and drop, and codecs append to
//! caller-owned buffers so that the steady state allocates nothing.

pub mod aec;
pub mod codec;
pub mod dtmf;
pub mod jitter;
#[cfg(test)]
pub(crate) mod test_pcap;

pub use codec::{
    codecs, lookup, lookup_kind, new_decoder, new_encoder, CodecDef, CodecError, CodecKind,
    Decoder, Encoder, EncoderOptions,
};
