//! Transcode mode's traffic and matching. Leg A sends PCMA and receives PCMA; leg B sends and
//! receives G.729. Payloads are real speech, so unlike relay mode nothing survives the engine
//! to identify a packet. Matching is ordinal, per stream (= receiving socket): with 20 ms
//! packets on both legs and no loss, the k-th packet the engine emits on a stream is its
//! output for the k-th packet we sent into it. k comes from the engine's own RTP sequence
//! number relative to the first packet received on that stream, so reordering does not shift
//! it and gaps count as loss. Latency is arrival of output k minus send time of input k; the
//! send times live in a per-stream ring written by the sender thread.
//!
//! Assumption: the engine emits exactly one packet per input packet at equal ptime. An engine
//! that withholds its first output (e.g. buffers one packet) shows 20 ms more latency, which
//! is real added delay; one that emits an extra packet first would be matched against an
//! input not yet sent, and such packets are counted as ordinal anomalies instead of latency.

use crate::packet::{self, RTP_HEADER_LEN, TIMESTAMP_STEP};
use crate::speech::{Speech, G729_BYTES, PCMA_BYTES};
use std::sync::atomic::{AtomicU64, Ordering};

pub const PAYLOAD_TYPE_PCMA: u8 = 8;
pub const PAYLOAD_TYPE_G729: u8 = 18;
/// Largest packet of either leg: RTP header + 160 bytes PCMA.
pub const MAX_PACKET_LEN: usize = RTP_HEADER_LEN + PCMA_BYTES;

/// What the sender and receiver threads share in transcode mode.
pub struct Transcode<'a> {
    pub speech: &'a Speech,
    pub sent: &'a SendTimes,
    /// False in direct mode: each endpoint then receives its peer's codec unchanged.
    pub through_engine: bool,
}

/// Send times kept per stream: 64 rounds = 1.28 s, far beyond any usable latency.
const RING: usize = 64;
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const ROUND_MASK: u64 = (1 << (64 - TIME_BITS)) - 1;

/// Per stream (indexed by the receiving socket), the send times of the last `RING` rounds.
/// Each slot packs (round + 1) into the top 24 bits and the send time (ns since the schedule
/// base, < 2^40 ns ≈ 18 min, more than the longest allowed run) into the low 40, so a reader
/// can tell whether the slot holds the round it asks for.
pub struct SendTimes {
    slots: Vec<AtomicU64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Sent(u64),
    /// Input `k` has not been sent yet: the output arrived before its input.
    NotYet,
    /// The slot was reused: input `k` was sent more than `RING` rounds ago.
    Overwritten,
}

