# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared settings for the scripts of hack/ (pinned versions, cache paths, log,
# die, ...). Source it; it defines variables and functions and runs nothing else.

# Pinned versions. The newest served patch releases when they were chosen:
#   go list -m -versions k8s.io/kubernetes
#   go list -m -versions go.etcd.io/etcd/server/v3
# Overridable for experiments; the cache is keyed by version, so switching
# back and forth never rebuilds what is already there.
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "${HACK_DIR}/.." && pwd)"

# Everything built or downloaded lives outside the repo.
CACHE_ROOT="${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/dra-driver-sriov}"
K8S_BIN_DIR="${CACHE_ROOT}/k8s/${K8S_VERSION}/bin"
ETCD_BIN_DIR="${CACHE_ROOT}/etcd/${ETCD_VERSION}/bin"

# The Service network of a local control plane, a /24 of 10/8 (DRA_SRIOV_SERVICE_CIDR); its
# first address is the `kubernetes` Service's ClusterIP, which the host routes to that
# cluster's API server (hack/lib/driver-pods.sh). Two clusters on one machine (the one
# `make demo` leaves and the multi-node suite's) need two networks.
SERVICE_CIDR="${DRA_SRIOV_SERVICE_CIDR:-10.0.0.0/24}"
if [[ ! "${SERVICE_CIDR}" =~ ^10\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] ||
  ((BASH_REMATCH[1] > 255 || BASH_REMATCH[2] > 255)); then
  printf 'DRA_SRIOV_SERVICE_CIDR=%s: give a /24 of 10.0.0.0/8, such as 10.0.1.0/24\n' "${SERVICE_CIDR}" >&2
  exit 1
fi
SERVICE_IP="10.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.1"

# Binaries built from k8s.io/kubernetes, as name:package pairs.
K8S_COMMANDS=(
  kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver
  kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager
  kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler
  kubelet:k8s.io/kubernetes/cmd/kubelet
  kubectl:k8s.io/kubernetes/cmd/kubectl
)

# log MESSAGE... prints a timestamped progress line on stderr, so stdout stays
# free for output that callers parse (the export line, paths).
log() {
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

# print_usage prints the running script's usage: its header comment, from the
# second line up to `set -euo pipefail`, without the comment marks.
print_usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

# json_str STRING prints STRING as a JSON string (our inputs have no control
# characters).
json_str() {
  local s="${1//\\/\\\\}"
  printf '"%s"' "${s//\"/\\\"}"
}

# version_output BINARY prints what the binary reports as its version.
# kubectl has no --version flag; everything else does.
version_output() {
  local bin="$1"
  case "$(basename "${bin}")" in
    kubectl) "${bin}" version --client 2>&1 ;;
    *) "${bin}" --version 2>&1 ;;
  esac
}

# binary_ok BINARY VERSION succeeds when BINARY exists, runs, and reports
# VERSION (with or without the leading "v": etcd prints "3.6.x").
binary_ok() {
  local bin="$1" want="${2#v}" out
  [[ -x "${bin}" ]] || return 1
  out="$(version_output "${bin}")" || return 1
  [[ "${out}" == *"${want}"* ]]
}

# all_binaries_ok succeeds when every binary of the pinned versions is cached.
all_binaries_ok() {
  local entry
  binary_ok "${ETCD_BIN_DIR}/etcd" "${ETCD_VERSION}" || return 1
  for entry in "${K8S_COMMANDS[@]}"; do
    binary_ok "${K8S_BIN_DIR}/${entry%%:*}" "${K8S_VERSION}" || return 1
  done
}
