#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages (cpack --preset package) and proves them on a clean system: a fresh
# minimal Debian 12 root made by debootstrap in a temporary folder, entered with chroot, where
# scripts/check-packages-inside.sh installs them and uses them. Needs root (debootstrap, chroot,
# mount) and the network to a Debian mirror the first time.
#
# The root (debootstrap + the tools the check uses) takes minutes to make, so it is kept as a
# tarball in $SOCKSERV_CACHE_DIR (default ~/.cache/sockserv), named after its package list and
# the month: later runs unpack it in seconds and need no network. It holds the packages'
# dependencies (libssl-dev, liburing-dev) downloaded but not installed, so their Depends are
# still what installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "check-packages: needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi
scripts/bootstrap.sh package
started=$SECONDS

# 1. The packages.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# SOCKSERV_WERROR (CI sets it) makes warnings errors here too: an optimised build sees warnings
# the test presets' -O0/-O1 builds do not (GCC 12's -Wrestrict in proxy_protocol.cpp once).
cmake --preset package "${launcher[@]}" -DSOCKSERV_WERROR="${SOCKSERV_WERROR:-OFF}" >/dev/null
cmake --build --preset package
rm -f build/package/*.deb
cpack --preset package >/dev/null
debs=(build/package/libsockserv-dev_*.deb build/package/sockserv_*.deb)
echo "check-packages: built ${debs[*]##*/} ($((SECONDS - started)) s)"

# 2. The root, and what is mounted in it: unmounted in reverse order at exit, and the folder
# removed only when nothing is mounted under it any more (rm never crosses into the host's /dev).
work=$(mktemp -d /tmp/sockserv-packages.XXXXXX)
root=$work/root
mounted=()
cleanup() {
  local i
  [ -z "${partial:-}" ] || rm -f "$partial"  # a cache tarball left half-written
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" || umount --lazy "${mounted[i]}" || true
  done
  if grep -q "^$work/" <<<"$(findmnt -rn -o TARGET)"; then
    echo "check-packages: still mounted under $work: left in place" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
enter_root() {  # mounts what apt, man and the tests need; the host's name resolution for apt
  mount -t proc proc "$root/proc"
  mounted+=("$root/proc")
  mount --bind /dev "$root/dev"
  mounted+=("$root/dev")
  mount --bind /dev/pts "$root/dev/pts"
  mounted+=("$root/dev/pts")
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}
leave_root() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
  mounted=()
}

mirror=${SOCKSERV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tools=(g++ cmake ninja-build make pkg-config man-db systemd)
deps=(libssl-dev liburing-dev)
cache_dir=${SOCKSERV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sockserv}
key=$(printf '%s\n' bookworm "$mirror" "${tools[@]}" -- "${deps[@]}" | sha256sum | cut -c1-10)
tarball=$cache_dir/bookworm-root-$(date +%Y-%m)-$key.tar.gz
mkdir -p "$root"
if [ -f "$tarball" ] && ! tar -C "$root" -xzf "$tarball"; then
  echo "check-packages: $tarball is unreadable: making the root again" >&2
  rm -f "$tarball"
  rm -rf --one-file-system "$root"
  mkdir "$root"
fi
if [ -f "$tarball" ]; then
  echo "check-packages: fresh Debian 12 root unpacked from $tarball ($((SECONDS - started)) s)"
else
  echo "check-packages: making a Debian 12 root with debootstrap (minutes; cached afterwards)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log"; exit 1; }
  enter_root
  # No service starts in the root (policy-rc.d); the tools installed, the dependencies only
  # downloaded (apt-get clean first: debootstrap's own .debs need not be kept).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -ec "
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ${tools[*]} >/dev/null
    apt-get clean
    apt-get install -y -qq --no-install-recommends --download-only ${deps[*]} >/dev/null"
  leave_root
  mkdir -p "$cache_dir"
  rm -f "$cache_dir"/bookworm-root-*.tar.gz  # older months or package lists
  partial=$(mktemp "$cache_dir/partial.XXXXXX")  # a run beside this one writes its own
  tar -C "$root" -czf "$partial" .
  mv "$partial" "$tarball"
  echo "check-packages: Debian 12 root made and cached in $tarball ($((SECONDS - started)) s)"
fi

# 3. Inside: install and use the packages.
inside=$root/tmp/sockserv-check
mkdir -p "$inside"
cp "${debs[@]}" scripts/check-packages-inside.sh "$inside/"
cp -r tests/consumer "$inside/consumer"
enter_root
timeout 900 chroot "$root" /bin/bash /tmp/sockserv-check/check-packages-inside.sh
leave_root
echo "check-packages: the packages install and work on a fresh Debian 12 ($((SECONDS - started)) s)"
