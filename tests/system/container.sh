#!/usr/bin/env bash
# A throwaway Debian 12 or Ubuntu 24.04 machine with a real systemd as PID 1, booted with
# systemd-nspawn.
#
#   container.sh root             build (or reuse) the cached root; print its path
#   container.sh start            boot a copy-on-write copy of the root on a private veth
#   container.sh exec CMD [ARG]   run CMD inside, as root, with a clean environment
#   container.sh copy-in SRC DST  copy a host file to DST inside the container
#   container.sh ip               print the container's address (reachable from the host)
#   container.sh host-ip          print the host's address on the veth
#   container.sh stop             power the container off and delete its copy (safe to repeat)
#
# The host needs root, debootstrap and systemd-container; it does not need systemd as PID 1:
# nspawn runs without registering with machined and without asking PID 1 for a scope.
# Network: the host side of the veth (ve-<machine>) gets $NET.1/24, the container's host0
# $NET.2/24 (defaults 10.231.5.1 and 10.231.5.2). No route leads further, so the container is
# offline: a package that installs there installs without network.
# Several containers that must reach each other (tests/infra/run-multi) share a bridge instead:
# with AGENTHUB_CI_BRIDGE set, the host side (vb-<machine>) joins that bridge, which holds
# $NET.1/24, and each container takes its own AGENTHUB_CI_IP on the same /24. Still no route
# leads further; the last container stopped removes the bridge.
#
# Environment:
#   AGENTHUB_CI_DISTRO    debian12 (default) or ubuntu2404
#   AGENTHUB_CI_CACHE     where roots and running copies live (default /var/cache/agenthub-ci);
#                         building a root removes the roots no run started for 14 days
#   AGENTHUB_CI_MACHINE   container name, at most 12 characters (default agenthub-ci)
#   AGENTHUB_CI_NET       first three octets of the /24 (default 10.231.5)
#   AGENTHUB_CI_BRIDGE    put the container on this host bridge (created if missing, at most 15
#                         characters) instead of its own veth /24 (default: unset, own veth)
#   AGENTHUB_CI_IP        the container's address (default $NET.2; unique per bridge)
#   AGENTHUB_CI_PACKAGES  extra packages for the root, space separated (e.g. openssh-server);
#                         a different list is a different cached root
#   AGENTHUB_CI_MIRROR    Debian mirror; default: the one this host's apt sources use.
#                         Ubuntu mirror (ubuntu2404); default: debootstrap's own for Ubuntu
#
# Ubuntu roots are verified like Debian ones: debootstrap checks the Release signature, here
# against the Ubuntu archive signing key pinned below by fingerprint (the key itself comes from
# the archive's ubuntu-keyring package, and is used only if its fingerprint matches).
set -euo pipefail

CACHE="${AGENTHUB_CI_CACHE:-/var/cache/agenthub-ci}"
MACHINE="${AGENTHUB_CI_MACHINE:-agenthub-ci}"
NET="${AGENTHUB_CI_NET:-10.231.5}"
DISTRO="${AGENTHUB_CI_DISTRO:-debian12}"
BASE_PACKAGES=(systemd systemd-sysv dbus iproute2 adduser postgresql python3 python3-venv libpq5
  curl ca-certificates)
case "$DISTRO" in
  debian12) SUITE=bookworm COMPONENTS=main ;;
  # python3-venv is in universe on Ubuntu (enabled on Ubuntu's server and cloud images).
  ubuntu2404) SUITE=noble COMPONENTS=main,universe ;;
  *) echo "container.sh: AGENTHUB_CI_DISTRO must be debian12 or ubuntu2404" >&2; exit 64 ;;
esac
# "Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>", which signs noble.
UBUNTU_ARCHIVE_KEY=F6ECB3762474EDA9D21B7022871920D1991BC93C
# debootstrap runs every Ubuntu release with this script (Debian 12's debootstrap predates
# noble, so it is named explicitly).
UBUNTU_SCRIPT=/usr/share/debootstrap/scripts/gutsy
read -r -a EXTRA_PACKAGES <<<"${AGENTHUB_CI_PACKAGES:-}"
# Bump when the way a root is made changes, so stale caches are not reused.
ROOT_FORMAT=1

RUN_DIR="$CACHE/run/$MACHINE"
BRIDGE="${AGENTHUB_CI_BRIDGE:-}"
if [[ -n "$BRIDGE" ]]; then HOST_IF="vb-$MACHINE"; else HOST_IF="ve-$MACHINE"; fi
HOST_IP="$NET.1"
GUEST_IP="${AGENTHUB_CI_IP:-$NET.2}"

die() { echo "container.sh: $*" >&2; exit 1; }
say() { echo "container.sh: $*" >&2; }

