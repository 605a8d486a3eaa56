//! Links the system codec libraries: libbcg729 (G.729 Annex A/B) and libopus.
//!
//! The FFI declarations are written by hand in `src/codec/g729.rs` and
//! `src/codec/opus.rs` from the installed headers (bcg729 1.1.1, opus 1.3).
//! When `pkg-config` knows a library we take its search path; otherwise the
//! system default path (Debian multiarch) is used. No pkg-config crate: the
//! tool is called directly and its absence is not an error.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for lib in ["bcg729", "opus"] {
        if let Some(dirs) = pkg_config_lib_dirs(lib) {
            for dir in dirs {
                println!("cargo:rustc-link-search=native={dir}");
            }
        }
        println!("cargo:rustc-link-lib={lib}");
    }
}

/// `-L` directories reported by `pkg-config --libs-only-L`, if the tool and
/// the package are present.
fn pkg_config_lib_dirs(lib: &str) -> Option<Vec<String>> {
    let output = Command::new("pkg-config")
        .args(["--libs-only-L", lib])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|flag| flag.strip_prefix("-L"))
            .map(str::to_owned)
            .collect(),
    )
}
