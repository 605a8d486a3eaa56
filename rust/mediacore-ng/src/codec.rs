//! Codec negotiation for ng offers and answers: rtpengine's `codec` options (`strip`, `mask`,
//! `transcode`, `offer`, `accept`), the codec lists handed to the engine, and the format edits
//! that make the relayed SDP match what the engine will do.
//!
//! Theory of operation. Every audio `m=` section is looked at twice.
//!
//! - **Offer** ([`plan_offer`]): the offerer's formats become its leg's codec list (what it can
//!   receive; stripped codecs removed, its own order kept). The SDP sent onward lists the
//!   offerer's codecs minus stripped and masked ones, `offer` codecs moved to the front, and
//!   `transcode` codecs the offerer lacks appended with a free payload type. The result is kept
//!   per section ([`OfferState`]) for the answer.
//! - **Answer** ([`plan_answer`]): the answerer's formats become its leg's codec list. When the
//!   answer's first audio codec is one the offerer offered, the media is relayed: the answer goes
//!   back as it is (minus codecs the offerer never offered, when codec options were used), its
//!   codecs on the offerer's payload types (RFC 3264 §6.1; `answer_formats`). When
//!   it is one we added (or one accepted with `accept`) and the offerer has a codec we can
//!   transcode, the answer toward the offerer is rewritten to list the offerer's own codec (its
//!   payload type and attribute lines) plus its telephone-event if both sides have one, and the
//!   engine transcodes. In every case the offerer's leg list is reordered so that the codec the
//!   answer gave it comes first, because the engine sends each party the first audio codec of
//!   its leg and transcodes exactly when the two legs' first codecs differ.
//!
//! Without any codec option nothing in the SDP changes but those payload types; the legs still
//! carry their codec lists, each with its own party's numbers (the relay maps between them).

use mediacore_engine::spec::CodecSpec;
use mediacore_engine::Side;

use crate::sdp::{FormatEdit, FormatEntry, Media};

/// Error text when the onward offer would list no audio codec.
pub const ERR_NO_CODECS: &str = "No codecs left after strip";

/// `a=ptime` values the engine can packetise; others are rounded to the nearest.
pub const PTIMES_MS: [u32; 5] = [10, 20, 30, 40, 60];
/// Packetisation when the SDP has no `a=ptime`.
pub const DEFAULT_PTIME_MS: u32 = 20;

/// A codec we can decode and encode, with what we put in SDP when we add it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transcodable {
    pub name: &'static str,
    pub clock_rate: u32,
    pub channels: u8,
    /// The RFC 3551 static payload type; `None` takes a free dynamic one (96..=127).
    pub static_pt: Option<u8>,
    /// The `a=fmtp` parameters we offer with it.
    pub fmtp: Option<&'static str>,
}

/// The codecs the engine transcodes between.
pub const TRANSCODABLE: [Transcodable; 4] = [
    Transcodable {
        name: "PCMA",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(8),
        fmtp: None,
    },
    Transcodable {
        name: "PCMU",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(0),
        fmtp: None,
    },
    Transcodable {
        name: "G729",
        clock_rate: 8000,
        channels: 1,
        static_pt: Some(18),
        fmtp: Some("annexb=no"),
    },
    Transcodable {
        name: "opus",
        clock_rate: 48000,
        channels: 2,
        static_pt: None,
        fmtp: None,
    },
];

/// Can the engine decode and encode this codec?
pub fn is_transcodable(c: &CodecSpec) -> bool {
    TRANSCODABLE
        .iter()
        .any(|t| t.name.eq_ignore_ascii_case(&c.name) && t.clock_rate == c.clock_rate)
}

/// Comfort noise (RFC 3389) goes with the audio codecs but is not one.
fn is_comfort_noise(c: &CodecSpec) -> bool {
    c.name.eq_ignore_ascii_case("CN")
}

/// A real audio codec: not telephone-event, not comfort noise.
pub fn is_audio_codec(c: &CodecSpec) -> bool {
    !c.is_telephone_event() && !is_comfort_noise(c)
}

/// A codec as named in a codec option: `NAME`, `NAME/RATE`, `NAME/RATE/CHANNELS` or
/// `NAME/RATE/CHANNELS/BITRATE` (the bitrate is accepted and ignored). Names compare
/// case-insensitively; a rate or channel count, when given, must match too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecName {
    pub name: String,
    pub clock_rate: Option<u32>,
    pub channels: Option<u8>,
}

