#!/usr/bin/env bash
# Checks that this machine can run `make demo` and `make test`, and installs the
# Debian packages they use that are missing; `make demo`, `make test` and .ci/run
# run it first, so that a machine that cannot work fails in seconds, not after a
# long build. It checks:
#   - root (uid 0): mounts, network namespaces, cgroups, apt-get;
#   - Go on PATH or in /usr/local/go/bin, as new as the go.mod of the pinned
#     k8s.io/kubernetes asks (hack/lib/build.sh: find_go, go_new_enough);
#   - free disk for a first build, where the caches and /tmp are;
#   - cgroups: v2 at /sys/fs/cgroup, or v1 with the controllers the kubelet needs;
#   - /dev/kmsg (the kubelet's OOM watcher opens it) and overlayfs (containerd's
#     snapshotter);
#   - npm (the Makefile fetches the pinned Node.js with it);
#   - the Debian packages below, and the commands and files that prove each;
#   - QEMU >= 8 (the igb device of the real-kernel tier), from bookworm-backports.
# Missing packages are installed with apt-get (one `apt-get update` first, only
# when something is missing); everything else is reported with its fix.
#
# Usage: hack/prereqs.sh [--check]
#   --check   install nothing: report what is missing, exit 1 if anything is.
#
# Environment:
#   DRA_SRIOV_PREREQS_EXTRA_PACKAGES  more Debian packages to require (space-separated),
#                                     e.g. a package name that does not exist, to try
#                                     the install path without removing a real package
#
# Prints one line when everything is there (a second run takes well under a
# second), a line per step otherwise, on stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

# The Debian packages make demo and make test use. Each entry is the package,
# then what proves it is usable: commands (looked up on PATH) and files (a
# leading /). Essential packages (coreutils, tar, ...) cannot be missing on
# Debian; they are listed for their commands, which are checked on any machine.
PACKAGES=(
  # TLS to the Go module proxy: go mod download in hack/build-*.sh
  "ca-certificates /etc/ssl/certs/ca-certificates.crt"
  # certificates of the control plane and the kubelet (hack/control-plane.sh, hack/lib/kubelet.sh)
  "openssl openssl"
  # veth pairs, network namespaces and bridges (hack/containerd.sh, hack/lib/vf-switch.sh, the tests);
  # devlink: the driver reads e-switch modes with it (the real-kernel guest runs this machine's)
  "iproute2 ip bridge devlink"
  # unshare and findmnt (the kubelet's mount namespace), flock (build and state locks), setsid
  "util-linux unshare findmnt flock setsid"
  # mount and umount (hack/lib/kubelet.sh, hack/lib/process.sh)
  "mount mount umount"
  # pkill: an interrupted build stops its compilers (hack/lib/build.sh)
  "procps pkill"
  # free-port lookup (hack/control-plane.sh, hack/local-cluster.sh), JSON printing (hack/demo.sh)
  "python3 python3"
  # the pictures of make bench's curves (bench/plot.py, run with /usr/bin/python3)
  "python3-matplotlib /usr/lib/python3/dist-packages/matplotlib/__init__.py"
  # readiness checks of the API server and the kubelet (hack/control-plane.sh, hack/local-cluster.sh)
  "curl curl"
  # the real CNI plugins: bridge, host-local and loopback for containerd's pod network
  # (hack/containerd.sh), host-device (run by hack/cni/emulated-vf), static (the tests, demo/)
  "containernetworking-plugins /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/host-device /usr/lib/cni/static"
  # the OCI runtime under containerd and CRI-O
  "runc runc"
  # CRI-O's container monitor, and skopeo, which copies our images into its storage
  # (hack/crio.sh, make test-crio)
  "conmon conmon"
  "skopeo skopeo"
  # the static pause binary of the test images (hack/images/build.sh)
  "gcc gcc"
  "libc6-dev"
  # readelf: hack/images/build.sh checks that busybox is static
  "binutils readelf"
  # busybox of the test images (hack/images/build.sh)
  "busybox-static /bin/busybox"
  # the nftables table that routes the kubernetes Service to the API server (hack/lib/driver-pods.sh)
  "nftables nft"
  # the real-kernel tier's guest: depmod and modprobe resolve the kernel modules'
  # dependencies, cpio packs the initramfs (hack/real-kernel/build-guest.sh)
  "kmod depmod modprobe"
  "cpio cpio"
  # netdevsim, built for the guest's kernel with the compiler that built the kernel
  # (hack/real-kernel/build-guest.sh; its kbuild tools link libelf1, which iproute2 brings)
  "gcc-12 gcc-12"
  # .ci/run ends with make test
  "make make"
  # the driver image's revision label (hack/images/build-driver.sh, for the local cluster)
  "git git"
  # image layers (hack/images/build.sh)
  "tar tar"
  "gzip gzip"
  # sha256sum, timeout, mktemp, stat, base64, realpath, ... (every script)
  "coreutils sha256sum timeout mktemp stat base64 realpath df"
  "findutils find xargs"
  "grep grep"
  "sed sed"
)
# QEMU for the real-kernel tier (test/real-kernel/): it must emulate the Intel
# 82576 SR-IOV NIC (`-device igb`, QEMU >= 8). Debian 12's own QEMU is 7.2; its
# backports suite, served by the same Debian mirror, has 10.x: the suite is
# added to apt's sources when missing and the package taken from it.
QEMU_PACKAGE="qemu-system-x86"
# Not needed: dpkg-dev (hack/images/build-driver.sh's apt-get download and
# dpkg-deb come with apt and dpkg, always there), file.

