//! Call setup and teardown. Each call has two endpoint sockets: A (caller) at socket index
//! `2*call` and B (callee) at `2*call + 1`. Through an engine, A's offer yields the address B
//! must send to (Pb) and B's answer yields the address A must send to (Pa); in direct mode
//! they simply send to each other. In transcode mode A offers PCMA only and asks the engine
//! to transcode to G.729 (ng `codec: {transcode: [G729]}`); B answers G.729 only. A call whose
//! offer towards B lacks G.729, or whose answer towards A lacks PCMA, fails setup.

use crate::args::Mode;
use crate::bencode::Value;
use crate::ng::NgClient;
use crate::sdp::{self, Codec};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Socket buffer size for each endpoint, bytes: a few hundred packets of slack.
const ENDPOINT_BUFFER_BYTES: usize = 256 * 1024;
/// Setup gives up after this many calls in a row fail (the engine is likely gone).
const MAX_CONSECUTIVE_FAILURES: u32 = 5;
/// Upper bound on the whole setup or teardown phase.
const PHASE_DEADLINE: Duration = Duration::from_secs(120);

/// The calls that were set up: endpoint sockets and, per socket, where it sends.
pub struct Calls {
    pub sockets: Vec<UdpSocket>,
    pub destinations: Vec<SocketAddr>,
    /// ng call-id and from-tag of each call, for `delete`; empty in direct mode.
    pub ng_ids: Vec<(String, String)>,
    pub setup_failures: u32,
    pub first_failure: Option<String>,
}

/// Binds `count` non-blocking UDP sockets on `ip`, trying ports upward from `port_base` and
/// skipping ports already in use.
pub fn bind_endpoints(ip: IpAddr, port_base: u16, count: usize) -> Result<Vec<UdpSocket>, String> {
    let mut sockets = Vec::with_capacity(count);
    let mut port = port_base;
    while sockets.len() < count {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(ip, 0)),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(|e| format!("socket: {e}"))?;
        // Larger buffers are best effort: the kernel caps them at net.core.[rw]mem_max.
        let _ = socket.set_recv_buffer_size(ENDPOINT_BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(ENDPOINT_BUFFER_BYTES);
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("set_nonblocking: {e}"))?;
        match socket.bind(&SocketAddr::new(ip, port).into()) {
            Ok(()) => sockets.push(socket.into()),
            Err(e) if e.kind() == ErrorKind::AddrInUse => {}
            Err(e) => return Err(format!("bind {ip}:{port}: {e}")),
        }
        port = port
            .checked_add(1)
            .ok_or("ran out of ports for endpoints")?;
    }
    Ok(sockets)
}

fn local_addr(socket: &UdpSocket) -> Result<SocketAddr, String> {
    socket.local_addr().map_err(|e| format!("local_addr: {e}"))
}

/// Direct mode: A sends to B and B to A.
pub fn direct(sockets: Vec<UdpSocket>) -> Result<Calls, String> {
    let mut destinations = Vec::with_capacity(sockets.len());
    for pair in sockets.chunks(2) {
        if let [a, b] = pair {
            destinations.push(local_addr(b)?);
            destinations.push(local_addr(a)?);
        }
    }
    Ok(Calls {
        sockets,
        destinations,
        ng_ids: Vec::new(),
        setup_failures: 0,
        first_failure: None,
    })
}

