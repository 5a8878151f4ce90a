#!/usr/bin/env bash
# The end-to-end suite on each pair of Kubernetes and containerd versions the README names
# (make test-matrix; not in .ci/run, which keeps to the pinned pair of hack/lib/common.sh
# and hack/lib/containerd.sh). Each pair's binaries are built from the Go module proxy and
# cached by version like the pinned ones, the first time a pair runs (Kubernetes takes
# about 15 minutes on 2 cores, containerd about 3).
#
# Usage: hack/test-matrix.sh
# Environment:
#   DRA_SRIOV_MATRIX_K8S          Kubernetes versions (default "v1.34.4 v1.37.2": the oldest
#                                 and newest minor releases with resource.k8s.io/v1)
#   DRA_SRIOV_MATRIX_CONTAINERD   containerd versions (default "v2.0.14 v2.4.2")
#   DRA_SRIOV_MATRIX_STATE        where each pair's cluster, log and the table go (default
#                                 /tmp/dra-m: the node plugin's sockets under a cluster's
#                                 state dir must fit in 107 bytes, so each pair's cluster
#                                 is a number, its log and row name the versions)
#
# Each pair runs on a cluster of its own in the state dir, taken down after it, so the
# suite never reuses a cluster of another version. The end-to-end cases name the X710
# profile's netdevs, as the one-node cluster `make demo` leaves does: take that one down
# first (hack/local-cluster.sh down). Writes <state>/matrix.md, a row per pair with the
# suite's counts, and exits 1 when a pair failed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

read -r -a K8S_VERSIONS <<<"${DRA_SRIOV_MATRIX_K8S:-v1.34.4 v1.37.2}"
read -r -a CONTAINERD_VERSIONS <<<"${DRA_SRIOV_MATRIX_CONTAINERD:-v2.0.14 v2.4.2}"
MATRIX_STATE="${DRA_SRIOV_MATRIX_STATE:-/tmp/dra-m}"
ONE_NODE_STATE="${DRA_SRIOV_CLUSTER_STATE:-/tmp/dra-sriov-cluster}"

version_ok() {
  [[ "$1" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$2 version '$1': give one like v1.34.4"
}
for version in "${K8S_VERSIONS[@]}"; do version_ok "${version}" Kubernetes; done
for version in "${CONTAINERD_VERSIONS[@]}"; do version_ok "${version}" containerd; done

if DRA_SRIOV_CLUSTER_STATE="${ONE_NODE_STATE}" bash "${HACK_DIR}/local-cluster.sh" status >/dev/null 2>&1; then
  die "a local cluster runs in ${ONE_NODE_STATE}; its netdev names are the suite's: take it down (DRA_SRIOV_CLUSTER_STATE=${ONE_NODE_STATE} hack/local-cluster.sh down), then run make test-matrix"
fi

# counts LOG prints "passed failed skipped" from vitest's summary line in LOG.
counts() {
  local line
  line="$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^ +Tests +' | tail -n 1 || true)"
  printf '%s %s %s' \
    "$(grep -oE '[0-9]+ passed' <<<"${line}" | grep -oE '[0-9]+' || echo 0)" \
    "$(grep -oE '[0-9]+ failed' <<<"${line}" | grep -oE '[0-9]+' || echo 0)" \
    "$(grep -oE '[0-9]+ skipped' <<<"${line}" | grep -oE '[0-9]+' || echo 0)"
}

mkdir -p "${MATRIX_STATE}"
table="${MATRIX_STATE}/matrix.md"
{
  echo "| Kubernetes | containerd | result | passed | failed | skipped | minutes | log |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"${table}"
failed=0
index=0
for k8s in "${K8S_VERSIONS[@]}"; do
  for containerd in "${CONTAINERD_VERSIONS[@]}"; do
    pair="${k8s}-${containerd}"
    index=$((index + 1))
    state="${MATRIX_STATE}/${index}"
    logfile="${MATRIX_STATE}/${pair}.log"
    log "e2e on Kubernetes ${k8s} and containerd ${containerd} (log: ${logfile})"
    start=${SECONDS}
    rc=0
    K8S_VERSION="${k8s}" CONTAINERD_VERSION="${containerd}" DRA_SRIOV_CLUSTER_STATE="${state}" \
      make -C "${REPO_ROOT}" test-e2e >"${logfile}" 2>&1 || rc=$?
    # The suite takes down the cluster it started; a failed `up` may leave parts behind.
    K8S_VERSION="${k8s}" CONTAINERD_VERSION="${containerd}" DRA_SRIOV_CLUSTER_STATE="${state}" \
      bash "${HACK_DIR}/local-cluster.sh" down --keep-logs >/dev/null 2>&1 || true
    read -r passed failed_tests skipped <<<"$(counts "${logfile}")"
    result=pass
    if ((rc != 0)); then
      result=fail
      failed=1
    fi
    echo "| ${k8s} | ${containerd} | ${result} | ${passed} | ${failed_tests} | ${skipped} | $(((SECONDS - start + 30) / 60)) | ${logfile} |" >>"${table}"
    log "Kubernetes ${k8s} + containerd ${containerd}: ${result} (${passed} passed, ${failed_tests} failed, ${skipped} skipped)"
  done
done
cat "${table}"
exit "${failed}"