# Free disk (GiB) a first build needs, by where it goes. Measured (du -sh,
# amd64, Kubernetes v1.37.2) with everything built: the cache of hack/ 0.9 GiB
# (binaries, wrapper modules, images), Go's module cache 1.9 GiB, Go's build
# cache 5.4 GiB; and while the Kubernetes commands build, go's scratch space
# in TMPDIR holds every package it compiled, 3.8 GiB at the end. Where they
# share a filesystem, it needs their sum, with the state dirs: 15 GiB when
# all are on one, a quarter more than measured. Once everything is built,
# only RUN_TMP_GIB for the state dirs in /tmp.
CACHE_GIB=1
GOMODCACHE_GIB=3
GOCACHE_GIB=6
SCRATCH_GIB=4
RUN_TMP_GIB=1

say() {
  printf 'prereqs: %s\n' "$*" >&2
}

# Everything found wrong, one line each with its fix; printed together.
PROBLEMS=()
problem() {
  PROBLEMS+=("$*")
}

report_and_exit() {
  local p
  for p in "${PROBLEMS[@]}"; do
    say "problem: ${p}"
  done
  say "$1"
  exit 1
}

### Checks that need no package ###############################################

check_root() {
  [[ "${EUID}" == 0 ]] && return 0
  local why="needs root (uid 0, running as uid ${EUID}): the local cluster mounts, makes network namespaces and cgroups, and apt-get installs packages; run it as root (sudo make ...)"
  ${CHECK_ONLY} || {
    say "ERROR: ${why}"
    exit 1
  }
  problem "${why}"
}

# GO: see find_go.
GO=""
find_go_quietly() {
  # find_go dies when there is none; here that is one problem among others.
  if GO="$(find_go "the control plane" 2>/dev/null && printf '%s' "${GO}")" && [[ -n "${GO}" ]]; then
    return 0
  fi
  GO=""
  problem "Go is needed to build Kubernetes, containerd and helm: none on PATH or in /usr/local/go/bin; install Go >= 1.26 from https://go.dev/dl/ into /usr/local/go"
}

# The Go version check reads the go.mod of k8s.io/kubernetes through the Go
# module proxy, which needs ca-certificates: it runs after the packages are in.
# With --check and ca-certificates missing, the proxy cannot be asked: the
# missing package is reported instead.
check_go_version() {
  [[ -n "${GO}" ]] || return 0
  go_new_enough k8s.io/kubernetes "${K8S_VERSION}" && return 0
  [[ " ${MISSING[*]} " == *" ca-certificates "* && "${GO_PROBLEM}" == "cannot read"* ]] ||
    problem "${GO_PROBLEM}"
}

