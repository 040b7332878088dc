#!/bin/sh
# Install the Debian packages libdeissn needs to build, test and run its demo.
# Run as root (CI and fresh machines); prints what it does. Skips packages already present.
# One list for Debian 12 (bookworm) and Debian 13 (trixie): the names are the same on both.
set -e
PKGS="build-essential pkg-config cmake zlib1g-dev libpng-dev libcjson-dev \
      libtorch-dev python3-torch python3-numpy python3-pytest python3-pil python3-matplotlib \
      dataset-fashion-mnist valgrind clang abigail-tools bindgen cargo"
# cargo (the Rust bindings' tests) is left out where one is already on PATH (rustup), and on
# Debian 12, whose cargo 0.66 cannot read bindings/rust/Cargo.lock (lock file version 4 needs
# cargo 1.78 or later): there the Rust tests need rustup's, and say SKIP without one.
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if command -v cargo >/dev/null || [ "$codename" = bookworm ]; then
    PKGS=$(printf '%s\n' $PKGS | grep -vx cargo)
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all Debian packages present"
    exit 0
fi
echo "install-deps: installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: not root; run: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
