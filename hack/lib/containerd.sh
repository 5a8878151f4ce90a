# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared settings for hack/build-containerd.sh, hack/images/build.sh and
# hack/containerd.sh. Source it; it defines variables and functions and runs
# nothing else. It sources hack/lib/common.sh (log, die, CACHE_ROOT, ...).

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Pinned versions, from what the Go module proxy serves:
#   go list -m -versions github.com/containerd/containerd/v2
#     v2.4.2 is the newest 2.x (2.3.0-2.3.3 are to be avoided anyway).
#   sigs.k8s.io/cri-tools: the proxy this project builds from refuses the
#     version list and v1.35.0/v1.37.0 (403); v1.36.0 is served and in the
#     checksum database, and speaks CRI v1 like any recent crictl.
# Overridable for experiments; the cache is keyed by version.
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.36.0}"

CONTAINERD_BIN_DIR="${CACHE_ROOT}/containerd/${CONTAINERD_VERSION}/bin"
CRICTL_BIN_DIR="${CACHE_ROOT}/cri-tools/${CRICTL_VERSION}/bin"

# The binaries from github.com/containerd/containerd/v2, as name:package.
CONTAINERD_COMMANDS=(
  containerd:github.com/containerd/containerd/v2/cmd/containerd
  ctr:github.com/containerd/containerd/v2/cmd/ctr
  containerd-shim-runc-v2:github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
)

# containerd_version_output BINARY prints what BINARY says its version is.
# The shim has -v (a multi-line report); containerd, ctr and crictl --version.
containerd_version_output() {
  local bin="$1"
  case "$(basename "${bin}")" in
    containerd-shim-*) "${bin}" -v 2>&1 ;;
    *) "${bin}" --version 2>&1 ;;
  esac
}

# containerd_binary_ok BINARY VERSION: BINARY exists, runs, and reports VERSION
# as a whole word (so v2.4.2 does not match v2.4.20).
containerd_binary_ok() {
  local bin="$1" want="$2" out
  [[ -x "${bin}" ]] || return 1
  out="$(containerd_version_output "${bin}")" || return 1
  [[ " ${out//$'\n'/ } " == *[[:space:]]"${want}"[[:space:]]* ]]
}

# containerd_all_ok succeeds when every pinned binary is cached.
containerd_all_ok() {
  local entry
  for entry in "${CONTAINERD_COMMANDS[@]}"; do
    containerd_binary_ok "${CONTAINERD_BIN_DIR}/${entry%%:*}" "${CONTAINERD_VERSION}" || return 1
  done
  containerd_binary_ok "${CRICTL_BIN_DIR}/crictl" "${CRICTL_VERSION}"
}

# Images: see hack/images/build.sh. Both are built here from Debian packages
# and our own C source, and imported into containerd at `up`; nothing is
# ever pulled. The names are under localhost/ so that nobody mistakes them
# for the upstream images, and so that a pull by mistake fails at once
# (no registry listens there) instead of reaching out to the internet.
# The tag is not "latest": the kubelet would pull those on every pod start.
PAUSE_IMAGE="localhost/dra-sriov/pause:local"
BUSYBOX_IMAGE="localhost/dra-sriov/busybox:local"
IMAGES_DIR="${CACHE_ROOT}/images"
