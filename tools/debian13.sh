#!/bin/sh
# tools/debian13.sh - run `make check` on Debian 13 (trixie: libtorch 2.6, Python 3.13,
# NumPy 2.2) in a chroot built with debootstrap. `make check-debian13` calls it; run as root
# from any Debian host with network access to its Debian mirror.
#
#   build/debian13/base   debootstrap --variant=minbase trixie, from the mirror that
#                         /etc/apt/sources.list.d/debian.sources names (or DEBIAN13_MIRROR),
#                         verified with the host's debian-archive-keyring
#   build/debian13/root   a copy of base with the project's packages, installed by running
#                         tools/install-deps.sh inside it; remade from base whenever
#                         tools/install-deps.sh changes (so whenever its package list does)
#   root/work/libdeissn   the working tree (tracked and untracked-but-not-ignored files,
#                         uncommitted changes included), copied afresh on every run
#   root/work/shared      ../shared (the tests read ../shared/seed-tables)
#
# Then `make -jJOBS check` runs inside the chroot (JOBS defaults to 2) with /proc, /sys, /dev
# and /dev/pts mounted; the mounts are undone on every exit. Exits with make check's status.
# Prints the time each phase took. DEBIAN13_REBUILD=1 remakes base and root from scratch.
# Exit status 3 (and nothing else) means the Debian 13 root could not be made: the mirror
# did not answer, twice. .ci/run reports that as a named skip; a failing `make check` in the
# root is never one.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dir=${DEBIAN13_DIR:-$here/build/debian13}
base=$dir/base
root=$dir/root
suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
jobs=${JOBS:-2}

say() { echo "debian13: $*"; }
die() { echo "debian13: $*" >&2; exit 1; }
unreachable() { echo "debian13: $*" >&2; exit 3; }
now() { date +%s; }
t_start=$(now)
phase_start=$t_start
timings=""
phase_done() {   # phase_done NAME: record how long the phase that just ended took
    t=$(now)
    timings="$timings$(printf '  %-22s %5d s' "$1" $((t - phase_start)))
"
    say "$1: $((t - phase_start)) s"
    phase_start=$t
}
report() {
    printf 'debian13: timings\n%s  %-22s %5d s\n' "$timings" total $(($(now) - t_start))
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it)"

# The mirror: the first URIs: of the host's deb822 sources whose suites are not -security.
mirror=${DEBIAN13_MIRROR:-}
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '
        /^[ \t]*$/ { if (uri != "" && !sec) { print uri; exit } uri = ""; sec = 0; next }
        $1 == "URIs:" { uri = $2 }
        $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i ~ /-security$/) sec = 1 }
        END { if (uri != "" && !sec) print uri }' /etc/apt/sources.list.d/debian.sources \
        | head -n 1)
fi
[ -n "$mirror" ] || die "no Debian mirror: /etc/apt/sources.list.d/debian.sources has no URIs: line; set DEBIAN13_MIRROR"
[ -r "$keyring" ] || die "$keyring is missing: install debian-archive-keyring"

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        || die "cannot install debootstrap"
fi
[ -e /usr/share/debootstrap/scripts/$suite ] \
    || die "this debootstrap ($(dpkg-query -W -f='${Version}' debootstrap)) does not know $suite"

