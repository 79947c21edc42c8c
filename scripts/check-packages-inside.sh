#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs inside the fresh Debian 12 root of scripts/check-packages.sh (as root, in chroot), from
# the folder holding the two .debs and a copy of tests/consumer: installs the packages with
# apt-get (their Depends must bring what they need), then uses them as a user would. Every wait
# is bounded; the only processes stopped are the ones started here, by PID.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
say() { echo "packages: $*"; }
fail() {
  echo "packages: FAILED: $*" >&2
  exit 1
}
# (No `producer | grep -q`: with pipefail, grep leaving early fails the producer with SIGPIPE.)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
links_shared_sockserv() { grep -q 'libsockserv\.so' <<<"$(ldd "$1")"; }

# The command alone first: its Depends (from dpkg-shlibdeps) must be enough to run it.
apt-get install -y -qq --no-install-recommends ./sockserv_*.deb >/dev/null
! installed libsockserv-dev || fail "installing sockserv installed libsockserv-dev"
for f in /usr/bin/sockserv /usr/share/man/man1/sockserv.1.gz /lib/systemd/system/sockserv.socket \
  /lib/systemd/system/sockserv.service; do
  [ -e "$f" ] || fail "$f is not installed"
done
version=$(dpkg-query -W -f='${Version}' sockserv)
[ "$(sockserv --version)" = "sockserv ${version%-*}" ] ||
  fail "sockserv --version says '$(sockserv --version)', the package is $version"

# sockserv serve on a port the kernel picks (the chroot shares the host's network), then a
# request with sockserv send.
sockserv serve --tcp 127.0.0.1:0 --handler echo >serve.log 2>&1 &
server=$!
address=""
for _ in $(seq 100); do
  address=$(sed -n 's/^listening on //p' serve.log)
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { kill "$server"; fail "sockserv serve did not start: $(cat serve.log)"; }
reply=$(sockserv send "$address" from the package) || true
kill "$server" 2>/dev/null || true  # it may have ended already: the check below says why
wait "$server" || true
grep -qx 'Received: from the package' <<<"$reply" || fail "sockserv serve replied: $reply"
say "sockserv serve answered on $address"

# The service's own command line, on a socket passed as sockserv.socket would (LISTEN_FDS;
# systemd's socket activator, on a Unix socket so no port can collide).
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/sockserv.service)
read -r -a command <<<"$exec_start"
systemd-socket-activate -l "$PWD/activated.sock" "${command[@]}" >activate.log 2>&1 &
server=$!
for _ in $(seq 100); do
  [ -S activated.sock ] && break
  sleep 0.1
done
reply=$(sockserv send "unix:$PWD/activated.sock" activated) || true
kill "$server" 2>/dev/null || true  # it may have ended already: the check below says why
wait "$server" || true
grep -qx 'Received: ACTIVATED' <<<"$reply" ||
  fail "the service's ExecStart on an activated socket replied: $reply ($(cat activate.log))"
say "the service's ExecStart serves a socket-activated listener"

# The units are well-formed and installed disabled: nothing enables them.
systemd-analyze verify /lib/systemd/system/sockserv.socket /lib/systemd/system/sockserv.service ||
  fail "systemd-analyze verify"
# The service is "indirect": only its Also=sockserv.socket would be enabled with it.
for unit in sockserv.socket:disabled sockserv.service:indirect; do
  state=$(systemctl is-enabled "${unit%:*}" 2>&1) || true
  [ "$state" = "${unit#*:}" ] || fail "${unit%:*} is $state, not ${unit#*:}"
done
[ -z "$(find /etc/systemd -name 'sockserv*')" ] || fail "sockserv units are linked in /etc/systemd"
say "systemd units verified, not enabled"

page=$(MANWIDTH=100 man -P cat sockserv 2>&1) || fail "man sockserv: $page"
grep -q 'sockserv serve' <<<"$page" && grep -q -- '--tcp' <<<"$page" ||
  fail "man sockserv does not describe serve: $page"
say "man sockserv renders ($(wc -l <<<"$page") lines) and describes serve"

# Then the library. The root has the tools only: libssl-dev and liburing-dev are in apt's cache,
# not installed, so libsockserv-dev's Depends must pull them in.
for dep in libssl-dev liburing-dev; do
  ! installed "$dep" || fail "$dep is installed beforehand: the Depends would not be tested"
done
apt-get install -y -qq --no-install-recommends ./libsockserv-dev_*.deb >/dev/null
versions=$(dpkg-query -W libsockserv-dev sockserv libssl-dev liburing-dev) ||
  fail "libsockserv-dev's Depends did not bring libssl-dev and liburing-dev"
sed 's/^/  /' <<<"$versions"
multiarch=$(gcc -print-multiarch)
for f in /usr/include/sockserv/sockserv.hpp "/usr/lib/$multiarch/libsockserv.a" \
  "/usr/lib/$multiarch/libsockserv.so" "/usr/lib/$multiarch/pkgconfig/sockserv.pc" \
  "/usr/lib/$multiarch/cmake/sockserv/sockservConfig.cmake"; do
  [ -e "$f" ] || fail "$f is not installed"
done

# A consumer built with find_package: sockserv::sockserv is the shared library, and
# sockserv::sockserv_static the archive (no libsockserv.so in what it needs).
cmake -S consumer -B build-shared -G Ninja >/dev/null
cmake --build build-shared >/dev/null
build-shared/consumer >/dev/null || fail "the find_package consumer (shared)"
links_shared_sockserv build-shared/consumer || fail "sockserv::sockserv is not shared"
cmake -S consumer -B build-static -G Ninja -DSOCKSERV_TARGET=sockserv::sockserv_static >/dev/null
cmake --build build-static >/dev/null
build-static/consumer >/dev/null || fail "the find_package consumer (static)"
! links_shared_sockserv build-static/consumer || fail "sockserv_static is not static"
say "find_package consumer built and ran (shared and static)"

g++ consumer/main.cpp -o consumer-pc $(pkg-config --cflags --libs sockserv)
./consumer-pc >/dev/null || fail "the pkg-config consumer"
links_shared_sockserv consumer-pc || fail "-lsockserv did not pick the shared library"
say "pkg-config consumer built and ran"
