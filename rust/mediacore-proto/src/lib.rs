//! Pure protocol parsing and serialising for the media plane: RTP (RFC 3550),
//! RTCP (RFC 3550 §6, with a generic packet view for feedback and XR), RFC 4733
//! telephone-event, extended sequence numbers and RFC 3550 reception statistics.
//!
//! No I/O, no clock (callers pass arrival times in), and no allocation on the
//! RTP/RTCP validation path; only the typed RTCP packets allocate.
//!
//! # Policy
//!
//! A panic is a bug, never a consequence of bad input. Every parser returns a
//! `Result` whose error names the specific defect (`RtpError`, `RtcpError`,
//! `TelephoneEventError`), with `as_str()` giving a stable snake_case reason
//! for counters. The property tests in `tests/` feed arbitrary bytes to every
//! parser to hold this line.

pub mod reception;
pub mod rtcp;
pub mod rtp;
pub mod seq;
pub mod telephone_event;

pub use reception::{Arrival, ReceptionSnapshot, ReceptionStats};
pub use rtcp::{
    packets, parse_compound, Bye, ReceiverReport, ReportBlock, RtcpCompound, RtcpError,
    RtcpPacketHeader, RtcpPacketIter, Sdes, SenderReport, RTCP_APP, RTCP_BYE, RTCP_PSFB, RTCP_RR,
    RTCP_RTPFB, RTCP_SDES, RTCP_SR, RTCP_XR,
};
pub use rtp::{looks_like_rtcp, RtpError, RtpHeader};
pub use seq::{SeqExtender, SeqNo};
pub use telephone_event::{digit_for_event, event_for_digit, TelephoneEvent, TelephoneEventError};
