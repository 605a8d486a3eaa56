//! The codecs of the transcoding path, and their registry.
//!
//! Theory of operation: every codec is described once, declaratively, by a
//! [`CodecDef`] in one table ([`codecs`]), in the manner of rtpengine's
//! `lib/g711.c`. The engine negotiates with the table (SDP name, clock rate,
//! static payload type, allowed ptimes) and gets per-stream state from
//! [`new_decoder`] / [`new_encoder`]. Internally all audio is 8 kHz mono
//! `i16` PCM; a decoder turns one RTP payload into PCM, an encoder turns
//! `ptime` worth of PCM into one RTP payload.
//!
//! Per-packet rules (this is the hot path):
//! - callers own the output buffers; codecs only append to them, so after
//!   the first few packets have grown the `Vec`s nothing is allocated;
//! - malformed payloads are `Err(CodecError::BadPayload)` for the caller to
//!   count and drop, never a panic.

use std::fmt;

pub mod g711;
pub mod g729;
pub mod opus;
#[cfg(test)]
mod test_signal;

/// Internal PCM sample rate, Hz.
pub const PCM_RATE_HZ: u32 = 8000;
/// Samples per millisecond of internal PCM.
pub const SAMPLES_PER_MS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcma,
    Pcmu,
    G729,
    Opus,
}

/// One small declarative description per codec.
///
/// Silence is described by [`CodecDef::silence_byte`] rather than a
/// function: for G.711 one byte value per sample is silence (A-law `0xD5`,
/// µ-law `0xFF`, both decoding to the smallest positive level/zero); G.729
/// and Opus have no constant silence payload, so a stream that needs one
/// encodes zeros with its own encoder (or, with G.729 VAD, sends nothing).
#[derive(Debug)]
pub struct CodecDef {
    pub kind: CodecKind,
    /// SDP encoding name (`a=rtpmap`), compared case-insensitively.
    pub name: &'static str,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
    /// Channels as written in SDP. Opus is "opus/48000/2" per RFC 7587, but
    /// we decode and encode mono.
    pub channels: u8,
    /// Static RTP payload type (RFC 3551), if any.
    pub static_pt: Option<u8>,
    pub default_ptime_ms: u32,
    /// Packetisation granularity, ms: every allowed ptime is a multiple of
    /// it. G.711 is sample-based and has no codec frame; we use 10 ms.
    pub frame_ms: u32,
    /// Encoder input unit at 8 kHz: `encode` takes a multiple of it.
    /// G.711 1 (any sample count), G.729 80 (10 ms), Opus 160 (20 ms).
    pub frame_samples: usize,
    /// Packet durations we send and accept in SDP `a=ptime`, ms.
    pub allowed_ptimes_ms: &'static [u32],
    /// One byte per sample that decodes to silence (G.711 only).
    pub silence_byte: Option<u8>,
}

impl CodecDef {
    /// RTP timestamp units per 8 kHz sample (G.711/G.729: 1, Opus: 6).
    pub fn rtp_units_per_sample(&self) -> u32 {
        self.clock_rate / PCM_RATE_HZ
    }

    /// Whether `ptime_ms` is one of the packet durations this codec allows.
    pub fn allows_ptime(&self, ptime_ms: u32) -> bool {
        self.allowed_ptimes_ms.contains(&ptime_ms)
    }

    /// 8 kHz samples in a packet of `ptime_ms`.
    pub fn samples_per_packet(&self, ptime_ms: u32) -> usize {
        ptime_ms as usize * SAMPLES_PER_MS
    }
}

static CODECS: [CodecDef; 4] = [
    CodecDef {
        kind: CodecKind::Pcma,
        name: "PCMA",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(8),
        default_ptime_ms: 20,
        frame_ms: 10,
        frame_samples: 1,
        allowed_ptimes_ms: &[10, 20, 30, 40, 60],
        silence_byte: Some(g711::ALAW_SILENCE),
    },
    CodecDef {
        kind: CodecKind::Pcmu,
        name: "PCMU",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(0),
        default_ptime_ms: 20,
        frame_ms: 10,
        frame_samples: 1,
        allowed_ptimes_ms: &[10, 20, 30, 40, 60],
        silence_byte: Some(g711::ULAW_SILENCE),
    },
    CodecDef {
        kind: CodecKind::G729,
        name: "G729",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(18),
        default_ptime_ms: 20,
        frame_ms: 10,
        frame_samples: g729::FRAME_SAMPLES,
        allowed_ptimes_ms: &[10, 20, 30, 40, 60],
        silence_byte: None,
    },
    CodecDef {
        kind: CodecKind::Opus,
        name: "opus",
        clock_rate: 48000,
        channels: 2,
        static_pt: None,
        default_ptime_ms: 20,
        frame_ms: 20,
        frame_samples: opus::FRAME_SAMPLES,
        allowed_ptimes_ms: &[20, 40, 60],
        silence_byte: None,
    },
];

/// Every codec we can transcode, in a fixed order.
pub fn codecs() -> &'static [CodecDef] {
    &CODECS
}

/// The codec with SDP encoding name `name` (any case) at `clock_rate`.
pub fn lookup(name: &str, clock_rate: u32) -> Option<&'static CodecDef> {
    let name = canonical_name(name);
    CODECS
        .iter()
        .find(|def| def.clock_rate == clock_rate && def.name.eq_ignore_ascii_case(name))
}