CGROUPS=""
check_cgroups() {
  local fs
  fs="$(stat -f -c %T /sys/fs/cgroup 2>/dev/null || true)"
  if [[ "${fs}" == cgroup2fs ]]; then
    CGROUPS="cgroup v2"
    return 0
  fi
  # cgroup v1 (or hybrid): the kubelet refuses to start unless these v1
  # controllers are mounted (its container manager's system requirements).
  local have want missing=()
  have=" $(awk '$3 == "cgroup" { gsub(",", " ", $4); printf "%s ", $4 }' /proc/mounts) "
  for want in cpu cpuacct cpuset memory; do
    [[ "${have}" == *" ${want} "* ]] || missing+=("${want}")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    CGROUPS="cgroup v1"
    return 0
  fi
  if [[ "${have}" == "  " ]]; then
    problem "no cgroups at /sys/fs/cgroup (the kubelet and runc need them): mount cgroup v2 there (mount -t cgroup2 cgroup2 /sys/fs/cgroup), or boot with systemd"
  else
    problem "cgroup v1 without the ${missing[*]} controller(s) the kubelet needs: mount them (mount -t cgroup -o ${missing[0]} cgroup /sys/fs/cgroup/${missing[0]}), or use cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line)"
  fi
}

check_kmsg() {
  # The kubelet only opens it (for reading) and quits at start-up when it cannot.
  # Only root may read it where kernel.dmesg_restrict=1.
  if [[ -e /dev/kmsg ]] && { [[ "${EUID}" != 0 ]] || { : </dev/kmsg; } 2>/dev/null; }; then
    return 0
  fi
  problem "/dev/kmsg cannot be opened (the kubelet's OOM watcher reads the kernel log from it, and the kubelet does not start without it): in a container, create it: mknod -m 600 /dev/kmsg c 1 11 (needs the device allowed to the container), or ln -sf /dev/null /dev/kmsg (the kubelet then sees no OOM events)"
}

# check_overlay: containerd's overlayfs snapshotter needs overlay in the kernel
# and an upper dir it can mount on: its state lives under /tmp, and overlay on
# overlay (/tmp of a Docker container) is refused.
check_overlay() {
  if ! grep -qw overlay /proc/filesystems; then
    if ! ${CHECK_ONLY} && command -v modprobe >/dev/null 2>&1; then
      modprobe overlay 2>/dev/null || true
    fi
    if ! grep -qw overlay /proc/filesystems; then
      problem "the kernel has no overlay filesystem (containerd's overlayfs snapshotter): modprobe overlay (Debian package kmod); in a container, load it on the host"
      return 0
    fi
  fi
  [[ "${EUID}" == 0 ]] || return 0
  local dir ok=true
  dir="$(mktemp -d /tmp/dra-sriov-prereqs.XXXXXX)"
  mkdir "${dir}/lower" "${dir}/upper" "${dir}/work" "${dir}/merged"
  if mount -t overlay overlay -o "lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work" "${dir}/merged" 2>/dev/null; then
    umount "${dir}/merged"
  else
    ok=false
  fi
  rm -rf -- "${dir}"
  ${ok} || problem "overlayfs cannot be mounted in /tmp ($(stat -f -c %T /tmp) filesystem), where containerd keeps its snapshots: put /tmp on a filesystem overlay can use as its upper dir (in Docker: --tmpfs /tmp or -v /some/dir:/tmp)"
}

check_npm() {
  command -v npm >/dev/null 2>&1 ||
    problem "npm is needed (make runs npm ci, which also fetches the pinned Node.js 24): install Node.js with npm from https://nodejs.org, or apt-get install npm"
}

# existing_parent PATH: PATH, or its nearest ancestor that exists.
existing_parent() {
  local p="$1"
  while [[ ! -e "${p}" ]]; do
    p="$(dirname "${p}")"
  done
  printf '%s\n' "${p}"
}

# builds_needed: succeeds when a build script would build something.
builds_needed() {
  local script pids=() pid needed=1
  for script in build-k8s.sh build-containerd.sh build-helm.sh; do
    bash "${HACK_DIR}/${script}" --check >/dev/null 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "${pid}" || needed=0
  done
  return "${needed}"
}

