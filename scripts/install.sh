#!/usr/bin/env bash
# The one install path (make install calls this): Debian packages the build and tests need,
# Python tools, the Rust media engine (maturin, editable), and Cython extensions (setup.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

# The browser tests (tests/web): Playwright (requirements-dev.txt) drives Debian's chromium
# headless (`playwright install` is never run); Playwright's bundled node driver needs
# libatomic1. Recommends are not installed, so the font the pages are drawn with is named here.
# (Checked on a minimal bookworm: chromium + fonts-dejavu-core + libatomic1 are enough.)
# baresip: a real user agent for tests/test_baresip_calls.py, run headless (no audio device, no
# GUI: without recommends only baresip-core comes, with its G.711 and Opus modules).
APT_PACKAGES=(build-essential pkg-config libbcg729-dev libopus-dev libspandsp-dev sip-tester tcpdump iproute2 rtpengine-daemon
              postgresql chromium fonts-dejavu-core libatomic1 baresip)
missing=()
for p in "${APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install: Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for c in clippy rustfmt; do
    cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$c"
done

echo "install: Python tools"
"$PYTHON" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
echo "install: media engine (Rust, release build through maturin)"
"$PYTHON" -m pip install -q --disable-pip-version-check --no-build-isolation -e .
echo "install: Cython extensions"
"$PYTHON" setup.py -q build_ext --inplace
echo "install: done ($(command -v softswitch))"
