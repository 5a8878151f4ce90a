#!/usr/bin/env bash
# End-to-end check of the test control plane's DRA path, and a worked example
# for test writers: with a kubelet-less Node and a ResourceSlice published by
# hand, the real kube-scheduler allocates a ResourceClaim made from a
# ResourceClaimTemplate and binds the Pod.
#
# Usage: hack/smoke-dra.sh
# Uses the control plane of hack/control-plane.sh (same DRA_SRIOV_STATE),
# starting one first when none runs (and leaving it running). Its objects
# get a random suffix and are deleted again on success.
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${HACK}/lib/common.sh"

eval "$("${HACK}/control-plane.sh" up | tail -n 1)"
KUBECTL="${K8S_BIN_DIR}/kubectl"
kc() { "${KUBECTL}" --request-timeout=20s "$@"; }

SUFFIX="$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
NODE="smoke-node-${SUFFIX}"
NS="smoke-${SUFFIX}"
DRIVER="sriov.smoke.example.com"
CLASS="vf-${SUFFIX}.smoke.example.com"

# No kubelet confirms that a bound Pod stopped, so a plain delete leaves it
# Terminating (and its namespace with it) until the pod GC notices the Node
# is gone: force-delete it.
cleanup() {
  kc -n "${NS}" delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
  kc delete namespace "${NS}" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  kc delete resourceslice "${NODE}" deviceclass "${CLASS}" --ignore-not-found >/dev/null 2>&1 || true
  kc delete node "${NODE}" --ignore-not-found >/dev/null 2>&1 || true
}

# A Node is a plain API object here. The scheduler needs two things from
# its status, which a kubelet would report: allocatable "pods" (else the
# NodeResourcesFit filter says "Too many pods") and, to keep the node
# lifecycle controller from tainting it, a Ready=True condition.
create_node() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: ${NODE}
  labels:
    kubernetes.io/hostname: ${NODE}
EOF
  local now
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  kc patch node "${NODE}" --subresource=status --type=merge -p "{\"status\":{
    \"capacity\":{\"cpu\":\"8\",\"memory\":\"16Gi\",\"pods\":\"110\"},
    \"allocatable\":{\"cpu\":\"8\",\"memory\":\"16Gi\",\"pods\":\"110\"},
    \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",
      \"message\":\"set by hack/smoke-dra.sh\",\"lastHeartbeatTime\":\"${now}\",\"lastTransitionTime\":\"${now}\"}]}}" >/dev/null
}

create_dra_objects() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: ${CLASS}
spec:
  selectors:
    - cel:
        expression: device.driver == "${DRIVER}"
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata:
  name: ${NODE}
spec:
  driver: ${DRIVER}
  nodeName: ${NODE}
  pool:
    name: ${NODE}
    generation: 1
    resourceSliceCount: 1
  devices:
    - name: vf-0000-3b-02-0
      attributes:
        sriovnetwork.openshift.io/vendor: {string: "15b3"}
        sriovnetwork.openshift.io/pciAddress: {string: "0000:3b:02.0"}
    - name: vf-0000-3b-02-1
      attributes:
        sriovnetwork.openshift.io/vendor: {string: "8086"}
        sriovnetwork.openshift.io/pciAddress: {string: "0000:3b:02.1"}
EOF
  # The namespace's default ServiceAccount must exist before a Pod can be
  # created in it (ServiceAccount admission); the controller-manager makes it.
  local i
  for ((i = 0; i < 60; i++)); do
    kc -n "${NS}" get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.5
  done
  kc -n "${NS}" apply -f - >/dev/null <<EOF
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata:
  name: intel-vf
spec:
  spec:
    devices:
      requests:
        - name: vf
          exactly:
            deviceClassName: ${CLASS}
            selectors:
              - cel:
                  expression: device.attributes["sriovnetwork.openshift.io"].vendor == "8086"
---
apiVersion: v1
kind: Pod
metadata:
  name: vf-user
spec:
  containers:
    - name: app
      image: registry.invalid/never-pulled:1
      resources:
        claims:
          - name: vf
  resourceClaims:
    - name: vf
      resourceClaimTemplateName: intel-vf
EOF
}

main() {
  trap 'log "FAILED; objects left for inspection: node ${NODE}, namespace ${NS}"' ERR
  log "creating node ${NODE}, its ResourceSlice, and a Pod using a ResourceClaimTemplate in ${NS}"
  create_node
  create_dra_objects

  local node="" i
  for ((i = 0; i < 60; i++)); do
    node="$(kc -n "${NS}" get pod vf-user -o jsonpath='{.spec.nodeName}')"
    [[ -z "${node}" ]] || break
    sleep 0.5
  done
  if [[ "${node}" != "${NODE}" ]]; then
    kc -n "${NS}" get events >&2 || true
    die "pod vf-user was not bound to ${NODE} (nodeName: '${node}')"
  fi
  local claim device
  claim="$(kc -n "${NS}" get pod vf-user -o jsonpath='{.status.resourceClaimStatuses[0].resourceClaimName}')"
  device="$(kc -n "${NS}" get resourceclaim "${claim}" -o jsonpath='{.status.allocation.devices.results[0].device}')"
  [[ "${device}" == vf-0000-3b-02-1 ]] || die "claim ${claim} allocated '${device}', want vf-0000-3b-02-1 (vendor 8086)"
  log "OK: pod ${NS}/vf-user bound to ${node}; claim ${claim} allocated device ${device}"
  trap - ERR
  cleanup
}

main "$@"