((${#MACHINE} <= 12)) || die "AGENTHUB_CI_MACHINE must be at most 12 characters (veth names)"
((${#BRIDGE} <= 15)) || die "AGENTHUB_CI_BRIDGE must be at most 15 characters (interface names)"
[[ $EUID -eq 0 ]] || die "must run as root"

root_dir() {
  local key
  key="$(printf '%s\n' "$ROOT_FORMAT" "$SUITE" "$COMPONENTS" "${BASE_PACKAGES[@]}" \
    "${EXTRA_PACKAGES[@]}" | sha256sum | cut -c1-12)"
  echo "$CACHE/roots/$SUITE-$key"
}

# The first deb822 or one-line apt source that serves Debian $SUITE; no host name is written
# into the repository.
detect_mirror() {
  if [[ -n "${AGENTHUB_CI_MIRROR:-}" ]]; then
    echo "$AGENTHUB_CI_MIRROR"
    return
  fi
  local files=() f
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && files+=("$f")
  done
  ((${#files[@]})) || die "no apt sources found; set AGENTHUB_CI_MIRROR"
  python3 - "$SUITE" "${files[@]}" <<'PY'
import sys

suite, paths = sys.argv[1], sys.argv[2:]
for path in paths:
    text = open(path, encoding="utf-8").read()
    if path.endswith(".sources"):
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if ("deb" in fields.get("types", []) and suite in fields.get("suites", [])
                    and "main" in fields.get("components", []) and fields.get("uris")):
                print(fields["uris"][0])
                sys.exit(0)
    else:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] != ["deb"]:
                continue
            words = [w for w in words[1:] if not w.startswith("[")]
            if len(words) >= 3 and words[1] == suite and "main" in words[2:]:
                print(words[0])
                sys.exit(0)
sys.exit(f"container.sh: no apt source for Debian {suite} main; set AGENTHUB_CI_MIRROR")
PY
}

# Ubuntu: debootstrap's default mirror for Ubuntu suites on this architecture (read from its
# script, so no host name is written here).
ubuntu_mirror() {
  if [[ -n "${AGENTHUB_CI_MIRROR:-}" ]]; then
    echo "$AGENTHUB_CI_MIRROR"
    return
  fi
  [[ -f "$UBUNTU_SCRIPT" ]] || die "$UBUNTU_SCRIPT is missing (apt-get install debootstrap)"
  local arch
  arch="$(dpkg --print-architecture)"
  # The script's case on $ARCH: amd64/i386 use the main archive, the rest the ports archive.
  awk -v arch="$arch" '
    /^  [a-z0-9|]+\)$/ { sel = ($1 ~ "(^|[|])" arch "([|)]|$)") }
    /^  \*\)$/ { if (!found) sel = 1 }
    sel && /default_mirror/ && $2 !~ /old-releases/ { print $2; found = 1; exit }
  ' "$UBUNTU_SCRIPT"
}

# A keyring holding only the pinned Ubuntu archive key, taken from the archive's
# ubuntu-keyring package.
ubuntu_keyring() {
  local mirror="$1" out="$2" work pool
  work="$(mktemp -d)"
  # The package's path comes from the (not yet verified) index; the fingerprint check below is
  # what makes its content trustworthy.
  curl -fsS --max-time 120 -o "$work/Packages.gz" \
    "$mirror/dists/$SUITE/main/binary-$(dpkg --print-architecture)/Packages.gz" \
    || die "cannot read $SUITE's package index from $mirror"
  pool="$(gzip -dc "$work/Packages.gz" \
    | awk '$0 == "Package: ubuntu-keyring" { p = 1 } p && /^Filename:/ { f = $2; p = 0 } END { print f }')"
  [[ -n "$pool" ]] || die "no ubuntu-keyring in $SUITE's index"
  curl -fsS --max-time 120 -o "$work/keyring.deb" "$mirror/$pool" || die "cannot fetch $pool"
  dpkg-deb -x "$work/keyring.deb" "$work/x"
  mkdir -m 700 "$work/gnupg"
  gpg --homedir "$work/gnupg" --quiet --batch \
    --import "$work/x/usr/share/keyrings/ubuntu-archive-keyring.gpg" 2>/dev/null
  gpg --homedir "$work/gnupg" --batch --export "$UBUNTU_ARCHIVE_KEY" >"$out"
  [[ -s "$out" ]] || die "the archive's keyring lacks the pinned key $UBUNTU_ARCHIVE_KEY"
  gpg --show-keys --with-colons "$out" 2>/dev/null | grep -q "^fpr:*$UBUNTU_ARCHIVE_KEY:" \
    || die "exported keyring does not hold $UBUNTU_ARCHIVE_KEY"
  rm -rf "$work"
}

cmd_root() {
  local dir tmp mirror include
  dir="$(root_dir)"
  if [[ -f "$dir/.complete" ]]; then
    echo "$dir"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  # Several runs (other machine names) share the cache: one builds, the others wait for it.
  mkdir -p "$CACHE/roots"
  exec 9>"$CACHE/roots/.lock"
  flock 9
  if [[ -f "$dir/.complete" ]]; then
    echo "$dir"
    return
  fi
  tmp="$dir.tmp"
  rm -rf "$tmp" "$tmp.keyring"
  mkdir -p "$tmp"
  local -a source
  if [[ "$DISTRO" == ubuntu2404 ]]; then
    mirror="$(ubuntu_mirror)"
    [[ -n "$mirror" ]] || die "no Ubuntu mirror known for this architecture; set AGENTHUB_CI_MIRROR"
    command -v gpg >/dev/null || die "gpg is missing (apt-get install gpg)"
    ubuntu_keyring "$mirror" "$tmp.keyring"
    source=(--keyring="$tmp.keyring" "$SUITE" "$tmp" "$mirror" "$UBUNTU_SCRIPT")
  else
    mirror="$(detect_mirror)"
    source=("$SUITE" "$tmp" "$mirror")
  fi
  include="$(IFS=,; echo "${BASE_PACKAGES[*]}${EXTRA_PACKAGES[*]:+,${EXTRA_PACKAGES[*]}}")"
  include="${include// /,}"
  say "debootstrap $SUITE from $mirror into $tmp (cached for next runs)"
  debootstrap --variant=minbase --components="$COMPONENTS" --include="$include" "${source[@]}" \
    >"$tmp.log" 2>&1 || { tail -30 "$tmp.log" >&2; die "debootstrap failed (log: $tmp.log)"; }
  rm -f "$tmp.keyring"
  # pg_createcluster ran in the chroot, which shares the host's network: if the host runs its
  # own PostgreSQL, the cluster was given 5433. Inside the container 5432 is free again.
  sed -i -E 's/^port = [0-9]+/port = 5432/' "$tmp"/etc/postgresql/*/main/postgresql.conf
  chroot "$tmp" systemctl enable systemd-networkd.service >/dev/null 2>&1
  # Nothing here waits for the network to be "online"; skipping the wait keeps boots quick.
  chroot "$tmp" systemctl disable systemd-networkd-wait-online.service >/dev/null 2>&1 || true
  # A root with an empty machine-id gets a fresh one at each boot; the journal is volatile.
  : >"$tmp/etc/machine-id"
  apt_clean "$tmp"
  touch "$tmp/.complete"
  mv "$tmp" "$dir"
  rm -f "$tmp.log"
  prune_roots "$dir"
  echo "$dir"
}

# A changed package list or format makes a new root and leaves the old one behind (~600 MB
# each): when a root is built, roots of this cache that no run has started for
# $STALE_ROOT_DAYS days go. A root's last start is the mtime of roots/<name>.last-used (or of the
# root itself, before its first start).
STALE_ROOT_DAYS=14
prune_roots() {
  local keep="$1" old stamp
  for old in "$CACHE"/roots/*-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]; do
    [[ -d "$old" && "$old" != "$keep" ]] || continue
    stamp="$old.last-used"
    [[ -f "$stamp" ]] || stamp="$old"
    if [[ -n "$(find "$stamp" -maxdepth 0 -mtime +"$STALE_ROOT_DAYS")" ]]; then
      say "removing $old (not started for $STALE_ROOT_DAYS days)"
      rm -rf -- "$old" "$old.last-used"
    fi
  done
}

apt_clean() {
  rm -rf "$1"/var/cache/apt/archives/*.deb
}

nspawn_pid() {
  local pid
  [[ -f "$RUN_DIR/nspawn.pid" ]] || return 1
  pid="$(cat "$RUN_DIR/nspawn.pid")"
  # Only ever signal the nspawn this script started.
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == systemd-nspawn ]] || return 1
  echo "$pid"
}

leader_pid() {
  local nspawn child
  nspawn="$(nspawn_pid)" || return 1
  for child in $(pgrep -P "$nspawn"); do
    if [[ "$(cat "/proc/$child/comm" 2>/dev/null)" == systemd ]]; then
      echo "$child"
      return 0
    fi
  done
  return 1
}

cmd_start() {
  local root nspawn leader state
  nspawn_pid >/dev/null && die "$MACHINE is already running (container.sh stop)"
  cmd_stop_quiet
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing (apt-get install systemd-container)"
  root="$(cmd_root)"
  touch "$root.last-used"
  mkdir -p "$RUN_DIR"/{upper,work,merged}
  # Copy-on-write over the cached root: each run starts from the same pristine machine.
  mount -t overlay overlay \
    -o "lowerdir=$root,upperdir=$RUN_DIR/upper,workdir=$RUN_DIR/work" "$RUN_DIR/merged"
  mkdir -p "$RUN_DIR/merged/etc/systemd/network"
  printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\n' \
    "$GUEST_IP" >"$RUN_DIR/merged/etc/systemd/network/10-host0.network"
  echo "$MACHINE" >"$RUN_DIR/merged/etc/hostname"

  # cgroup v2 only inside, as on Debian 12 and Ubuntu 24.04 hosts, even when this host
  # mounts the hybrid layout.
  local -a network=(--network-veth)
  if [[ -n "$BRIDGE" ]]; then
    # Several starts may race to create it; "exists" is fine.
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add name "$BRIDGE" type bridge 2>/dev/null || true
    ip link show "$BRIDGE" >/dev/null 2>&1 || die "cannot create bridge $BRIDGE"
    ip addr replace "$HOST_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    network=(--network-bridge="$BRIDGE")
  fi
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet --boot --directory="$RUN_DIR/merged" --machine="$MACHINE" \
    --register=no --keep-unit "${network[@]}" --console=read-only \
    </dev/null >"$RUN_DIR/console.log" 2>&1 &
  echo $! >"$RUN_DIR/nspawn.pid"

  # Bounded waits: boot normally takes seconds; a minute means something is broken.
  for _ in $(seq 600); do
    leader="$(leader_pid)" && break
    nspawn_pid >/dev/null || { cat "$RUN_DIR/console.log" >&2; die "systemd-nspawn exited"; }
    sleep 0.1
  done
  [[ -n "${leader:-}" ]] || die "no systemd inside $MACHINE after 60 s"
  for _ in $(seq 600); do ip link show "$HOST_IF" >/dev/null 2>&1 && break; sleep 0.1; done
  if [[ -z "$BRIDGE" ]]; then
    ip addr replace "$HOST_IP/24" dev "$HOST_IF"
  fi
  ip link set "$HOST_IF" up
  # systemctl talks to PID 1 over this socket; it appears a moment after PID 1 starts.
  for _ in $(seq 600); do [[ -S "/proc/$leader/root/run/systemd/private" ]] && break; sleep 0.1; done
  state="$(in_container systemctl is-system-running --wait || true)"
  if [[ "$state" != running ]]; then
    in_container systemctl --failed --no-pager >&2 || true
    die "$MACHINE booted into state '$state'"
  fi
  for _ in $(seq 600); do
    in_container ip -4 -o addr show dev host0 | grep -q "$GUEST_IP/" && break
    sleep 0.1
  done
  say "$MACHINE is up: $GUEST_IP (host side $HOST_IP on $HOST_IF)"
}

in_container() {
  local leader
  leader="$(leader_pid)" || die "$MACHINE is not running (container.sh start)"
  nsenter --target "$leader" --all --root --wd \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    TERM=dumb HOME=/root "$@"
}

cmd_copy_in() {
  local leader
  (($# == 2)) || die "usage: container.sh copy-in SRC DST"
  leader="$(leader_pid)" || die "$MACHINE is not running"
  cp -- "$1" "/proc/$leader/root/$2"
}

cmd_stop_quiet() {
  local pid
  if pid="$(nspawn_pid)"; then
    # nspawn turns SIGTERM into an orderly shutdown of the container.
    kill -TERM "$pid"
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$MACHINE did not shut down in 60 s; killing it"
      kill -KILL "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  if mountpoint -q "$RUN_DIR/merged" 2>/dev/null; then
    umount "$RUN_DIR/merged" || umount -l "$RUN_DIR/merged"
  fi
  ip link delete "$HOST_IF" 2>/dev/null || true
  # The bridge goes with the last container on it.
  if [[ -n "$BRIDGE" && -d "/sys/class/net/$BRIDGE/brif" ]] \
    && [[ -z "$(ls -A "/sys/class/net/$BRIDGE/brif")" ]]; then
    ip link delete "$BRIDGE" 2>/dev/null || true
  fi
  rm -rf "$RUN_DIR"
}

case "${1:-}" in
  root) cmd_root ;;
  start) cmd_start ;;
  exec) shift; in_container "$@" ;;
  copy-in) shift; cmd_copy_in "$@" ;;
  ip) echo "$GUEST_IP" ;;
  host-ip) echo "$HOST_IP" ;;
  stop) cmd_stop_quiet ;;
  *) sed -n '2,38s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 64 ;;
esac
