//! Golden SDP rewriting: every `tests/golden/<case>.in.sdp` rewritten must equal
//! `<case>.out.sdp` byte for byte.
//!
//! The relay side is fixed: address 203.0.113.10 (2001:db8::10 for cases whose name contains
//! `ipv6`), RTP port 40000 + 10 × section index, RTCP the next port; ICE stripped (the default);
//! the `o=` address replaced only for cases whose name contains `origin`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::Path;

use mediacore_ng::sdp::{LocalMedia, RewriteOptions, Sdp};

fn run_case(name: &str, input: &[u8]) -> Vec<u8> {
    let address: IpAddr = if name.contains("ipv6") {
        "2001:db8::10"
    } else {
        "203.0.113.10"
    }
    .parse()
    .unwrap();
    let sdp = Sdp::parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
    let locals: Vec<Option<LocalMedia>> = (0..sdp.media.len())
        .map(|i| {
            let rtp_port = 40000 + 10 * u16::try_from(i).unwrap();
            Some(LocalMedia {
                address,
                rtp_port,
                rtcp_port: rtp_port + 1,
            })
        })
        .collect();
    let opts = RewriteOptions {
        strip_ice: true,
        origin: name.contains("origin").then_some(address),
    };
    sdp.rewrite(&locals, &opts)
}

#[test]
fn golden_pairs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".in.sdp"))
                .map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 12,
        "expected at least 12 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for name in &cases {
        let input = std::fs::read(dir.join(format!("{name}.in.sdp"))).unwrap();
        let expected = std::fs::read(dir.join(format!("{name}.out.sdp"))).unwrap();
        let got = run_case(name, &input);
        if got != expected {
            failures.push(format!(
                "--- {name}: expected\n{}\n--- got\n{}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rewriting_is_stable_on_its_own_output() {
    // The relayed body is valid SDP again (a B2BUA may relay it through a second hop).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
        let file = entry.file_name().to_string_lossy().to_string();
        if let Some(name) = file.strip_suffix(".out.sdp") {
            let out = std::fs::read(entry.path()).unwrap();
            assert!(Sdp::parse(&out).is_ok(), "{name}.out.sdp does not parse");
        }
    }
}