impl CodecName {
    /// `None` for an empty name or a rate/channel count that is not a number.
    pub fn parse(s: &str) -> Option<CodecName> {
        let mut parts = s.trim().split('/');
        let name = parts.next().filter(|n| !n.is_empty())?.to_string();
        let clock_rate = match parts.next() {
            Some(r) => Some(r.parse().ok()?),
            None => None,
        };
        let channels = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        Some(CodecName {
            name,
            clock_rate,
            channels,
        })
    }

    pub fn matches(&self, c: &CodecSpec) -> bool {
        self.name.eq_ignore_ascii_case(&c.name)
            && self.clock_rate.is_none_or(|r| r == c.clock_rate)
            && self.channels.is_none_or(|ch| ch == c.channels)
    }

    /// The transcodable codec this names (channels are not compared: `opus/48000/1` is opus).
    pub fn transcodable(&self) -> Option<&'static Transcodable> {
        TRANSCODABLE.iter().find(|t| {
            t.name.eq_ignore_ascii_case(&self.name)
                && self.clock_rate.is_none_or(|r| r == t.clock_rate)
        })
    }

    fn is_all(&self) -> bool {
        self.name.eq_ignore_ascii_case("all") && self.clock_rate.is_none()
    }
}

/// A set of codecs: names, or `all` (every codec except telephone-event).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodecSet {
    pub all: bool,
    pub names: Vec<CodecName>,
}

impl CodecSet {
    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }

    pub fn matches(&self, c: &CodecSpec) -> bool {
        (self.all && !c.is_telephone_event()) || self.names.iter().any(|n| n.matches(c))
    }

    fn add(&mut self, name: CodecName) {
        if name.is_all() {
            self.all = true;
        } else if !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    fn union(&self, other: &CodecSet) -> CodecSet {
        let mut out = self.clone();
        out.all |= other.all;
        for n in &other.names {
            out.add(n.clone());
        }
        out
    }
}

/// The codec options of one offer or answer (the `codec` dictionary and the `codec-*` flags).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodecOptions {
    pub strip: CodecSet,
    pub mask: CodecSet,
    pub accept: CodecSet,
    /// In order; unknown or non-transcodable names are ignored when used.
    pub transcode: Vec<CodecName>,
    /// In order: the preferred codecs, moved to the front.
    pub offer: Vec<CodecName>,
}

impl CodecOptions {
    /// No codec option at all: SDP passes through unchanged.
    pub fn is_empty(&self) -> bool {
        self.strip.is_empty()
            && self.mask.is_empty()
            && self.accept.is_empty()
            && self.transcode.is_empty()
            && self.offer.is_empty()
    }

    /// Adds one entry of option `verb` (`strip`, `mask`, `consume`, `transcode`, `offer`,
    /// `accept`, case-insensitive). Returns false for a verb we do not know (ignored by the
    /// caller, as rtpengine ignores unknown options). Entries that do not parse are dropped.
    pub fn add(&mut self, verb: &str, entry: &str) -> bool {
        let verb = verb.to_ascii_lowercase();
        if !matches!(
            verb.as_str(),
            "strip" | "mask" | "consume" | "accept" | "transcode" | "offer"
        ) {
            return false;
        }
        let Some(name) = CodecName::parse(entry) else {
            return true;
        };
        match verb.as_str() {
            "strip" => self.strip.add(name),
            "mask" | "consume" => self.mask.add(name),
            "accept" => self.accept.add(name),
            "transcode" if !name.is_all() && !self.transcode.contains(&name) => {
                self.transcode.push(name)
            }
            "offer" if !name.is_all() && !self.offer.contains(&name) => self.offer.push(name),
            _ => {}
        }
        true
    }

    /// A `flags` entry `codec-<verb>-<codec>` or `codec-<verb>=<codec>`; false if it is not one.
    pub fn add_flag(&mut self, flag: &str) -> bool {
        let Some(rest) = flag
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("codec-"))
            .and_then(|_| flag.get(6..))
        else {
            return false;
        };
        let Some(sep) = rest.find(['-', '=']) else {
            return false;
        };
        self.add(&rest[..sep], &rest[sep + 1..])
    }
}

/// One codec of a party's SDP with the attribute lines that describe it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpCodec {
    pub spec: CodecSpec,
    /// `a=rtpmap`, `a=fmtp`, `a=rtcp-fb` lines of its payload type, verbatim.
    pub lines: Vec<String>,
}

/// One format of an `m=` line: a codec we can name, or something we pass along untouched
/// (a dynamic payload type without `a=rtpmap`, a non-RTP format).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Codec(SdpCodec),
    Opaque(String),
}

