# shellcheck shell=bash disable=SC2034 # the variables are for the script that sources this
# The driver as users run it, for hack/local-cluster.sh: its image imported into the local
# containerd (never pulled), `helm install` of deployments/helm/dra-driver-sriov with the
# chart's test-cluster values (emulatedHost.root, the local containerd's NRI socket and
# netns directory, a CNI directory of its own), and the node plugin DaemonSet and controller
# Deployment running as pods under the real kubelet.
#
# The local cluster has no kube-proxy. Pods reach the API server through the `kubernetes`
# Service's ClusterIP, so one nftables table of ours (api_service_route) does what
# kube-proxy would do for that single Service: DNAT to the API server on 127.0.0.1, from
# the host network (the node plugin) and from the pod bridge (the controller).
#
# Source it from hack/local-cluster.sh after its settings (STATE, HOST_ROOT, LOGS, ...) and
# load_base; it defines functions and runs nothing.

HELM_RELEASE=dra-driver-sriov
CHART_DIR="${REPO_ROOT}/deployments/helm/dra-driver-sriov"
# The `kubernetes` Service: SERVICE_IP of hack/lib/common.sh (the first address of the
# control plane's service range, and a name in the API server's certificate).
API_SERVICE_PORT=443

helm_admin() {
  "${HELM_BIN}" --kubeconfig "${CP_STATE}/kubeconfig" "$@"
}

# nft_table: the name of our nftables table, unique per state dir.
nft_table() {
  printf 'dra_sriov_%s' "$(printf '%s' "${STATE}" | sha256sum | cut -c1-8)"
}

# api_service_route: the `kubernetes` Service reaches the API server (see the header), from
# every node's pod bridge. route_localnet on the pod bridges alone lets DNAT to 127.0.0.1
# take packets from pods.
api_service_route() {
  local table bridge bridges=() port i rules=""
  table="$(nft_table)"
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    bridges+=("$(json_get "${CTRD_STATE}/env.json" j.bridge)")
  done
  select_node 1
  port="${APISERVER_URL##*:}"
  for bridge in "${bridges[@]}"; do
    rules+="    iifname \"${bridge}\" ip daddr ${SERVICE_IP} tcp dport ${API_SERVICE_PORT} dnat to 127.0.0.1:${port}
"
  done
  command -v nft >/dev/null 2>&1 || die "nft is missing: install Debian's nftables (hack/prereqs.sh does)"
  nft delete table ip "${table}" 2>/dev/null || true
  nft -f - <<EOF
table ip ${table} {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr ${SERVICE_IP} tcp dport ${API_SERVICE_PORT} dnat to 127.0.0.1:${port}
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
${rules}  }
}
EOF
  for bridge in "${bridges[@]}"; do
    sysctl -q -w "net.ipv4.conf.${bridge}.route_localnet=1"
  done
  log "the kubernetes Service (${SERVICE_IP}:${API_SERVICE_PORT}) reaches the API server on 127.0.0.1:${port} (nftables table ${table})"
}

delete_api_service_route() {
  local table
  table="$(nft_table)"
  if command -v nft >/dev/null 2>&1 && nft list table ip "${table}" >/dev/null 2>&1; then
    log "deleting nftables table ${table}"
    nft delete table ip "${table}" || true
  fi
}

