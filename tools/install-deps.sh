#!/bin/sh
# Install the Debian packages libdeissn needs to build, test and run its demo.
# Run as root (CI and fresh machines); prints what it does. Skips packages already present.
set -e
PKGS="build-essential pkg-config cmake zlib1g-dev libpng-dev libcjson-dev \
      libtorch-dev python3-torch python3-numpy python3-pytest python3-pil python3-matplotlib \
      dataset-fashion-mnist valgrind clang abigail-tools bindgen"
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