/// Encoding name, clock rate and channels of the RFC 3551 static audio payload types.
fn static_codec(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

fn formats(m: &Media) -> Vec<Format> {
    m.formats
        .iter()
        .map(|f| {
            let codec = f.parse::<u8>().ok().filter(|pt| *pt <= 127).and_then(|pt| {
                let spec = match m.rtpmaps.iter().find(|r| r.payload_type == pt) {
                    Some(r) => CodecSpec {
                        pt,
                        name: r.encoding.clone(),
                        clock_rate: r.clock_rate,
                        channels: r
                            .channels
                            .and_then(|c| u8::try_from(c).ok())
                            .filter(|c| *c > 0)
                            .unwrap_or(1),
                        fmtp: None,
                    },
                    None => {
                        let (name, rate, channels) = static_codec(pt)?;
                        CodecSpec {
                            channels,
                            ..CodecSpec::new(pt, name, rate)
                        }
                    }
                };
                let fmtp = m
                    .fmtps
                    .iter()
                    .find(|(p, _)| *p == pt)
                    .map(|(_, v)| v.clone());
                let lines = m
                    .format_lines
                    .iter()
                    .filter(|(p, _)| *p == pt)
                    .map(|(_, l)| l.clone())
                    .collect();
                Some(SdpCodec {
                    spec: CodecSpec { fmtp, ..spec },
                    lines,
                })
            });
            match codec {
                Some(c) => Format::Codec(c),
                None => Format::Opaque(f.clone()),
            }
        })
        .collect()
}

/// The codecs of an `m=` section we can name, in `m=` order.
pub fn sdp_codecs(m: &Media) -> Vec<SdpCodec> {
    formats(m)
        .into_iter()
        .filter_map(|f| match f {
            Format::Codec(c) => Some(c),
            Format::Opaque(_) => None,
        })
        .collect()
}

/// `a=ptime` rounded to a packetisation the engine supports; 20 ms without one.
pub fn leg_ptime(m: &Media) -> u32 {
    match m.ptime {
        None => DEFAULT_PTIME_MS,
        Some(p) => PTIMES_MS
            .iter()
            .copied()
            .min_by_key(|c| c.abs_diff(p))
            .unwrap_or(DEFAULT_PTIME_MS),
    }
}

/// G.729 Annex B (VAD/DTX) toward a party: only when its G.729 format says `annexb=yes`.
///
/// RFC 4856 makes an absent `annexb` mean "yes"; we deliberately read it as "no" for what we
/// encode: a receiver that implements Annex B decodes a stream without SID frames, a receiver
/// that does not may choke on SID frames, and carriers routinely omit the parameter.
pub fn leg_vad(codecs: &[CodecSpec]) -> bool {
    codecs
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("G729"))
        .and_then(|c| c.fmtp.as_deref())
        .is_some_and(|f| {
            f.split(';').any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("annexb") && v.trim().eq_ignore_ascii_case("yes")
                })
            })
        })
}

/// What an offer left for its answer, per media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferState {
    /// Who sent the offer.
    pub offerer: Side,
    /// Codec options were given: the answer is checked against the offer and may be rewritten.
    pub active: bool,
    /// The offerer's codecs after `strip`, in its order (masked ones included).
    pub offered: Vec<SdpCodec>,
    /// Codecs we added to the onward offer (`transcode`), with the payload types we chose.
    pub added: Vec<CodecSpec>,
    pub accept: CodecSet,
}

/// The result of an offer for one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferPlan {
    /// The offerer's leg codecs.
    pub codecs: Vec<CodecSpec>,
    /// How the onward SDP's format list changes; `None` leaves it as it is.
    pub edit: Option<FormatEdit>,
    pub state: OfferState,
}