/// The registry name for an SDP encoding name. G.729 Annex A and B are the same bitstream as
/// G.729 (Annex A is a lower-complexity encoder, which is what bcg729 is; Annex B adds SID
/// frames), and devices name them "G729a", "G729b" or "G729ab" (VOS3000's "G729 negotiation
/// mode" offers these names), so all of them are G729 here.
pub fn canonical_name(name: &str) -> &str {
    const G729_NAMES: [&str; 4] = ["G729", "G729A", "G729B", "G729AB"];
    if G729_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        "G729"
    } else {
        name
    }
}

pub fn lookup_kind(kind: CodecKind) -> &'static CodecDef {
    match kind {
        CodecKind::Pcma => &CODECS[0],
        CodecKind::Pcmu => &CODECS[1],
        CodecKind::G729 => &CODECS[2],
        CodecKind::Opus => &CODECS[3],
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The payload (or PCM length handed to an encoder) is not valid for the
    /// codec; the packet is to be counted and dropped.
    BadPayload(&'static str),
    /// A codec library refused to create its state.
    Init(String),
    /// A valid request this implementation does not support.
    Unsupported(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::BadPayload(why) => write!(f, "bad payload: {why}"),
            CodecError::Init(why) => write!(f, "codec initialisation failed: {why}"),
            CodecError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for CodecError {}

pub trait Decoder: Send {
    fn def(&self) -> &'static CodecDef;
    /// Decodes one RTP payload, appending 8 kHz PCM to `out`; returns samples appended.
    /// Malformed payloads are errors (counted by the caller), never panics;
    /// on error nothing is appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;
    /// Packet-loss concealment: appends exactly `samples` of concealment for
    /// lost (or, with DTX, untransmitted) audio. See each codec for the method.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
}

pub trait Encoder: Send {
    fn def(&self) -> &'static CodecDef;
    /// Encodes exactly `pcm.len()` samples, which must be a multiple of
    /// `frame_samples` and form a valid packet duration for the codec;
    /// appends the RTP payload to `out`. Returns bytes appended. Zero bytes
    /// (G.729 with VAD during DTX) means: send no packet. On error nothing
    /// is appended.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct EncoderOptions {
    /// G.729 Annex B VAD/DTX/CNG. Ignored by other codecs.
    pub vad: bool,
    /// Opus target bitrate, bit/s (500..=512000); `None` lets libopus pick.
    /// Ignored by other codecs.
    pub bitrate: Option<u32>,
}

pub fn new_decoder(kind: CodecKind) -> Result<Box<dyn Decoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcma => Box::new(g711::G711Decoder::new(g711::Law::A)),
        CodecKind::Pcmu => Box::new(g711::G711Decoder::new(g711::Law::Mu)),
        CodecKind::G729 => Box::new(g729::G729Decoder::new()?),
        CodecKind::Opus => Box::new(opus::OpusDecoder::new()?),
    })
}

pub fn new_encoder(kind: CodecKind, opts: EncoderOptions) -> Result<Box<dyn Encoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcma => Box::new(g711::G711Encoder::new(g711::Law::A)),
        CodecKind::Pcmu => Box::new(g711::G711Encoder::new(g711::Law::Mu)),
        CodecKind::G729 => Box::new(g729::G729Encoder::new(opts.vad)?),
        CodecKind::Opus => Box::new(opus::OpusEncoder::new(opts.bitrate)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lookup_kind_matches_table() {
        for def in codecs() {
            assert_eq!(lookup_kind(def.kind).kind, def.kind);
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_checks_clock() {
        assert_eq!(lookup("pcma", 8000).map(|d| d.kind), Some(CodecKind::Pcma));
        assert_eq!(lookup("PCMU", 8000).map(|d| d.kind), Some(CodecKind::Pcmu));
        assert_eq!(lookup("g729", 8000).map(|d| d.kind), Some(CodecKind::G729));
        assert_eq!(lookup("OPUS", 48000).map(|d| d.kind), Some(CodecKind::Opus));
        assert!(lookup("opus", 8000).is_none());
        assert!(lookup("PCMA", 16000).is_none());
        assert!(lookup("G722", 8000).is_none());
    }

    #[test]
    fn table_is_consistent() {
        for def in codecs() {
            assert!(def.allows_ptime(def.default_ptime_ms), "{}", def.name);
            for &ptime in def.allowed_ptimes_ms {
                assert_eq!(ptime % def.frame_ms, 0, "{} {ptime}", def.name);
                assert_eq!(def.samples_per_packet(ptime) % def.frame_samples, 0);
            }
            assert_eq!(def.silence_byte.is_some(), def.frame_samples == 1);
        }
        assert_eq!(lookup_kind(CodecKind::Opus).rtp_units_per_sample(), 6);
        assert_eq!(lookup_kind(CodecKind::G729).rtp_units_per_sample(), 1);
    }

    #[test]
    fn every_codec_instantiates_and_round_trips_a_packet() {
        for def in codecs() {
            let mut enc = new_encoder(def.kind, EncoderOptions::default()).unwrap();
            let mut dec = new_decoder(def.kind).unwrap();
            assert_eq!(enc.def().kind, def.kind);
            assert_eq!(dec.def().kind, def.kind);
            let pcm = vec![0i16; def.samples_per_packet(def.default_ptime_ms)];
            let mut payload = Vec::new();
            enc.encode(&pcm, &mut payload).unwrap();
            let mut out = Vec::new();
            assert_eq!(dec.decode(&payload, &mut out).unwrap(), pcm.len());
            dec.conceal(pcm.len(), &mut out);
            assert_eq!(out.len(), 2 * pcm.len());
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(CodecError::BadPayload("x").to_string(), "bad payload: x");
    }
}