impl SendTimes {
    pub fn new(streams: usize) -> SendTimes {
        SendTimes {
            slots: (0..streams * RING).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn record(&self, stream: usize, round: u32, sent_ns: u64) {
        let tag = (u64::from(round) + 1) & ROUND_MASK;
        if let Some(slot) = self.slots.get(stream * RING + round as usize % RING) {
            slot.store(tag << TIME_BITS | (sent_ns & TIME_MASK), Ordering::Release);
        }
    }

    pub fn lookup(&self, stream: usize, round: u32) -> Lookup {
        let Some(slot) = self.slots.get(stream * RING + round as usize % RING) else {
            return Lookup::NotYet;
        };
        let value = slot.load(Ordering::Acquire);
        let wanted = (u64::from(round) + 1) & ROUND_MASK;
        match (value >> TIME_BITS).cmp(&wanted) {
            std::cmp::Ordering::Equal => Lookup::Sent(value & TIME_MASK),
            std::cmp::Ordering::Less => Lookup::NotYet,
            std::cmp::Ordering::Greater => Lookup::Overwritten,
        }
    }
}

/// What a socket sends: endpoint A (even index) PCMA, endpoint B (odd index) G.729.
pub fn sends(socket_index: usize) -> (u8, usize) {
    if socket_index % 2 == 0 {
        (PAYLOAD_TYPE_PCMA, PCMA_BYTES)
    } else {
        (PAYLOAD_TYPE_G729, G729_BYTES)
    }
}

/// What a socket should receive: through an engine, its own leg's codec (A PCMA, B G.729);
/// in direct mode, what its peer sends.
pub fn expects(socket_index: usize, through_engine: bool) -> (u8, usize) {
    if through_engine {
        sends(socket_index)
    } else {
        sends(socket_index ^ 1)
    }
}

/// Writes round `round` of the stream sent by socket `socket_index` of call `call` into `buf`
/// and returns the packet length. Speech is looped; each call starts at a different point.
pub fn write_packet(
    buf: &mut [u8; MAX_PACKET_LEN],
    speech: &Speech,
    call: u32,
    socket_index: usize,
    round: u32,
) -> usize {
    let dir = (socket_index % 2) as u8;
    let ssrc = packet::ssrc(call, dir);
    let seq = (ssrc as u16).wrapping_add(round as u16);
    let ts = ssrc
        .rotate_left(16)
        .wrapping_add(round.wrapping_mul(TIMESTAMP_STEP));
    let (payload_type, _) = sends(socket_index);
    buf[0] = 0x80;
    buf[1] = payload_type;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let clip_len = speech.pcma.len().max(1);
    let index = (round as usize + call as usize * 37) % clip_len;
    let payload: &[u8] = if dir == 0 {
        speech.pcma.get(index).map_or(&[], |p| p.as_slice())
    } else {
        speech.g729.get(index).map_or(&[], |p| p.as_slice())
    };
    let end = RTP_HEADER_LEN + payload.len();
    buf[RTP_HEADER_LEN..end].copy_from_slice(payload);
    end
}

/// Receive-side state of one stream: extends the engine's 16-bit sequence numbers and turns
/// them into the ordinal k relative to the first packet received.
#[derive(Default)]
pub struct StreamState {
    first: Option<i64>,
    highest: i64,
}

impl StreamState {
    /// The ordinal of a packet with sequence `seq`; negative if it precedes the first packet
    /// received on this stream (reordered before it).
    pub fn ordinal(&mut self, seq: u16) -> i64 {
        let Some(first) = self.first else {
            self.first = Some(i64::from(seq));
            self.highest = i64::from(seq);
            return 0;
        };
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        let extended = self.highest + delta;
        self.highest = self.highest.max(extended);
        extended - first
    }
}

/// (payload type, sequence number, payload length) of an RTP packet.
pub fn parse(datagram: &[u8]) -> Option<(u8, u16, usize)> {
    let rtp = crate::speech::Rtp::parse(datagram)?;
    Some((rtp.payload_type, rtp.seq, rtp.payload.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_times_know_their_round() {
        let times = SendTimes::new(4);
        assert_eq!(times.lookup(3, 0), Lookup::NotYet);
        times.record(3, 5, 123_456);
        assert_eq!(times.lookup(3, 5), Lookup::Sent(123_456));
        assert_eq!(times.lookup(2, 5), Lookup::NotYet);
        assert_eq!(times.lookup(3, 5 + RING as u32), Lookup::NotYet);
        times.record(3, 5 + RING as u32, 999);
        assert_eq!(times.lookup(3, 5), Lookup::Overwritten);
        assert_eq!(times.lookup(9, 0), Lookup::NotYet); // out of range
    }

    #[test]
    fn ordinals_survive_wrap_and_reordering() {
        let mut s = StreamState::default();
        assert_eq!(s.ordinal(65_534), 0);
        assert_eq!(s.ordinal(0), 2); // 65535 lost or late
        assert_eq!(s.ordinal(65_535), 1); // late
        assert_eq!(s.ordinal(1), 3);
        assert_eq!(s.ordinal(65_533), -1); // before the first
        assert_eq!(s.ordinal(10), 12);
    }

    #[test]
    fn writes_both_legs() -> Result<(), String> {
        let speech = Speech::from_pcma(vec![[0xD5; PCMA_BYTES], [0x55; PCMA_BYTES]])?;
        let mut buf = [0; MAX_PACKET_LEN];
        let len = write_packet(&mut buf, &speech, 0, 0, 1);
        assert_eq!(
            parse(&buf[..len]).map(|p| (p.0, p.2)),
            Some((8, PCMA_BYTES))
        );
        assert_eq!(buf[RTP_HEADER_LEN], 0x55);
        let len = write_packet(&mut buf, &speech, 0, 1, 1);
        assert_eq!(
            parse(&buf[..len]).map(|p| (p.0, p.2)),
            Some((18, G729_BYTES))
        );
        assert_eq!(expects(1, true), (PAYLOAD_TYPE_G729, G729_BYTES));
        assert_eq!(expects(1, false), (PAYLOAD_TYPE_PCMA, PCMA_BYTES));
        Ok(())
    }
}