/// Plans an offer's audio section `m` from `offerer` under `opts`.
pub fn plan_offer(m: &Media, opts: &CodecOptions, offerer: Side) -> Result<OfferPlan, String> {
    let all = formats(m);
    if opts.is_empty() {
        let offered = sdp_codecs(m);
        return Ok(OfferPlan {
            codecs: offered.iter().map(|c| c.spec.clone()).collect(),
            edit: None,
            state: OfferState {
                offerer,
                active: false,
                offered,
                added: Vec::new(),
                accept: CodecSet::default(),
            },
        });
    }
    let preferred = |c: &CodecSpec| opts.offer.iter().any(|n| n.matches(c));
    let offered: Vec<SdpCodec> = all
        .iter()
        .filter_map(|f| match f {
            Format::Codec(c) if preferred(&c.spec) || !opts.strip.matches(&c.spec) => {
                Some(c.clone())
            }
            _ => None,
        })
        .collect();
    // The offerer's own formats that go onward, `offer` codecs first in the option's order.
    let mut own: Vec<Format> = all
        .iter()
        .filter(|f| match f {
            Format::Codec(c) => {
                offered.contains(c) && (preferred(&c.spec) || !opts.mask.matches(&c.spec))
            }
            Format::Opaque(_) => true,
        })
        .cloned()
        .collect();
    let mut onward: Vec<Format> = Vec::new();
    for name in &opts.offer {
        while let Some(i) = own
            .iter()
            .position(|f| matches!(f, Format::Codec(c) if name.matches(&c.spec)))
        {
            onward.push(own.remove(i));
        }
    }
    onward.extend(own);

    // `transcode`: only with something of the offerer's to transcode from.
    let mut added: Vec<CodecSpec> = Vec::new();
    let mut added_own: Vec<SdpCodec> = Vec::new();
    if offered
        .iter()
        .any(|c| is_audio_codec(&c.spec) && is_transcodable(&c.spec))
    {
        for name in &opts.transcode {
            let Some(t) = name.transcodable() else {
                continue; // unknown or not transcodable: ignored, as rtpengine does
            };
            let probe = CodecSpec {
                channels: t.channels,
                ..CodecSpec::new(0, t.name, t.clock_rate)
            };
            let listed = onward
                .iter()
                .any(|f| matches!(f, Format::Codec(c) if c.spec.same_codec(&probe)))
                || added.iter().any(|c| c.same_codec(&probe))
                || added_own.iter().any(|c| c.spec.same_codec(&probe));
            if listed {
                continue;
            }
            // A masked codec of the offerer's comes back as its own.
            if let Some(c) = offered.iter().find(|c| c.spec.same_codec(&probe)) {
                added_own.push(c.clone());
                continue;
            }
            let used: Vec<u8> = all
                .iter()
                .filter_map(|f| match f {
                    Format::Codec(c) if !c.spec.same_codec(&probe) => Some(c.spec.pt),
                    Format::Codec(_) => None,
                    Format::Opaque(s) => s.parse().ok(),
                })
                .chain(added.iter().map(|c| c.pt))
                .chain(added_own.iter().map(|c| c.spec.pt))
                .collect();
            let pt = t
                .static_pt
                .filter(|p| !used.contains(p))
                .or_else(|| (96..=127).find(|p| !used.contains(p)));
            if let Some(pt) = pt {
                added.push(CodecSpec {
                    pt,
                    name: t.name.to_string(),
                    clock_rate: t.clock_rate,
                    channels: t.channels,
                    fmtp: t.fmtp.map(str::to_string),
                });
            }
        }
    }

    let has_audio = onward.iter().any(|f| match f {
        Format::Codec(c) => is_audio_codec(&c.spec),
        Format::Opaque(_) => true,
    }) || !added.is_empty()
        || added_own.iter().any(|c| is_audio_codec(&c.spec));
    if !has_audio {
        return Err(ERR_NO_CODECS.to_string());
    }

    let mut entries: Vec<FormatEntry> = onward
        .iter()
        .map(|f| match f {
            Format::Codec(c) => FormatEntry::keep(c.spec.pt.to_string()),
            Format::Opaque(s) => FormatEntry::keep(s.clone()),
        })
        .collect();
    entries.extend(
        added_own
            .iter()
            .map(|c| FormatEntry::keep(c.spec.pt.to_string())),
    );
    entries.extend(
        added
            .iter()
            .map(|c| FormatEntry::with_lines(c.pt.to_string(), sdp_lines(c))),
    );
    let unchanged = entries.len() == m.formats.len()
        && entries.iter().zip(&m.formats).all(|(e, f)| e.format == *f);
    Ok(OfferPlan {
        codecs: offered.iter().map(|c| c.spec.clone()).collect(),
        edit: (!unchanged).then_some(FormatEdit { formats: entries }),
        state: OfferState {
            offerer,
            active: true,
            offered,
            added,
            accept: opts.accept.clone(),
        },
    })
}

/// `a=rtpmap` (and `a=fmtp`) for a codec we add.
fn sdp_lines(c: &CodecSpec) -> Vec<String> {
    let mut lines = vec![if c.channels > 1 {
        format!(
            "a=rtpmap:{} {}/{}/{}",
            c.pt, c.name, c.clock_rate, c.channels
        )
    } else {
        format!("a=rtpmap:{} {}/{}", c.pt, c.name, c.clock_rate)
    }];
    if let Some(f) = &c.fmtp {
        lines.push(format!("a=fmtp:{} {f}", c.pt));
    }
    lines
}

/// How an answer is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// No usable offer state or no codec options: the answer passes through unchanged.
    PassThrough,
    /// The answerer picked a codec the offerer offered: relay.
    Relay,
    /// The answerer picked a codec we transcode to: the answer toward the offerer lists the
    /// offerer's codec.
    Transcode,
}