# cni_bin_dir: the node's CNI plugin directory, one like a real node's: the emulated-vf
# stand-in for the SR-IOV CNI (hack/build-cni.sh) beside Debian's reference plugins.
# Copies, not links: the node plugin's container sees this directory alone.
make_cni_bin_dir() {
  local built plugin
  built="$("${HACK_DIR}/build-cni.sh" | sed -n 's/^CNI_TEST_BIN_DIR=//p')"
  [[ -d "${built}" ]] || die "hack/build-cni.sh printed no CNI_TEST_BIN_DIR"
  mkdir -p "${NODE_CNI_BIN_DIR}"
  for plugin in "${DRA_SRIOV_CNI_BIN_DIR:-/usr/lib/cni}"/* "${built}"/*; do
    [[ -f "${plugin}" && -x "${plugin}" ]] || continue
    cp -f "${plugin}" "${NODE_CNI_BIN_DIR}/"
  done
}

# import_driver_image: the driver's image (hack/images/build-driver.sh: the bundle, the
# pinned Node.js and Debian's libraries, no Docker) in each node's containerd's CRI
# namespace, where the chart's pullPolicy Never finds it.
import_driver_image() {
  local i
  make -s -C "${REPO_ROOT}" bundle >&2 || die "make bundle failed"
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    DRIVER_IMAGE="$("${HACK_DIR}/images/import.sh" "${CTRD_STATE}/containerd.sock" k8s.io --driver |
      sed -n 's/^DRIVER_IMAGE=//p')" || die "importing the driver image into node ${NODE_NAME}'s containerd failed"
    [[ -n "${DRIVER_IMAGE}" ]] || die "hack/images/import.sh --driver named no image"
  done
  select_node 1
  load_node
}

# per_node PATH: the selected node's PATH with its node directory named as $(NODE_NAME),
# which the kubelet expands in the node plugin's arguments and variables (several nodes).
per_node() {
  local own="${NODE_DIR}/"
  [[ "$1" == "${own}"* ]] || die "internal: $1 is not in ${own}"
  # shellcheck disable=SC2016 # $(NODE_NAME) is the kubelet's to expand
  printf '%s/$(NODE_NAME)/%s' "${NODES_DIR}" "${1#"${own}"}"
}

# helm_values: the chart's values for this cluster, as --set arguments.
helm_values() {
  HELM_VALUES=(
    --set "image.repository=${DRIVER_IMAGE%:*}"
    --set "image.tag=${DRIVER_IMAGE##*:}"
    --set image.pullPolicy=Never
    --set "healthcheck.port=${PLUGIN_HEALTH_PORT}"
    --set logging.format=text
  )
  if ((NODE_COUNT == 1)); then
    HELM_VALUES+=(
      --set "emulatedHost.root=${HOST_ROOT}"
      --set "nri.socketPath=${NRI_SOCKET}"
      --set "nri.netnsDir=${NETNS_DIR}"
      --set "cni.binDir=${NODE_CNI_BIN_DIR}"
      --set "cni.cacheDir=${NODE_CNI_DIR}"
    )
  else
    select_node 1
    load_node
    HELM_VALUES+=(
      --set "emulatedHost.nodesDir=${NODES_DIR}"
      --set "emulatedHost.root=$(per_node "${HOST_ROOT}")"
      --set "nri.socketPath=$(per_node "${NRI_SOCKET}")"
      --set "nri.netnsDir=$(per_node "${NETNS_DIR}")"
      --set "cni.binDir=$(per_node "${NODE_CNI_BIN_DIR}")"
      --set "cni.cacheDir=$(per_node "${NODE_CNI_DIR}")"
    )
  fi
}

helm_install_driver() {
  local start=${SECONDS}
  helm_values
  log "helm install ${HELM_RELEASE} ${CHART_DIR#"${REPO_ROOT}/"} in namespace ${DRIVER_NAMESPACE}"
  helm_admin upgrade --install "${HELM_RELEASE}" "${CHART_DIR}" --namespace "${DRIVER_NAMESPACE}" \
    --create-namespace "${HELM_VALUES[@]}" >"${LOGS}/helm.log" 2>&1 ||
    die "helm install failed: $(tail -n 5 "${LOGS}/helm.log")"
  wait_driver_pods
  log "driver installed by helm and publishing in $((SECONDS - start)) s"
}

# driver_pod COMPONENT: the name of the running pod of node-plugin (the selected node's)
# or controller.
driver_pod() {
  local on_node=""
  [[ "$1" != node-plugin ]] || on_node=",spec.nodeName=${NODE_NAME}"
  kubectl_admin -n "${DRIVER_NAMESPACE}" get pods \
    -l "app.kubernetes.io/instance=${HELM_RELEASE},app.kubernetes.io/component=$1" \
    --field-selector "status.phase=Running${on_node}" -o 'jsonpath={.items[0].metadata.name}' 2>/dev/null
}

pods_ready() {
  local ready want=1 want_ready=""
  [[ "$1" != node-plugin ]] || want="${NODE_COUNT}"
  ready="$(kubectl_admin -n "${DRIVER_NAMESPACE}" get pods \
    -l "app.kubernetes.io/instance=${HELM_RELEASE},app.kubernetes.io/component=$1" \
    -o 'jsonpath={range .items[*]}{.metadata.deletionTimestamp}{"/"}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null)"
  # Exactly one pod (per node), Ready and not being deleted (a rolling update has two for a
  # while).
  for ((; want > 0; want--)); do want_ready+="/True "; done
  [[ "${ready}" == "${want_ready}" ]]
}

# wait_pods_of COMPONENT: waits for it, printing its pod's state and log tail on failure.
wait_pods_of() {
  local component="$1" deadline=$((SECONDS + START_TIMEOUT))
  log "waiting for the ${component} pod to be Ready ..."
  until pods_ready "${component}"; do
    if ((SECONDS >= deadline)); then
      kubectl_admin -n "${DRIVER_NAMESPACE}" get pods -o wide >&2 || true
      kubectl_admin -n "${DRIVER_NAMESPACE}" describe pods \
        -l "app.kubernetes.io/component=${component}" 2>/dev/null | tail -n 30 >&2 || true
      kubectl_admin -n "${DRIVER_NAMESPACE}" logs --tail=30 \
        -l "app.kubernetes.io/component=${component}" >&2 2>/dev/null || true
      die "timed out after ${START_TIMEOUT} s waiting for the ${component} pod"
    fi
    sleep "${WAIT_INTERVAL}"
  done
}

wait_driver_pods() {
  wait_pods_of node-plugin
  local deadline=$((SECONDS + START_TIMEOUT)) i
  for ((i = 1; i <= NODE_COUNT; i++)); do
    select_node "${i}"
    until slices_published; do
      ((SECONDS < deadline)) || die "timed out waiting for the ResourceSlices of node ${NODE_NAME}"
      sleep "${WAIT_INTERVAL}"
    done
  done
  select_node 1
  wait_pods_of controller
}

helm_uninstall_driver() {
  if [[ -x "${HELM_BIN:-}" && -f "${CP_STATE}/kubeconfig" ]] &&
    helm_admin status "${HELM_RELEASE}" --namespace "${DRIVER_NAMESPACE}" >/dev/null 2>&1; then
    log "helm uninstall ${HELM_RELEASE}"
    helm_admin uninstall "${HELM_RELEASE}" --namespace "${DRIVER_NAMESPACE}" --wait --timeout 60s >&2 ||
      log "helm uninstall failed"
  fi
}

### Parts: stop, start and restart the driver's pods ##########################

NODE_PLUGIN_DS="${HELM_RELEASE}-node-plugin"
CONTROLLER_DEPLOYMENT="${HELM_RELEASE}-controller"
# A node label no node has: the DaemonSet's pod leaves the node while it is selected.
STOPPED_LABEL=dra-sriov.test/stopped

kubectl_driver() {
  kubectl_admin -n "${DRIVER_NAMESPACE}" "$@"
}

# wait_no_pods_of COMPONENT: until none of its pods is left.
wait_no_pods_of() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until [[ -z "$(kubectl_driver get pods -l "app.kubernetes.io/component=$1" -o name 2>/dev/null)" ]]; do
    ((SECONDS < deadline)) || die "timed out waiting for the $1 pod to go"
    sleep "${WAIT_INTERVAL}"
  done
}

# delete_driver_pod COMPONENT SIGNAL: TERM deletes the pod as a drain would (its grace
# period); KILL as `kubectl delete pod --force --grace-period=0` does. Waits for the
# replacement.
delete_driver_pod() {
  local component="$1" signal="$2" pod args=(--wait=false)
  pod="$(driver_pod "${component}")"
  [[ -n "${pod}" ]] || die "no running ${component} pod"
  [[ "${signal}" == KILL ]] && args+=(--force --grace-period=0)
  log "deleting pod ${pod} (${args[*]})"
  kubectl_driver delete pod "${pod}" "${args[@]}" >/dev/null 2>&1
  local deadline=$((SECONDS + START_TIMEOUT))
  until [[ -n "$(driver_pod "${component}")" && "$(driver_pod "${component}")" != "${pod}" ]]; do
    ((SECONDS < deadline)) || die "timed out waiting for a pod to replace ${pod}"
    sleep "${WAIT_INTERVAL}"
  done
}

# set_plugin_fault VALUE: DRA_SRIOV_FAULT on the DaemonSet (a rolling update), or removed
# when VALUE is empty; nothing when it is already so.
set_plugin_fault() {
  local want="$1" have
  have="$(kubectl_driver get daemonset "${NODE_PLUGIN_DS}" \
    -o 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="DRA_SRIOV_FAULT")].value}')"
  [[ "${have}" != "${want}" ]] || return 0
  if [[ -n "${want}" ]]; then
    log "kubelet-plugin pods get DRA_SRIOV_FAULT=${want}"
    kubectl_driver set env "daemonset/${NODE_PLUGIN_DS}" "DRA_SRIOV_FAULT=${want}" >/dev/null
  else
    log "kubelet-plugin pods lose DRA_SRIOV_FAULT"
    kubectl_driver set env "daemonset/${NODE_PLUGIN_DS}" DRA_SRIOV_FAULT- >/dev/null
  fi
}

stop_driver_part() {
  case "$1" in
    driver)
      helm_uninstall_driver
      wait_no_pods_of node-plugin
      wait_no_pods_of controller
      ;;
    kubelet-plugin)
      if [[ "$2" == KILL ]]; then
        delete_driver_pod node-plugin KILL
        return
      fi
      kubectl_driver patch daemonset "${NODE_PLUGIN_DS}" --type=merge \
        -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"${STOPPED_LABEL}\":\"true\"}}}}}" >/dev/null
      wait_no_pods_of node-plugin
      ;;
    controller)
      kubectl_driver scale deployment "${CONTROLLER_DEPLOYMENT}" --replicas=0 >/dev/null
      wait_no_pods_of controller
      ;;
  esac
}

start_driver_part() {
  case "$1" in
    driver)
      helm_admin status "${HELM_RELEASE}" --namespace "${DRIVER_NAMESPACE}" >/dev/null 2>&1 ||
        helm_install_driver
      ;;
    kubelet-plugin)
      kubectl_driver patch daemonset "${NODE_PLUGIN_DS}" --type=merge \
        -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"${STOPPED_LABEL}\":null}}}}}" >/dev/null
      set_plugin_fault "${DRA_SRIOV_FAULT:-}"
      wait_pods_of node-plugin
      ;;
    controller)
      kubectl_driver scale deployment "${CONTROLLER_DEPLOYMENT}" --replicas=1 >/dev/null
      wait_pods_of controller
      ;;
  esac
}

# restart_driver_part PART SIGNAL: a new pod in place of the running one. With
# DRA_SRIOV_FAULT set (or removed) for the kubelet-plugin, the DaemonSet's rolling update
# makes it (TERM), or the changed template waits (updateStrategy OnDelete) until the pod
# is force-deleted (KILL): the replacement starts while the old pod is killed in whatever
# it was doing.
restart_driver_part() {
  local part="$1" signal="$2" component=node-plugin
  [[ "${part}" == controller ]] && component=controller
  if [[ "${part}" == kubelet-plugin ]]; then
    local have
    have="$(kubectl_driver get daemonset "${NODE_PLUGIN_DS}" \
      -o 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="DRA_SRIOV_FAULT")].value}')"
    if [[ "${have}" != "${DRA_SRIOV_FAULT:-}" && "${signal}" == TERM ]]; then
      set_plugin_fault "${DRA_SRIOV_FAULT:-}"
      wait_pods_of node-plugin
      return
    fi
    if [[ "${have}" != "${DRA_SRIOV_FAULT:-}" ]]; then
      local strategy
      strategy="$(kubectl_driver get daemonset "${NODE_PLUGIN_DS}" -o 'jsonpath={.spec.updateStrategy}')"
      kubectl_driver patch daemonset "${NODE_PLUGIN_DS}" --type=merge \
        -p '{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}' >/dev/null
      set_plugin_fault "${DRA_SRIOV_FAULT:-}"
      delete_driver_pod node-plugin KILL
      kubectl_driver patch daemonset "${NODE_PLUGIN_DS}" --type=merge \
        -p "{\"spec\":{\"updateStrategy\":${strategy}}}" >/dev/null
      wait_pods_of node-plugin
      return
    fi
  fi
  delete_driver_pod "${component}" "${signal}"
  wait_pods_of "${component}"
}
