//! The sender thread: walks the schedule's slots in order, sending both directions of a call
//! when its slot is due and sleeping in between. Sleeps are at least `tick` long, so at high
//! call counts the sends due within one tick go out together (lateness ≤ tick, reported).
//! Nothing is allocated per packet: one pre-filled buffer is rewritten for each send. In
//! transcode mode the payload is the next packet of pre-encoded speech, and the send time is
//! recorded for the receiver's ordinal matching (just before the send, as relay mode stamps it).

use crate::histogram::Histogram;
use crate::packet::{self, Probe, DIR_A_TO_B, DIR_B_TO_A};
use crate::schedule::Schedule;
use crate::transcode::{self, Transcode};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Timer slack for the sender thread, ns: the default 50 µs would blur the 20 ms / N spacing.
const TIMER_SLACK_NS: libc::c_ulong = 1_000;

pub struct SenderReport {
    /// Packets of the timed phase handed to the kernel.
    pub sent: u64,
    /// Timed-phase packets the kernel refused (full socket buffer or error); not in `sent`.
    pub send_errors: u64,
    /// How late each timed-phase slot was sent relative to its due time.
    pub lateness: Histogram,
}

pub fn run(
    schedule: &Schedule,
    sockets: &[UdpSocket],
    destinations: &[SocketAddr],
    tick: Duration,
    transcode: Option<&Transcode>,
) -> SenderReport {
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS);
    }
    let tick_ns = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
    let calls = u64::from(schedule.calls);
    let mut report = SenderReport {
        sent: 0,
        send_errors: 0,
        lateness: Histogram::new(),
    };
    let mut buf = packet::template();
    let mut media = [0u8; transcode::MAX_PACKET_LEN];
    let total = schedule.total_slots();
    let mut slot = 0;
    while slot < total {
        let mut now = schedule.now_ns();
        while slot < total && schedule.slot_due_ns(slot) <= now {
            let round = (slot / calls) as u32;
            let call = (slot % calls) as u32;
            let measured = schedule.measured_index(round).is_some();
            if measured {
                report.lateness.record(now - schedule.slot_due_ns(slot));
            }
            for (dir, index) in [(DIR_A_TO_B, 2 * call), (DIR_B_TO_A, 2 * call + 1)] {
                let index = index as usize;
                let (Some(socket), Some(dest)) = (sockets.get(index), destinations.get(index))
                else {
                    continue;
                };
                now = schedule.now_ns();
                let ok = if let Some(t) = transcode {
                    let len = transcode::write_packet(&mut media, t.speech, call, index, round);
                    // The stream is named by the socket that receives it: the peer's.
                    t.sent.record(index ^ 1, round, now);
                    socket.send_to(&media[..len], dest).is_ok()
                } else {
                    let probe = Probe {
                        call,
                        dir,
                        round,
                        sent_ns: now,
                    };
                    packet::write(&mut buf, &probe);
                    socket.send_to(&buf, dest).is_ok()
                };
                if measured {
                    if ok {
                        report.sent += 1;
                    } else {
                        report.send_errors += 1;
                    }
                }
            }
            slot += 1;
        }
        if slot < total {
            let due = schedule.slot_due_ns(slot).max(now + tick_ns);
            schedule.sleep_until_ns(due);
        }
    }
    report
}