# Everything mounted inside the root is undone on exit, whatever ends the script.
mounted=""
cleanup() {
    for m in $mounted; do   # most recent first
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null \
            || echo "debian13: could not unmount $m" >&2
    done
    mounted=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# A run killed outright (SIGKILL) cannot clean up: undo what it left mounted under $dir
# before anything there is removed, and remove with --one-file-system in any case, so that a
# bind mount of /dev is never emptied.
stale=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
for m in $stale; do
    say "unmounting $m, left by an earlier run"
    umount "$m" 2>/dev/null || umount -l "$m" || die "cannot unmount $m"
done
wipe() { rm -rf --one-file-system "$@"; }
mount_in() {   # mount_in TARGET MOUNT-ARGS...: mount inside $root, remembered for cleanup
    target=$root/$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounted="$target $mounted"
}
mount_all() {
    mount_in proc -t proc proc
    mount_in sys -t sysfs -o ro sysfs
    mount_in dev --bind /dev
    mount_in dev/pts --bind /dev/pts
}
in_root() {    # in_root COMMAND: run a shell command in the chroot with a clean environment
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "$1"
}

# ---- phase 1: the base system -----------------------------------------------------------
base_id="suite=$suite mirror=$mirror variant=minbase debootstrap=$(dpkg-query -W -f='${Version}' debootstrap)"
[ "${DEBIAN13_REBUILD:-0}" = 1 ] && wipe "$base" "$root" "$dir/base.id" "$dir/root.id"
if [ -f "$dir/base.id" ] && [ "$(cat "$dir/base.id")" = "$base_id" ] && [ -d "$base" ]; then
    say "base system: reusing $base"
else
    say "base system: debootstrap $suite from $mirror into $base"
    wipe "$base" "$root" "$dir/base.id" "$dir/root.id"
    mkdir -p "$dir"
    for try in 1 2; do
        debootstrap --variant=minbase --keyring="$keyring" "$suite" "$base" "$mirror" \
            > "$dir/debootstrap.log" 2>&1 && break
        tail -n 20 "$dir/debootstrap.log" >&2
        wipe "$base"
        [ $try = 2 ] && unreachable "debootstrap failed twice (log: $dir/debootstrap.log)"
        say "debootstrap failed; trying again in 30 s"
        sleep 30
    done
    echo "$base_id" > "$dir/base.id"
fi
phase_done "base system"

# ---- phase 2: the project's packages, by the project's own tools/install-deps.sh ----------
root_id="$base_id deps=$(sha256sum tools/install-deps.sh | cut -d' ' -f1)"
if [ -f "$dir/root.id" ] && [ "$(cat "$dir/root.id")" = "$root_id" ] && [ -d "$root" ]; then
    say "packages: reusing $root (tools/install-deps.sh unchanged)"
else
    say "packages: $root from $base, then tools/install-deps.sh inside it"
    wipe "$root" "$dir/root.id"
    cp -a "$base" "$root"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/tmp/deps"
    cp tools/install-deps.sh "$root/tmp/deps/"
    mount_all
    # apt's progress goes to packages.log; the script's own lines and any failure show here
    in_root '/tmp/deps/install-deps.sh && apt-get clean' > "$dir/packages.log" 2>&1 \
        || { tail -n 30 "$dir/packages.log" >&2; say "install-deps failed; trying again in 30 s"
             sleep 30
             in_root '/tmp/deps/install-deps.sh && apt-get clean' >> "$dir/packages.log" 2>&1; } \
        || { tail -n 30 "$dir/packages.log" >&2
             unreachable "tools/install-deps.sh failed twice in the chroot (log: $dir/packages.log)"; }
    grep '^install-deps:' "$dir/packages.log" || true
    cleanup
    wipe "$root/tmp/deps"
    echo "$root_id" > "$dir/root.id"
fi
phase_done "packages"

# ---- phase 3: the source tree, ../shared, and make check ---------------------------------
src=$root/work/libdeissn
wipe "$root/work"
mkdir -p "$src"
# tracked files (as they are now, deleted ones left out) and untracked files git does not ignore
git ls-files -z --cached --others --exclude-standard \
    | tr '\0' '\n' | while IFS= read -r f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -C "$src" -xf -
if [ -d ../shared ]; then
    cp -a ../shared "$root/work/shared"
else
    say "warning: no ../shared beside the tree; the tests that read ../shared/seed-tables will say so"
fi
phase_done "copy sources"

mount_all
say "make -j$jobs check in the chroot ($(in_root '. /etc/os-release; echo "$PRETTY_NAME"'))"
rc=0
in_root "cd /work/libdeissn && make -j$jobs check" || rc=$?
cleanup
phase_done "build + tests"
report
[ $rc -eq 0 ] && say "make check passed on Debian 13" || say "make check FAILED on Debian 13 (status $rc)"
exit $rc