/// The result of an answer for one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerPlan {
    pub mode: AnswerMode,
    /// The answerer's leg codecs.
    pub codecs: Vec<CodecSpec>,
    /// The offerer's leg codecs, reordered by the answer; `None` leaves that leg alone.
    pub offerer_codecs: Option<Vec<CodecSpec>>,
    /// How the answer toward the offerer changes; `None` leaves it as it is.
    pub edit: Option<FormatEdit>,
}

/// Plans the answer section `m` from `answerer`, against the state its offer left.
pub fn plan_answer(
    m: &Media,
    state: Option<&OfferState>,
    answerer: Side,
    opts: &CodecOptions,
) -> AnswerPlan {
    let answered = sdp_codecs(m);
    let codecs: Vec<CodecSpec> = answered.iter().map(|c| c.spec.clone()).collect();
    let Some(state) = state.filter(|s| s.offerer == answerer.other()) else {
        return AnswerPlan {
            mode: AnswerMode::PassThrough,
            codecs,
            offerer_codecs: None,
            edit: None,
        };
    };
    let accept = state.accept.union(&opts.accept);
    let active = state.active || !accept.is_empty();
    let offered_has = |c: &CodecSpec| state.offered.iter().any(|o| o.spec.same_codec(c));
    let pass_through = |codecs: Vec<CodecSpec>| AnswerPlan {
        mode: AnswerMode::PassThrough,
        offerer_codecs: Some(reorder(&state.offered, &codecs)),
        codecs,
        edit: answer_formats(m, &state.offered, &|_| true),
    };
    let Some(first) = codecs.iter().find(|c| is_audio_codec(c)).cloned() else {
        return pass_through(codecs);
    };
    if !active {
        return pass_through(codecs);
    }
    if offered_has(&first) {
        // Relay; the offerer is not shown codecs it never offered (our additions, say).
        let kept: Vec<CodecSpec> = codecs.iter().filter(|c| offered_has(c)).cloned().collect();
        return AnswerPlan {
            mode: AnswerMode::Relay,
            offerer_codecs: Some(reorder(&state.offered, &kept)),
            edit: answer_formats(m, &state.offered, &offered_has),
            codecs,
        };
    }
    let ours = state.added.iter().any(|c| c.same_codec(&first)) || accept.matches(&first);
    let source = state
        .offered
        .iter()
        .find(|c| is_audio_codec(&c.spec) && is_transcodable(&c.spec));
    let (true, true, Some(source)) = (ours, is_transcodable(&first), source) else {
        return pass_through(codecs);
    };
    let mut toward_offerer = vec![source.clone()];
    if codecs.iter().any(CodecSpec::is_telephone_event) {
        if let Some(te) = state.offered.iter().find(|c| c.spec.is_telephone_event()) {
            toward_offerer.push(te.clone());
        }
    }
    let negotiated: Vec<CodecSpec> = toward_offerer.iter().map(|c| c.spec.clone()).collect();
    AnswerPlan {
        mode: AnswerMode::Transcode,
        offerer_codecs: Some(reorder(&state.offered, &negotiated)),
        codecs,
        edit: Some(FormatEdit {
            formats: toward_offerer
                .into_iter()
                .map(|c| FormatEntry::with_lines(c.spec.pt.to_string(), c.lines))
                .collect(),
        }),
    }
}

/// The answer's formats toward the offerer: those `keep` accepts (and every format we cannot
/// name), each codec the offerer offered on the offerer's own payload type (RFC 3264 §6.1: the
/// answer should use the offer's numbers). The offerer's entry for a codec is chosen as the
/// relay's payload-type map chooses it (`mediacore_engine::spec::relay_pt_map`): the same
/// number, else the same name, else the first of the same codec; so the numbers the offerer is
/// told to send with are those its leg lists, which the relay maps to the answerer's. A number
/// another kept format of the answer uses, or an earlier format took, is not taken: that format
/// keeps its own. A renumbered format is named by the offerer's `a=rtpmap` (none for a static
/// number offered without one) and keeps the answerer's `a=fmtp` and `a=rtcp-fb` lines, with the
/// new number. `None` when nothing changes.
fn answer_formats(
    m: &Media,
    offered: &[SdpCodec],
    keep: &dyn Fn(&CodecSpec) -> bool,
) -> Option<FormatEdit> {
    let all = formats(m);
    let kept: Vec<&Format> = all
        .iter()
        .filter(|f| match f {
            Format::Codec(c) => keep(&c.spec),
            Format::Opaque(_) => true,
        })
        .collect();
    let target = |c: &CodecSpec| {
        let same = || offered.iter().filter(|o| o.spec.same_codec(c));
        same()
            .find(|o| o.spec.pt == c.pt)
            .or_else(|| same().find(|o| o.spec.name.eq_ignore_ascii_case(&c.name)))
            .or_else(|| same().next())
    };
    let own: Vec<u8> = kept
        .iter()
        .filter_map(|f| match f {
            Format::Codec(c) => Some(c.spec.pt),
            Format::Opaque(_) => None,
        })
        .collect();
    let mut taken: Vec<u8> = Vec::new();
    let mut renamed = false;
    let entries: Vec<FormatEntry> = kept
        .iter()
        .map(|f| match f {
            Format::Opaque(s) => FormatEntry::keep(s.clone()),
            Format::Codec(c) => match target(&c.spec) {
                Some(o) if !own.contains(&o.spec.pt) && !taken.contains(&o.spec.pt) => {
                    taken.push(o.spec.pt);
                    renamed = true;
                    FormatEntry::with_lines(o.spec.pt.to_string(), renumbered_lines(c, o))
                }
                _ => FormatEntry::keep(c.spec.pt.to_string()),
            },
        })
        .collect();
    (renamed || kept.len() != all.len()).then_some(FormatEdit { formats: entries })
}

