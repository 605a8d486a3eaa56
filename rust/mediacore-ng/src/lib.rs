//! `mediacore-ng`: the server side of rtpengine's "ng" control protocol, sans-IO.
//!
//! Kamailio's and OpenSIPS's `rtpengine` modules speak ng to a media relay: bencoded
//! dictionaries over UDP, each datagram prefixed with a cookie. [`NgProcessor`] implements the
//! subset a B2BUA's media plane needs (`ping`, `offer`, `answer`, `delete`, `query`, `list`,
//! `play DTMF`) on top of any [`mediacore_engine::MediaControl`]; it owns no socket and reads no
//! clock, so the runtime feeds it datagrams with the current time and sends back what it returns.
//!
//! - [`bencode`]: the wire encoding;
//! - [`frame`]: `<cookie> <bencode>` datagrams;
//! - [`sdp`]: the SDP model that rewrites addresses and ports and keeps every other byte;
//! - [`codec`]: codec negotiation (rtpengine's `codec` options) and the legs' codec lists;
//! - [`processor`]: the commands, the call table and the reply cache.
//!
//! Policy: bad control input gets a reply with `result: "error"` and an `error-reason`; the
//! processor never panics on it and never leaves engine sessions that no call owns. The
//! supported protocol subset is documented in `docs/control-protocol.md`.

pub mod bencode;
pub mod codec;
pub mod frame;
pub mod processor;
pub mod sdp;

pub use bencode::{BencodeError, Value};
pub use processor::{CallOwner, DeleteStart, NgError, NgProcessor, PartyCounters, PendingDelete};
pub use sdp::{Sdp, SdpError};
