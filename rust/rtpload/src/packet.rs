//! The probe packet: a plain RTP/PCMA packet (RFC 3550 header, payload type 8, 20 ms = 160
//! samples) whose 160-byte payload starts with a probe record that lets the receiver compute
//! exact one-way latency and loss: which call and direction sent it, its round number, and the
//! monotonic send time. The rest of the payload is A-law silence (0xD5).

/// RTP fixed header length in bytes (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;
/// 20 ms of 8 kHz G.711 is 160 one-byte samples.
pub const PAYLOAD_LEN: usize = 160;
pub const PACKET_LEN: usize = RTP_HEADER_LEN + PAYLOAD_LEN;
/// RTP timestamp step per packet: 160 samples at 8 kHz.
pub const TIMESTAMP_STEP: u32 = 160;
const PAYLOAD_TYPE_PCMA: u8 = 8;
const MAGIC: [u8; 4] = *b"RLD1";
const PCMA_SILENCE: u8 = 0xD5;

/// Which way a packet travels: caller endpoint A to callee B, or back.
pub const DIR_A_TO_B: u8 = 0;
pub const DIR_B_TO_A: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub call: u32,
    pub dir: u8,
    /// Packet number within the stream, starting at 0 with the first warm-up packet.
    pub round: u32,
    /// Send time in nanoseconds since the run's monotonic base instant.
    pub sent_ns: u64,
}

/// A distinct, stable SSRC per (call, direction).
pub fn ssrc(call: u32, dir: u8) -> u32 {
    (call.wrapping_mul(2).wrapping_add(u32::from(dir))).wrapping_mul(0x9E37_79B9) ^ 0x5EED_0001
}

/// A packet buffer pre-filled with everything that never changes, so sending only rewrites
/// the per-packet fields.
pub fn template() -> [u8; PACKET_LEN] {
    let mut buf = [PCMA_SILENCE; PACKET_LEN];
    buf[0] = 0x80; // V=2, no padding, no extension, no CSRC
    buf[1] = PAYLOAD_TYPE_PCMA;
    buf[RTP_HEADER_LEN..RTP_HEADER_LEN + 4].copy_from_slice(&MAGIC);
    buf
}

/// Writes the RTP header fields and the probe record for `probe` into `buf`.
pub fn write(buf: &mut [u8; PACKET_LEN], probe: &Probe) {
    let ssrc = ssrc(probe.call, probe.dir);
    // Start sequence and timestamp at an SSRC-derived offset, as real senders randomise them.
    let seq = (ssrc as u16).wrapping_add(probe.round as u16);
    let ts = ssrc
        .rotate_left(16)
        .wrapping_add(probe.round.wrapping_mul(TIMESTAMP_STEP));
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let p = RTP_HEADER_LEN + 4;
    buf[p..p + 4].copy_from_slice(&probe.call.to_be_bytes());
    buf[p + 4] = probe.dir;
    buf[p + 5..p + 9].copy_from_slice(&probe.round.to_be_bytes());
    buf[p + 9..p + 17].copy_from_slice(&probe.sent_ns.to_be_bytes());
}

/// Reads the probe record back; `None` for anything that is not one of our probe packets.
pub fn read(datagram: &[u8]) -> Option<Probe> {
    let p = RTP_HEADER_LEN + 4;
    let record = datagram.get(p..p + 17)?;
    if datagram.first()? >> 6 != 2 || datagram.get(RTP_HEADER_LEN..p)? != MAGIC {
        return None;
    }
    Some(Probe {
        call: u32::from_be_bytes(record[0..4].try_into().ok()?),
        dir: record[4],
        round: u32::from_be_bytes(record[5..9].try_into().ok()?),
        sent_ns: u64::from_be_bytes(record[9..17].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_probe() {
        let mut buf = template();
        let probe = Probe {
            call: 999,
            dir: DIR_B_TO_A,
            round: 123_456,
            sent_ns: 0x0102_0304_0506_0708,
        };
        write(&mut buf, &probe);
        assert_eq!(read(&buf), Some(probe));
        assert_eq!(buf[1], 8);
        assert_eq!(buf[PACKET_LEN - 1], PCMA_SILENCE);
    }

    #[test]
    fn sequence_and_timestamp_advance() {
        let mut a = template();
        let mut b = template();
        let probe = Probe {
            call: 1,
            dir: DIR_A_TO_B,
            round: u32::from(u16::MAX),
            sent_ns: 0,
        };
        write(&mut a, &probe);
        write(
            &mut b,
            &Probe {
                round: probe.round + 1,
                ..probe
            },
        );
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&b), seq(&a).wrapping_add(1));
        assert_eq!(ts(&b), ts(&a).wrapping_add(TIMESTAMP_STEP));
        assert_ne!(ssrc(1, DIR_A_TO_B), ssrc(1, DIR_B_TO_A));
    }

    #[test]
    fn ignores_foreign_packets() {
        assert_eq!(read(&[0x80; 20]), None);
        assert_eq!(read(&[]), None);
        let mut buf = template();
        buf[0] = 0x40;
        assert_eq!(read(&buf), None);
    }
}