/// The lines of the answerer's codec `c` on the offerer's payload type of `o`: `o`'s
/// `a=rtpmap`, then `c`'s other lines renumbered.
fn renumbered_lines(c: &SdpCodec, o: &SdpCodec) -> Vec<String> {
    let is_rtpmap = |l: &&String| l.starts_with("a=rtpmap:");
    let mut lines: Vec<String> = o.lines.iter().filter(is_rtpmap).cloned().collect();
    lines.extend(c.lines.iter().filter(|l| !is_rtpmap(l)).filter_map(|l| {
        let (attr, rest) = l.split_once(':')?;
        let tail = rest.trim_start_matches(|ch: char| ch.is_ascii_digit());
        Some(format!("{attr}:{}{tail}", o.spec.pt))
    }));
    lines
}

/// The offerer's codecs, those matching `negotiated` first (in that order), then the rest.
fn reorder(offered: &[SdpCodec], negotiated: &[CodecSpec]) -> Vec<CodecSpec> {
    let mut rest: Vec<CodecSpec> = offered.iter().map(|c| c.spec.clone()).collect();
    let mut out = Vec::with_capacity(rest.len());
    for n in negotiated {
        if let Some(i) = rest.iter().position(|c| c.same_codec(n)) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::sdp::Sdp;

    fn media(formats: &str, attrs: &str) -> Media {
        let body = format!("v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP {formats}\n{attrs}");
        Sdp::parse(body.as_bytes()).unwrap().media.remove(0)
    }

    fn opts(pairs: &[(&str, &str)]) -> CodecOptions {
        let mut o = CodecOptions::default();
        for (v, e) in pairs {
            assert!(o.add(v, e));
        }
        o
    }

    fn pts(edit: &FormatEdit) -> Vec<&str> {
        edit.formats.iter().map(|f| f.format.as_str()).collect()
    }

    #[test]
    fn codec_names() {
        let n = CodecName::parse("opus/48000/2/32000").unwrap();
        assert_eq!(
            (n.name.as_str(), n.clock_rate, n.channels),
            ("opus", Some(48000), Some(2))
        );
        assert!(CodecName::parse("").is_none());
        assert!(CodecName::parse("PCMA/x").is_none());
        let g = CodecName::parse("g729").unwrap();
        assert!(g.matches(&CodecSpec::new(18, "G729", 8000)));
        assert!(!CodecName::parse("G729/16000")
            .unwrap()
            .matches(&CodecSpec::new(18, "G729", 8000)));
        assert_eq!(g.transcodable().unwrap().name, "G729");
        assert!(CodecName::parse("G722").unwrap().transcodable().is_none());
    }

    #[test]
    fn flags() {
        let mut o = CodecOptions::default();
        assert!(o.add_flag("codec-transcode-G729"));
        assert!(o.add_flag("CODEC-strip=all"));
        assert!(o.add_flag("codec-mask-telephone-event"));
        assert!(!o.add_flag("codec-frobnicate-G729"));
        assert!(!o.add_flag("asymmetric"));
        assert!(!o.add_flag("codec-"));
        assert_eq!(o.transcode, vec![CodecName::parse("G729").unwrap()]);
        assert!(o.strip.all);
        assert!(o
            .mask
            .matches(&CodecSpec::new(101, "telephone-event", 8000)));
        assert!(!o
            .strip
            .matches(&CodecSpec::new(101, "telephone-event", 8000)));
    }

    #[test]
    fn ptime_and_vad() {
        assert_eq!(leg_ptime(&media("8", "")), 20);
        assert_eq!(leg_ptime(&media("8", "a=ptime:30\n")), 30);
        assert_eq!(leg_ptime(&media("8", "a=ptime:25\n")), 20);
        assert_eq!(leg_ptime(&media("8", "a=ptime:120\n")), 60);
        let g = |fmtp: Option<&str>| {
            vec![CodecSpec {
                fmtp: fmtp.map(str::to_string),
                ..CodecSpec::new(18, "G729", 8000)
            }]
        };
        assert!(!leg_vad(&g(None)));
        assert!(!leg_vad(&g(Some("annexb=no"))));
        assert!(leg_vad(&g(Some("annexb=yes"))));
        assert!(leg_vad(&g(Some("bitrate=8; AnnexB = YES"))));
    }

    #[test]
    fn static_formats_without_rtpmap_are_named() {
        let c = sdp_codecs(&media("0 18 96", "a=fmtp:18 annexb=no\n"));
        assert_eq!(c.len(), 2, "96 has no rtpmap: opaque");
        assert_eq!(c[1].spec.name, "G729");
        assert_eq!(c[1].spec.fmtp.as_deref(), Some("annexb=no"));
        assert_eq!(c[1].lines, vec!["a=fmtp:18 annexb=no"]);
    }

    #[test]
    fn offer_without_options_changes_nothing() {
        let m = media("8 101", "a=rtpmap:101 telephone-event/8000\n");
        let p = plan_offer(&m, &CodecOptions::default(), Side::Caller).unwrap();
        assert_eq!(p.edit, None);
        assert!(!p.state.active);
        assert_eq!(p.codecs.len(), 2);
    }

    #[test]
    fn opus_gets_a_free_dynamic_payload_type() {
        let m = media(
            "8 96 97 101",
            "a=rtpmap:96 iLBC/8000\na=rtpmap:97 speex/8000\na=rtpmap:101 telephone-event/8000\n",
        );
        let p = plan_offer(
            &m,
            &opts(&[("transcode", "opus"), ("transcode", "G729")]),
            Side::Caller,
        )
        .unwrap();
        let edit = p.edit.unwrap();
        assert_eq!(pts(&edit), vec!["8", "96", "97", "101", "98", "18"]);
        assert_eq!(
            edit.formats[4].lines.as_deref().unwrap(),
            ["a=rtpmap:98 opus/48000/2"]
        );
    }

    #[test]
    fn static_pt_taken_by_another_codec_goes_dynamic() {
        let m = media("8 0", "a=rtpmap:0 FOO/8000\n");
        let p = plan_offer(&m, &opts(&[("transcode", "PCMU")]), Side::Caller).unwrap();
        assert_eq!(pts(&p.edit.unwrap()), vec!["8", "0", "96"]);
    }

    #[test]
    fn masked_codec_transcoded_comes_back_as_the_offerers() {
        let m = media("8 0", "");
        let p = plan_offer(
            &m,
            &opts(&[("mask", "all"), ("transcode", "PCMU")]),
            Side::Caller,
        )
        .unwrap();
        let edit = p.edit.unwrap();
        assert_eq!(pts(&edit), vec!["0"]);
        assert_eq!(edit.formats[0].lines, None);
        assert!(p.state.added.is_empty());
    }

    #[test]
    fn offer_option_moves_codecs_first_and_survives_strip_all() {
        let m = media("0 8 18 101", "a=rtpmap:101 telephone-event/8000\n");
        let p = plan_offer(
            &m,
            &opts(&[("strip", "all"), ("offer", "G729"), ("offer", "PCMA")]),
            Side::Caller,
        )
        .unwrap();
        assert_eq!(pts(&p.edit.unwrap()), vec!["18", "8", "101"]);
        let names: Vec<_> = p.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["PCMA", "G729", "telephone-event"]);
        // `offer` of a codec the offerer lacks adds nothing.
        let p = plan_offer(&m, &opts(&[("offer", "opus")]), Side::Caller).unwrap();
        assert_eq!(p.edit, None);
    }

    #[test]
    fn answer_relays_and_hides_our_additions() {
        let offer = media("8 101", "a=rtpmap:101 telephone-event/8000\n");
        let p = plan_offer(&offer, &opts(&[("transcode", "G729")]), Side::Caller).unwrap();
        let answer = media("8 18 101", "a=rtpmap:101 telephone-event/8000\n");
        let a = answered(&answer, &p);
        assert_eq!(a.mode, AnswerMode::Relay);
        assert_eq!(pts(&a.edit.unwrap()), vec!["8", "101"]);
        assert_eq!(a.codecs.len(), 3);
    }

    #[test]
    fn answer_with_unoffered_codec_is_passed_through_without_options() {
        let offer = media("8", "");
        let p = plan_offer(&offer, &CodecOptions::default(), Side::Caller).unwrap();
        let answer = media("18", "");
        let a = answered(&answer, &p);
        assert_eq!(a.mode, AnswerMode::PassThrough);
        assert_eq!(a.edit, None);
        // ... unless the answer accepts it.
        let a = plan_answer(
            &answer,
            Some(&p.state),
            Side::Callee,
            &opts(&[("accept", "G729")]),
        );
        assert_eq!(a.mode, AnswerMode::Transcode);
        assert_eq!(pts(&a.edit.unwrap()), vec!["8"]);
    }

    /// The callee's answer to `p`'s offer, without codec options.
    fn answered(answer: &Media, p: &OfferPlan) -> AnswerPlan {
        plan_answer(
            answer,
            Some(&p.state),
            Side::Callee,
            &CodecOptions::default(),
        )
    }

    fn lines(edit: &FormatEdit) -> Vec<String> {
        edit.formats
            .iter()
            .flat_map(|f| f.lines.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn answer_uses_the_offerers_payload_types() {
        // The carrier answers G.729 on 96 and telephone-event on 97; the caller offered 18 and
        // 101. No codec options: the answer is otherwise passed through.
        let offer = media("18 101", "a=rtpmap:101 telephone-event/8000\n");
        let p = plan_offer(&offer, &CodecOptions::default(), Side::Caller).unwrap();
        let answer = media(
            "96 97 0",
            "a=rtpmap:96 G729a/8000\na=fmtp:96 annexb=no\na=rtpmap:97 telephone-event/8000\n\
a=fmtp:97 0-15\n",
        );
        let a = answered(&answer, &p);
        let edit = a.edit.unwrap();
        assert_eq!(
            pts(&edit),
            vec!["18", "101", "0"],
            "PCMU, never offered, kept as it is"
        );
        assert_eq!(
            lines(&edit),
            vec![
                // 18 was offered without a=rtpmap (static): none; the carrier's parameters kept
                "a=fmtp:18 annexb=no",
                "a=rtpmap:101 telephone-event/8000",
                "a=fmtp:101 0-15",
            ]
        );
        assert_eq!(edit.formats[2].lines, None);
        // The legs keep their own numbers (the relay maps between them).
        assert_eq!(a.codecs[0].pt, 96);
        assert_eq!(a.offerer_codecs.unwrap()[0].pt, 18);
        // Relayed with codec options: the same numbering, our additions still hidden.
        let p = plan_offer(&offer, &opts(&[("transcode", "PCMA")]), Side::Caller).unwrap();
        let a = answered(&answer, &p);
        assert_eq!(a.mode, AnswerMode::Relay);
        assert_eq!(pts(&a.edit.unwrap()), vec!["18", "101"]);
    }

    #[test]
    fn answer_numbers_already_in_use_are_not_taken() {
        // Offer: G.729 on 96, PCMA on 8. Answer: G.729 on 97 and, oddly, a dynamic 96 of its
        // own (PCMA): 96 is the answer's, so G.729 keeps 97; PCMA goes to 8.
        let offer = media("96 8", "a=rtpmap:96 G729/8000\n");
        let p = plan_offer(&offer, &CodecOptions::default(), Side::Caller).unwrap();
        let answer = media("97 96", "a=rtpmap:97 G729/8000\na=rtpmap:96 PCMA/8000\n");
        let a = answered(&answer, &p);
        let edit = a.edit.unwrap();
        assert_eq!(pts(&edit), vec!["97", "8"]);
        assert_eq!(
            lines(&edit),
            Vec::<String>::new(),
            "8 is static, offered without a=rtpmap"
        );
        // Two answer entries for one offered codec: the first takes its number.
        let answer = media("97 98", "a=rtpmap:97 G729/8000\na=rtpmap:98 G729a/8000\n");
        let a = answered(&answer, &p);
        assert_eq!(pts(&a.edit.unwrap()), vec!["96", "98"]);
        // Numbers that already agree: no edit at all.
        let answer = media("96 8", "a=rtpmap:96 G729/8000\n");
        let a = answered(&answer, &p);
        assert_eq!(a.edit, None);
    }

    #[test]
    fn answer_from_the_wrong_side_is_passed_through() {
        let offer = media("8", "");
        let p = plan_offer(&offer, &opts(&[("transcode", "G729")]), Side::Caller).unwrap();
        let a = plan_answer(
            &media("18", ""),
            Some(&p.state),
            Side::Caller,
            &CodecOptions::default(),
        );
        assert_eq!((a.mode, a.offerer_codecs), (AnswerMode::PassThrough, None));
    }
}
