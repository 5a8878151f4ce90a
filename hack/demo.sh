#!/usr/bin/env bash
# `make demo`: a real one-node cluster with the driver on an emulated SR-IOV host
# (hack/local-cluster.sh, built first where needed), the single-vf-claim scenario applied,
# and what it did: the pod's interfaces and its claim's status. The cluster stays up.
#
# Usage: hack/demo.sh [SCENARIO]     (default single-vf-claim; see demo/README.md)
# Needs root. Environment: as hack/local-cluster.sh (DRA_SRIOV_CLUSTER_STATE, ...).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SCENARIO="${1:-single-vf-claim}"
DIR="${REPO_ROOT}/demo/${SCENARIO}"
[[ -d "${DIR}" ]] || die "no scenario ${SCENARIO} in demo/ (see demo/README.md)"
[[ "$(id -u)" == 0 ]] || die "the local cluster needs root"

section() {
  printf '\n== %s\n\n' "$*"
}

section "Starting the local cluster (hack/local-cluster.sh up; minutes on a fresh machine, seconds after)"
export_line="$("${HACK_DIR}/local-cluster.sh" up | tail -n 1)"
eval "${export_line}"

section "Applying demo/${SCENARIO}/"
kubectl apply -f "${DIR}/"

# The scenario's namespace and its pods, from its manifests.
namespace="$(kubectl apply --dry-run=client -o jsonpath='{range .items[?(@.kind=="Namespace")]}{.metadata.name}{end}' -f "${DIR}/")"
log "waiting for the pods in ${namespace} to be Ready ..."
if ! kubectl -n "${namespace}" wait --for=condition=Ready pod --all --timeout=120s >&2; then
  kubectl -n "${namespace}" get pods -o wide
  kubectl -n "${namespace}" get events --sort-by=.lastTimestamp | tail -n 20
  die "the pods did not become Ready; logs in ${DRA_SRIOV_CLUSTER_STATE:-/tmp/dra-sriov-cluster}/logs"
fi
kubectl -n "${namespace}" get pods -o wide

for pod in $(kubectl -n "${namespace}" get pods -o name); do
  section "${pod#pod/}: kubectl -n ${namespace} exec ${pod#pod/} -- ip addr"
  kubectl -n "${namespace}" exec "${pod#pod/}" -- ip addr
done

for claim in $(kubectl -n "${namespace}" get resourceclaims -o name); do
  section "${claim#*/}: the claim's status.devices (what the driver did with each VF)"
  kubectl -n "${namespace}" get "${claim}" -o jsonpath='{.status.devices}' |
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=2))'
done

section "The cluster stays up"
cat <<EOF
Explore it (kubectl and crictl from the cache):
  ${export_line}
  kubectl get resourceslices,resourceclaims -A
  kubectl apply -f demo/<scenario>/        # scenarios: demo/README.md
  kubectl delete -f demo/${SCENARIO}/
Logs: ${DRA_SRIOV_CLUSTER_STATE:-/tmp/dra-sriov-cluster}/logs/ (kubelet-plugin.log, kubelet.log, ...)
Tear it all down:
  hack/local-cluster.sh down
EOF