/// Sets up one call per socket pair through the engine; calls that fail are dropped and
/// counted. Stops early after repeated failures or at the phase deadline.
pub fn through_engine(
    client: &mut NgClient,
    sockets: Vec<UdpSocket>,
    mode: Mode,
) -> Result<Calls, String> {
    let deadline = Instant::now() + PHASE_DEADLINE;
    let requested = sockets.len() / 2;
    let mut calls = Calls {
        sockets: Vec::with_capacity(sockets.len()),
        destinations: Vec::with_capacity(sockets.len()),
        ng_ids: Vec::with_capacity(requested),
        setup_failures: 0,
        first_failure: None,
    };
    let mut consecutive_failures = 0;
    let mut pairs = sockets.into_iter();
    let run_id = std::process::id();
    for call in 0..requested {
        let (Some(a), Some(b)) = (pairs.next(), pairs.next()) else {
            break;
        };
        if consecutive_failures >= MAX_CONSECUTIVE_FAILURES || Instant::now() > deadline {
            calls.setup_failures += 1;
            continue;
        }
        let call_id = format!("rtpload-{run_id}-{call}");
        let from_tag = format!("a{call}");
        match set_up(client, mode, &call_id, &from_tag, call as u64, &a, &b) {
            Ok((to_a, to_b)) => {
                consecutive_failures = 0;
                calls.sockets.extend([a, b]);
                calls.destinations.extend([to_a, to_b]);
                calls.ng_ids.push((call_id, from_tag));
            }
            Err(e) => {
                consecutive_failures += 1;
                calls.setup_failures += 1;
                calls.first_failure.get_or_insert(format!("{call_id}: {e}"));
            }
        }
    }
    Ok(calls)
}

/// Offer from A, answer from B; returns (where A sends, where B sends).
fn set_up(
    client: &mut NgClient,
    mode: Mode,
    call_id: &str,
    from_tag: &str,
    session_id: u64,
    a: &UdpSocket,
    b: &UdpSocket,
) -> Result<(SocketAddr, SocketAddr), String> {
    let (b_codec, need_towards_b, need_towards_a) = match mode {
        Mode::Relay => (Codec::Pcma, None, None),
        Mode::Transcode => (Codec::G729, Some("G729"), Some("PCMA")),
    };
    let mut offer = vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str(from_tag)),
        (
            "sdp",
            Value::str(&sdp::codec_sdp(local_addr(a)?, session_id, Codec::Pcma)),
        ),
    ];
    if mode == Mode::Transcode {
        offer.push((
            "codec",
            Value::dict(vec![("transcode", Value::List(vec![Value::str("G729")]))]),
        ));
    }
    let to_b = reply_destination(&client.request(&Value::dict(offer))?, need_towards_b)?;
    let answer = Value::dict(vec![
        ("command", Value::str("answer")),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str(from_tag)),
        ("to-tag", Value::str(&format!("b{session_id}"))),
        (
            "sdp",
            Value::str(&sdp::codec_sdp(local_addr(b)?, session_id, b_codec)),
        ),
    ]);
    let to_a = reply_destination(&client.request(&answer)?, need_towards_a)?;
    Ok((to_a, to_b))
}

/// The media address of the reply's SDP, after checking it offers `codec` if given.
fn reply_destination(reply: &Value, codec: Option<&str>) -> Result<SocketAddr, String> {
    let sdp = reply
        .get("sdp")
        .and_then(Value::as_text)
        .ok_or("ng reply without sdp")?;
    if let Some(codec) = codec.filter(|c| !sdp::offers_codec(sdp, c)) {
        let command = if codec == "G729" {
            "offer to B"
        } else {
            "answer to A"
        };
        return Err(format!(
            "engine did not offer {codec} in its {command} ({})",
            sdp::audio_line(sdp)
        ));
    }
    sdp::audio_destination(sdp)
}

/// Deletes every call; returns how many deletes failed. Gives up (counting the rest as
/// failed) after repeated failures or at the phase deadline.
pub fn delete_all(client: &mut NgClient, ng_ids: &[(String, String)]) -> u32 {
    let deadline = Instant::now() + PHASE_DEADLINE;
    let mut failures = 0;
    let mut consecutive_failures = 0;
    for (call_id, from_tag) in ng_ids {
        if consecutive_failures >= MAX_CONSECUTIVE_FAILURES || Instant::now() > deadline {
            failures += 1;
            continue;
        }
        let delete = Value::dict(vec![
            ("command", Value::str("delete")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str(from_tag)),
        ]);
        if client.request(&delete).is_ok() {
            consecutive_failures = 0;
        } else {
            consecutive_failures += 1;
            failures += 1;
        }
    }
    failures
}