DISK=""
check_disk() {
  local go_cache go_mod tmp="${TMPDIR:-/tmp}"
  if [[ -n "${GO}" ]]; then
    {
      read -r go_cache
      read -r go_mod
    } < <("${GO}" env GOCACHE GOMODCACHE)
  else
    go_cache="${XDG_CACHE_HOME:-${HOME}/.cache}/go-build"
    go_mod="${HOME}/go/pkg/mod"
  fi
  # what|path|GiB, for a first build.
  local parts=(
    "the cache of hack/|${CACHE_ROOT}|${CACHE_GIB}"
    "Go's module cache|${go_mod}|${GOMODCACHE_GIB}"
    "Go's build cache|${go_cache}|${GOCACHE_GIB}"
    "go's scratch space|${tmp}|${SCRATCH_GIB}"
  )
  local -A need=() avail=() what=()
  local part name path gib line mount_point free_kib
  for part in "${parts[@]}" "the state dirs|/tmp|${RUN_TMP_GIB}"; do
    IFS="|" read -r name path gib <<<"${part}"
    line="$(df -Pk -- "$(existing_parent "${path}")" | awk 'NR == 2 { print $4, $6 }')"
    free_kib="${line%% *}"
    mount_point="${line#* }"
    avail["${mount_point}"]="${free_kib}"
    need["${mount_point}"]=$((${need["${mount_point}"]:-0} + gib))
    what["${mount_point}"]+="${what["${mount_point}"]:+, }${name} ${path} ${gib} GiB"
  done
  DISK=""
  local short=()
  for mount_point in "${!need[@]}"; do
    DISK+="${DISK:+, }$((avail["${mount_point}"] / 1048576)) GiB free on ${mount_point}"
    ((avail["${mount_point}"] / 1048576 >= need["${mount_point}"])) || short+=("${mount_point}")
  done
  [[ ${#short[@]} -gt 0 ]] || return 0
  # Short of what a first build takes: fine when there is nothing left to build.
  if ! builds_needed; then
    for mount_point in "${short[@]}"; do
      local run_need=0
      [[ "$(df -Pk /tmp | awk 'NR == 2 { print $6 }')" != "${mount_point}" ]] || run_need=${RUN_TMP_GIB}
      ((avail["${mount_point}"] / 1048576 >= run_need)) ||
        problem "disk: ${run_need} GiB needed on ${mount_point} for the state dirs in /tmp, $((avail["${mount_point}"] / 1048576)) GiB free"
    done
    return 0
  fi
  for mount_point in "${short[@]}"; do
    problem "disk: a first build needs ${need["${mount_point}"]} GiB free on ${mount_point} (${what["${mount_point}"]}), $((avail["${mount_point}"] / 1048576)) GiB free: free some, or point DRA_SRIOV_CACHE, GOCACHE, GOMODCACHE or TMPDIR at a bigger filesystem"
  done
}

### Packages ##################################################################

# The packages of PACKAGES that are not installed (dpkg-query).
MISSING=()

# package_names: every package of PACKAGES, plus DRA_SRIOV_PREREQS_EXTRA_PACKAGES.
package_names() {
  local entry
  for entry in "${PACKAGES[@]}"; do
    printf '%s\n' "${entry%% *}"
  done
  # shellcheck disable=SC2086 # a space-separated list
  [[ -z "${DRA_SRIOV_PREREQS_EXTRA_PACKAGES:-}" ]] || printf '%s\n' ${DRA_SRIOV_PREREQS_EXTRA_PACKAGES}
}

# missing_packages: the packages dpkg does not list as installed, one a line.
missing_packages() {
  local names
  mapfile -t names < <(package_names)
  # Unknown names make dpkg-query fail; the installed ones are listed anyway.
  dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${names[@]}" 2>/dev/null |
    awk '$1 == "installed" { print $2 }' | sort -u | comm -13 - <(printf '%s\n' "${names[@]}" | sort -u)
}

APT_LOG=""
apt_get() {
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@" >>"${APT_LOG}" 2>&1; then
    tail -n 20 "${APT_LOG}" >&2
    say "ERROR: apt-get $* failed (above: the end of its output)"
    exit 1
  fi
}

install_packages() {
  local missing=("$@")
  APT_LOG="$(mktemp)"
  TMP_PATHS+=("${APT_LOG}")
  say "apt-get update"
  apt_get update -qq
  say "installing Debian packages: ${missing[*]}"
  apt_get install -y -qq "${missing[@]}"
}

# check_proofs: the commands and files each package provides are there (but
# for the packages in MISSING, reported as such).
check_proofs() {
  local entry pkg proofs proof
  for entry in "${PACKAGES[@]}"; do
    read -r pkg proofs <<<"${entry}"
    [[ " ${MISSING[*]} " != *" ${pkg} "* ]] || continue
    for proof in ${proofs}; do
      if [[ "${proof}" == /* ]]; then
        [[ -e "${proof}" ]] && continue
      else
        command -v "${proof}" >/dev/null 2>&1 && continue
      fi
      problem "${proof} (Debian package ${pkg}) is not there$([[ "${proof}" == /* ]] || printf ' on PATH (%s)' "${PATH}")"
    done
  done
}

qemu_has_igb() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 &&
    qemu-system-x86_64 -device help 2>/dev/null | grep -q 'name "igb"'
}

# backports_suite: <codename>-backports of this Debian release.
backports_suite() {
  local codename
  codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
  [[ -n "${codename}" ]] || return 1
  printf '%s-backports\n' "${codename}"
}

# add_backports_source SUITE: a deb822 source for SUITE on the mirror apt uses for
# Debian's main suite.
add_backports_source() {
  local suite="$1" mirror
  mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
    awk -v release="${suite%-backports}" '$2 == release { print $1; exit }')"
  [[ -n "${mirror}" ]] || mirror="http://deb.debian.org/debian/"
  say "adding ${suite} from ${mirror} to apt's sources (for ${QEMU_PACKAGE} >= 8)"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "${mirror}" "${suite}" >/etc/apt/sources.list.d/dra-driver-sriov-backports.sources
}

check_qemu() {
  qemu_has_igb && return 0
  local fix="apt-get install -t bookworm-backports ${QEMU_PACKAGE} (QEMU >= 8 emulates the Intel 82576, -device igb, that the real-kernel tier boots)"
  if ${CHECK_ONLY} || ! command -v apt-get >/dev/null 2>&1; then
    problem "qemu-system-x86_64 with the igb device is not there: ${fix}"
    return 0
  fi
  local suite
  suite="$(backports_suite)" || {
    problem "not a Debian release with a backports suite: ${fix}"
    return 0
  }
  [[ -n "${APT_LOG}" ]] || {
    APT_LOG="$(mktemp)"
    TMP_PATHS+=("${APT_LOG}")
  }
  apt-cache policy 2>/dev/null | grep -q " ${suite}/" || add_backports_source "${suite}"
  say "apt-get update"
  apt_get update -qq
  say "installing ${QEMU_PACKAGE} from ${suite}"
  apt_get install -y -qq --no-install-recommends -t "${suite}" "${QEMU_PACKAGE}"
  qemu_has_igb || problem "${QEMU_PACKAGE} from ${suite} has no igb device: ${fix}"
}

### Main ######################################################################

main() {
  parse_build_args "$@"
  trap cleanup EXIT
  check_root
  find_go_quietly
  check_cgroups
  check_kmsg
  check_overlay
  check_npm
  check_disk

  local have_dpkg=false
  if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    have_dpkg=true
    mapfile -t MISSING < <(missing_packages)
  fi
  if [[ ${#PROBLEMS[@]} -gt 0 ]]; then
    [[ ${#MISSING[@]} -eq 0 ]] || problem "Debian packages: ${MISSING[*]} (apt-get install -y ${MISSING[*]}; hack/prereqs.sh installs them once the rest is fixed)"
    report_and_exit "fix the above, then run it again"
  fi
  if [[ ${#MISSING[@]} -gt 0 ]]; then
    if ${CHECK_ONLY}; then
      problem "Debian packages: ${MISSING[*]} (hack/prereqs.sh installs them: apt-get install -y ${MISSING[*]})"
    else
      install_packages "${MISSING[@]}"
      MISSING=()
    fi
  fi
  ${have_dpkg} || say "no dpkg/apt-get here: checking commands only (install the equivalents of the Debian packages in hack/prereqs.sh)"
  check_proofs
  check_qemu
  check_go_version
  [[ ${#PROBLEMS[@]} -eq 0 ]] || report_and_exit "fix the above, then run it again"
  say "ok: root, Go ${GO_VERSION} (Kubernetes ${K8S_VERSION} needs ${GO_VERSION_WANTED}), ${CGROUPS}, /dev/kmsg, overlayfs, ${#PACKAGES[@]} Debian packages, QEMU with igb, ${DISK}"
}

main "$@"
