//! Links libbcg729 (Debian: libbcg729-dev), the G.729 codec rtpload uses to pre-encode leg B's
//! speech in transcode mode and to measure the codec floor.

fn main() {
    println!("cargo:rustc-link-lib=bcg729");
    println!("cargo:rerun-if-changed=build.rs");
}
