#!/usr/bin/env bash
# Runs a real Kubernetes control plane on loopback for tests: etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler, from the binaries
# hack/build-k8s.sh caches (built first when missing). No kubelet, no
# container runtime: Nodes are plain API objects that tests create.
#
# Usage: hack/control-plane.sh up | down [--keep-logs] | env | status | upgrade
#   up      start (or find running) and print `export KUBECONFIG=...` as the
#           last line of stdout; everything else goes to stderr
#   upgrade stop the running kube-apiserver, kube-controller-manager and
#           kube-scheduler and start them again from the binaries of
#           K8S_VERSION (built first when missing), on the same etcd, ports,
#           certificates, kubeconfigs and settings (the environment `up` had:
#           <state>/settings.env): a control plane upgrade (or downgrade)
#   down    stop every process `up` started (TERM, then KILL) and remove the
#           state dir; --keep-logs (or DRA_SRIOV_KEEP_LOGS=1) keeps its logs/
#   env     print the export line of the running control plane
#   status  exit 0 when it runs and is ready, 1 otherwise
#
# State dir: ${DRA_SRIOV_STATE:-/tmp/dra-sriov-control-plane}, holding
#   kubeconfig   admin (system:masters) kubeconfig for tests
#   env.json     {kubeconfig, apiserverURL, etcdEndpoint, pids, logsDir, ...}
#   logs/        one log per component
#   pki/ pids/ etcd/ and per-component kubeconfigs
# Several control planes can run at once with different state dirs: every
# port is picked free at `up` time.
#
# Environment:
#   DRA_SRIOV_STATE             state dir (above)
#   DRA_SRIOV_FEATURE_GATES     extra --feature-gates for all components (default none)
#   DRA_SRIOV_RUNTIME_CONFIG    kube-apiserver --runtime-config
#   DRA_SRIOV_KCM_CONTROLLERS   kube-controller-manager --controllers (default *)
#   DRA_SRIOV_NODE_GRACE_PERIOD node monitor/startup grace periods (default 24h;
#                               Kubernetes' own defaults are 50s/60s)
#   DRA_SRIOV_START_TIMEOUT     seconds to wait for each readiness step (default 120)
#   DRA_SRIOV_STOP_TIMEOUT      seconds between TERM and KILL on down (default 15)
#   DRA_SRIOV_KUBELET_CLIENT    1: ready for real kubelets (hack/local-cluster.sh): the API
#                               server gets a client cert for them (pki/apiserver-kubelet-client,
#                               system:masters), checks their serving certs against pki/ca.crt
#                               and prefers their InternalIP (default 0: none of that)
#   K8S_VERSION, ETCD_VERSION, DRA_SRIOV_CACHE: see hack/lib/common.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/process.sh
source "${HACK_DIR}/lib/process.sh"

STATE="${DRA_SRIOV_STATE:-/tmp/dra-sriov-control-plane}"
# Absolute and without a trailing slash: is_ours matches "${STATE}/" in the
# components' command lines.
STATE="$(realpath -m -- "${STATE}")"
PKI="${STATE}/pki"
PIDS="${STATE}/pids"
LOGS="${STATE}/logs"
KUBECONFIG_PATH="${STATE}/kubeconfig"
KUBECTL="${K8S_BIN_DIR}/kubectl"

# DRA in Kubernetes 1.37: the API (resource.k8s.io/v1) and the scheduler
# plugin are GA and on. The gates this driver cares about are all on by
# default in 1.37, so none is set here:
#   GA, locked on: DRAAdminAccess, DRAPrioritizedList, DRAResourceClaimDeviceStatus, DRAExtendedResource
#   GA:            DRADeviceTaints, DRADeviceTaintRules
#   beta, on:      DRAPartitionableDevices, DRAConsumableCapacity, DRADeviceBindingConditions,
#                  DRASchedulerFilterTimeout, DRAResourceClaimGranularStatusAuthorization
#   off (alpha):   DRAListTypeAttributes, DRAResourcePoolStatus, DRANodeAllocatableResources, ...
# Setting a locked gate to false, or naming a gate the version does not know,
# makes the components refuse to start.
FEATURE_GATES="${DRA_SRIOV_FEATURE_GATES:-}"
# v1 is served by default; the deprecated betas are switched on too so
# clients written against them can be tested (still served in 1.37).
RUNTIME_CONFIG="${DRA_SRIOV_RUNTIME_CONFIG-resource.k8s.io/v1beta1=true,resource.k8s.io/v1beta2=true}"
KCM_CONTROLLERS="${DRA_SRIOV_KCM_CONTROLLERS:-*}"
NODE_GRACE_PERIOD="${DRA_SRIOV_NODE_GRACE_PERIOD:-24h}"
START_TIMEOUT="${DRA_SRIOV_START_TIMEOUT:-120}"
STOP_TIMEOUT="${DRA_SRIOV_STOP_TIMEOUT:-15}"
KUBELET_CLIENT="${DRA_SRIOV_KUBELET_CLIENT:-0}"

# Start order; `down` stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

# SERVICE_CIDR and SERVICE_IP (the `kubernetes` Service's ClusterIP, which the serving
# cert names too) come from hack/lib/common.sh.

### Processes ################################################################

pid_of() {
  local f="${PIDS}/$1.pid"
  [[ -s "${f}" ]] && cat "${f}"
}

# is_ours PID: alive, not a zombie, and started by us for this state dir
# (every component's command line names a file in it).
is_ours() {
  process_alive "$1" "${STATE}/"
}

component_alive() {
  local pid
  pid="$(pid_of "$1")" && is_ours "${pid}"
}

# start_component NAME BINARY ARGS... runs BINARY in its own session, with
# output appended to logs/NAME.log and its PID in pids/NAME.pid.
start_component() {
  local name="$1"
  shift
  log "starting ${name} (log: ${LOGS}/${name}.log)"
  start_detached "${name}" "${PIDS}/${name}.pid" "${LOGS}/${name}.log" "$@"
}

stop_all() {
  local i reversed=()
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    reversed+=("${COMPONENTS[i]}")
  done
  stop_components "${reversed[@]}"
}

# stop_components NAME...: TERM to each that runs, in that order; KILL after STOP_TIMEOUT.
stop_components() {
  local name pid alive=()
  for name in "$@"; do
    if pid="$(pid_of "${name}")" && is_ours "${pid}"; then
      log "stopping ${name} (pid ${pid})"
      kill -TERM "${pid}" 2>/dev/null || true
      alive+=("${pid}")
    fi
  done
  [[ ${#alive[@]} -gt 0 ]] || return 0
  wait_or_kill processes "${STATE}/" "${alive[@]}"
}

### Waiting ##################################################################

tcp_open() {
  # bash's /dev/tcp: connects or fails, no extra tool needed.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# https_healthy PORT: GET /healthz on a component's secure port says "ok".
# Those ports serve self-signed certs and allow /healthz anonymously.
https_healthy() {
  local url="https://127.0.0.1:$1/healthz" body
  if command -v curl >/dev/null 2>&1; then
    body="$(curl -fsSk --max-time 5 "${url}")" || return 1
  else
    body="$(python3 -c '
import ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=5).read().decode())' "${url}")" || return 1
  fi
  [[ "${body}" == ok ]]
}

kubectl_admin() {
  "${KUBECTL}" --kubeconfig "${KUBECONFIG_PATH}" --request-timeout=10s "$@"
}

apiserver_ready() {
  # A short timeout keeps polls (and reactions to INT/TERM) quick.
  [[ "$("${KUBECTL}" --kubeconfig "${KUBECONFIG_PATH}" --request-timeout=3s get --raw /readyz 2>/dev/null)" == ok ]]
}

### Setup ####################################################################

# free_ports N prints N distinct free loopback TCP ports. They are drawn at
# random below the usual ephemeral range (32768+), so outgoing connections
# made meanwhile cannot take them, and each is checked by binding it.
free_ports() {
  local n="$1"
  if command -v python3 >/dev/null 2>&1; then
    python3 - "${n}" <<'EOF'
import random, socket, sys
want, got, held = int(sys.argv[1]), [], []
while len(got) < want:
    port = random.randrange(20000, 32000)
    if port in got:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)  # keep it bound so the next pick cannot repeat it
    got.append(port)
print(" ".join(map(str, got)))
EOF
  else
    local got=() port
    while ((${#got[@]} < n)); do
      port=$((20000 + RANDOM % 12000))
      [[ " ${got[*]} " == *" ${port} "* ]] && continue
      tcp_open "${port}" && continue
      got+=("${port}")
    done
    echo "${got[*]}"
  fi
}

# Certificates ###############################################################
# EC P-256 keys (fast to make) for the CA and TLS certs, RSA for service
# account tokens (RS256, what every token consumer accepts).

new_ec_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# sign_cert NAME SUBJECT EXTENSIONS: key NAME.key and cert NAME.crt signed by
# the CA (${CA:-ca}.crt), with the given X.509v3 extension lines.
sign_cert() {
  local name="$1" subject="$2" extensions="$3" ca="${CA:-ca}"
  new_ec_key "${PKI}/${name}.key"
  printf '[ext]\n%s\n' "${extensions}" >"${PKI}/${name}.ext"
  openssl req -new -key "${PKI}/${name}.key" -subj "${subject}" \
    -config "${PKI}/openssl.cnf" -out "${PKI}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/${ca}.crt" -CAkey "${PKI}/${ca}.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "${PKI}/${name}.ext" -extensions ext -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

make_pki() {
  log "creating certificates in ${PKI}"
  mkdir -p "${PKI}"
  # Our own minimal config, so the machine's openssl.cnf defaults cannot add
  # or clash with extensions.
  cat >"${PKI}/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
  new_ec_key "${PKI}/ca.key"
  openssl req -x509 -new -key "${PKI}/ca.key" -subj "/CN=dra-sriov-test-ca" -days 3650 -sha256 \
    -config "${PKI}/openssl.cnf" -extensions ca -out "${PKI}/ca.crt" 2>/dev/null

  local leaf="basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment"
  sign_cert apiserver "/CN=kube-apiserver" "${leaf}
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:${SERVICE_IP}, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local"
  # system:masters bypasses RBAC: the tests' admin identity.
  sign_cert admin "/O=system:masters/CN=dra-sriov-admin" "${leaf}
extendedKeyUsage = clientAuth"
  # The bootstrap RBAC policy grants these user names what the two need.
  sign_cert kube-controller-manager "/CN=system:kube-controller-manager" "${leaf}
extendedKeyUsage = clientAuth"
  sign_cert kube-scheduler "/CN=system:kube-scheduler" "${leaf}
extendedKeyUsage = clientAuth"
  # For exec, logs and port-forward through kubelets; only when asked for.
  if [[ "${KUBELET_CLIENT}" == 1 ]]; then
    sign_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "${leaf}
extendedKeyUsage = clientAuth"
  fi

  # A separate CA for the front proxy (requestheader) identity. With it the
  # apiserver publishes requestheader settings in kube-system's
  # extension-apiserver-authentication ConfigMap, which the controller-manager
  # and the scheduler read for their delegated authentication (without it
  # they log "missing content for CA bundle" errors), and aggregated API
  # servers can be tested.
  new_ec_key "${PKI}/front-proxy-ca.key"
  openssl req -x509 -new -key "${PKI}/front-proxy-ca.key" -subj "/CN=dra-sriov-front-proxy-ca" -days 3650 -sha256 \
    -config "${PKI}/openssl.cnf" -extensions ca -out "${PKI}/front-proxy-ca.crt" 2>/dev/null
  CA=front-proxy-ca sign_cert front-proxy-client "/CN=front-proxy-client" "${leaf}
extendedKeyUsage = clientAuth"

  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${PKI}/sa.key" 2>/dev/null
  chmod 600 "${PKI}/sa.key"
  openssl pkey -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
}

# write_kubeconfig PATH USER: a kubeconfig with the CA and USER's client
# cert embedded, so it keeps working when copied elsewhere.
write_kubeconfig() {
  local path="$1" user="$2"
  cat >"${path}" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: dra-sriov
    cluster:
      server: ${APISERVER_URL}
      certificate-authority-data: $(base64 -w0 <"${PKI}/ca.crt")
users:
  - name: ${user}
    user:
      client-certificate-data: $(base64 -w0 <"${PKI}/${user}.crt")
      client-key-data: $(base64 -w0 <"${PKI}/${user}.key")
contexts:
  - name: dra-sriov
    context:
      cluster: dra-sriov
      user: ${user}
      namespace: default
current-context: dra-sriov
EOF
  chmod 600 "${path}"
}

feature_gate_args() {
  [[ -z "${FEATURE_GATES}" ]] || echo "--feature-gates=${FEATURE_GATES}"
}

start_etcd() {
  mkdir -p "${STATE}/etcd"
  # --unsafe-no-fsync: a throwaway test store needs no durability, and fsync
  # dominates write latency on slow disks.
  start_component etcd "${ETCD_BIN_DIR}/etcd" \
    --name=dra-sriov \
    --data-dir="${STATE}/etcd" \
    --listen-client-urls="${ETCD_ENDPOINT}" \
    --advertise-client-urls="${ETCD_ENDPOINT}" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="dra-sriov=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster-state=new \
    --unsafe-no-fsync \
    --log-level=warn
  wait_until "etcd on ${ETCD_ENDPOINT}" etcd tcp_open "${ETCD_PORT}"
}

start_apiserver() {
  # shellcheck disable=SC2054 # the commas are inside flag values
  local args=(
    --bind-address=127.0.0.1
    --advertise-address=127.0.0.1
    --secure-port="${APISERVER_PORT}"
    --etcd-servers="${ETCD_ENDPOINT}"
    --cert-dir="${STATE}/kube-apiserver"
    --tls-cert-file="${PKI}/apiserver.crt"
    --tls-private-key-file="${PKI}/apiserver.key"
    --client-ca-file="${PKI}/ca.crt"
    --requestheader-client-ca-file="${PKI}/front-proxy-ca.crt"
    --requestheader-allowed-names=front-proxy-client
    --requestheader-username-headers=X-Remote-User
    --requestheader-group-headers=X-Remote-Group
    --requestheader-extra-headers-prefix=X-Remote-Extra-
    --proxy-client-cert-file="${PKI}/front-proxy-client.crt"
    --proxy-client-key-file="${PKI}/front-proxy-client.key"
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="${PKI}/sa.pub"
    --service-account-signing-key-file="${PKI}/sa.key"
    --service-cluster-ip-range="${SERVICE_CIDR}"
    # The endpoint reconciler publishes the advertise address as the
    # `kubernetes` Service's endpoint and refuses loopback ones. No pod
    # runs here to use that Service, so no reconciler.
    --endpoint-reconciler-type=none
    --authorization-mode=Node,RBAC
    --allow-privileged=true
    --profiling=false
  )
  [[ -z "${RUNTIME_CONFIG}" ]] || args+=(--runtime-config="${RUNTIME_CONFIG}")
  if [[ "${KUBELET_CLIENT}" == 1 ]]; then
    # A node's Hostname address rarely resolves on a test machine; its InternalIP does.
    # shellcheck disable=SC2054 # the commas are inside flag values
    args+=(
      --kubelet-client-certificate="${PKI}/apiserver-kubelet-client.crt"
      --kubelet-client-key="${PKI}/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="${PKI}/ca.crt"
      --kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP
    )
  fi
  mapfile -t -O "${#args[@]}" args < <(feature_gate_args)
  start_component kube-apiserver "${K8S_BIN_DIR}/kube-apiserver" "${args[@]}"
  wait_until "kube-apiserver /readyz on ${APISERVER_URL}" kube-apiserver apiserver_ready
}

start_controller_manager() {
  local kc="${STATE}/kube-controller-manager.kubeconfig" args
  write_kubeconfig "${kc}" kube-controller-manager
  args=(
    --kubeconfig="${kc}"
    --authentication-kubeconfig="${kc}"
    --authorization-kubeconfig="${kc}"
    --bind-address=127.0.0.1
    --secure-port="${KCM_PORT}"
    --cert-dir="${STATE}/kube-controller-manager"
    --leader-elect=false
    --controllers="${KCM_CONTROLLERS}"
    # No kubelet ever heartbeats here. With the default grace periods the
    # node lifecycle controller marks every Node Ready=Unknown 60 s (never
    # reported) or 50 s (reported once) after its last status and taints it
    # node.kubernetes.io/unreachable, which blocks scheduling and later
    # evicts pods. Long grace periods keep test Nodes as the tests set them,
    # while the controller still taints Nodes whose Ready condition a test
    # sets to False (not-ready) or that are cordoned (unschedulable).
    --node-monitor-grace-period="${NODE_GRACE_PERIOD}"
    --node-startup-grace-period="${NODE_GRACE_PERIOD}"
    # Each controller acts as its own service account, as in real clusters,
    # so RBAC mistakes in what we test surface here too.
    --use-service-account-credentials=true
    --service-account-private-key-file="${PKI}/sa.key"
    --root-ca-file="${PKI}/ca.crt"
    --cluster-signing-cert-file="${PKI}/ca.crt"
    --cluster-signing-key-file="${PKI}/ca.key"
    --profiling=false
  )
  mapfile -t -O "${#args[@]}" args < <(feature_gate_args)
  start_component kube-controller-manager "${K8S_BIN_DIR}/kube-controller-manager" "${args[@]}"
}

start_scheduler() {
  local kc="${STATE}/kube-scheduler.kubeconfig" args
  write_kubeconfig "${kc}" kube-scheduler
  args=(
    --kubeconfig="${kc}"
    --authentication-kubeconfig="${kc}"
    --authorization-kubeconfig="${kc}"
    --bind-address=127.0.0.1
    --secure-port="${SCHEDULER_PORT}"
    --cert-dir="${STATE}/kube-scheduler"
    --leader-elect=false
    --profiling=false
  )
  mapfile -t -O "${#args[@]}" args < <(feature_gate_args)
  start_component kube-scheduler "${K8S_BIN_DIR}/kube-scheduler" "${args[@]}"
}

# install_crds applies our CRDs and any the repo ships, and waits until
# each is Established (only then can objects of its kind be created).
install_crds() {
  local dir files=() names
  for dir in "${HACK_DIR}/crds" "${REPO_ROOT}/deployments/crds" "${REPO_ROOT}/deployments/helm/dra-driver-sriov/crds"; do
    [[ -d "${dir}" ]] || continue
    mapfile -t -O "${#files[@]}" files < <(find "${dir}" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)
  done
  [[ ${#files[@]} -gt 0 ]] || return 0
  local args=() f
  for f in "${files[@]}"; do
    args+=(-f "${f}")
    log "installing CRDs from ${f#"${REPO_ROOT}"/}"
  done
  # Only CRDs have an Established condition; anything else applied is not awaited.
  names="$(kubectl_admin apply --server-side --force-conflicts "${args[@]}" -o name |
    grep '^customresourcedefinition' || true)"
  [[ -n "${names}" ]] || return 0
  # shellcheck disable=SC2086 # one object name per word
  kubectl_admin wait --for=condition=Established --timeout="${START_TIMEOUT}s" ${names} >/dev/null
  log "CRDs established: $(paste -sd ' ' <<<"${names}")"
}

write_env_json() {
  local name sep="" pids=""
  for name in "${COMPONENTS[@]}"; do
    pids+="${sep}$(json_str "${name}"): $(pid_of "${name}")"
    sep=", "
  done
  cat >"${STATE}/env.json.tmp" <<EOF
{
  "kubeconfig": $(json_str "${KUBECONFIG_PATH}"),
  "apiserverURL": $(json_str "${APISERVER_URL}"),
  "etcdEndpoint": $(json_str "${ETCD_ENDPOINT}"),
  "pids": {${pids}},
  "logsDir": $(json_str "${LOGS}"),
  "stateDir": $(json_str "${STATE}"),
  "kubectl": $(json_str "${KUBECTL}"),
  "k8sBinDir": $(json_str "${K8S_BIN_DIR}"),
  "etcdBinDir": $(json_str "${ETCD_BIN_DIR}"),
  "kubernetesVersion": $(json_str "${K8S_VERSION}"),
  "etcdVersion": $(json_str "${ETCD_VERSION}"),
  "ports": {"apiserver": ${APISERVER_PORT}, "etcd": ${ETCD_PORT}, "etcdPeer": ${ETCD_PEER_PORT}, "kubeControllerManager": ${KCM_PORT}, "kubeScheduler": ${SCHEDULER_PORT}}
}
EOF
  mv -f "${STATE}/env.json.tmp" "${STATE}/env.json"
}

# Ports and URLs of a plane, saved so that later calls find them again.
save_ports() {
  printf 'APISERVER_PORT=%s\nETCD_PORT=%s\nETCD_PEER_PORT=%s\nKCM_PORT=%s\nSCHEDULER_PORT=%s\n' \
    "${APISERVER_PORT}" "${ETCD_PORT}" "${ETCD_PEER_PORT}" "${KCM_PORT}" "${SCHEDULER_PORT}" >"${STATE}/ports.env"
}

# The settings `up` started the components with (from the environment), so that `upgrade`
# starts them again the same way whatever its own environment says.
SETTINGS=(SERVICE_CIDR KUBELET_CLIENT FEATURE_GATES RUNTIME_CONFIG KCM_CONTROLLERS NODE_GRACE_PERIOD)
save_settings() {
  local name
  for name in "${SETTINGS[@]}"; do
    printf '%s=%q\n' "${name}" "${!name}"
  done >"${STATE}/settings.env"
}

load_settings() {
  [[ -f "${STATE}/settings.env" ]] || die "no ${STATE}/settings.env: this control plane was started by an older hack/control-plane.sh; take it down and up again"
  # shellcheck source=/dev/null
  source "${STATE}/settings.env"
}

load_ports() {
  [[ -f "${STATE}/ports.env" ]] || return 1
  # shellcheck source=/dev/null
  source "${STATE}/ports.env"
  set_urls
}

set_urls() {
  APISERVER_URL="https://127.0.0.1:${APISERVER_PORT}"
  ETCD_ENDPOINT="http://127.0.0.1:${ETCD_PORT}"
}

# running: every component alive and the API server ready.
running() {
  local name
  [[ -d "${STATE}" ]] || return 1
  for name in "${COMPONENTS[@]}"; do
    component_alive "${name}" || return 1
  done
  load_ports && apiserver_ready
}

print_export() {
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
}

### Commands #################################################################

cmd_up() {
  if running; then
    log "control plane already running (state: ${STATE}, API server: ${APISERVER_URL})"
    # CRD files may have been added to the repo since it started.
    install_crds
    print_export
    return 0
  fi
  remove_stale_state

  "${HACK_DIR}/build-k8s.sh" >/dev/null
  command -v openssl >/dev/null 2>&1 || die "openssl is needed for the certificates"

  local start=${SECONDS}
  mkdir -p "${STATE}" "${PIDS}" "${LOGS}"
  trap_failed_up
  read -r APISERVER_PORT ETCD_PORT ETCD_PEER_PORT KCM_PORT SCHEDULER_PORT <<<"$(free_ports 5)"
  save_ports
  save_settings
  set_urls
  log "ports: apiserver ${APISERVER_PORT}, etcd ${ETCD_PORT} (peer ${ETCD_PEER_PORT}), controller-manager ${KCM_PORT}, scheduler ${SCHEDULER_PORT}"

  make_pki
  write_kubeconfig "${KUBECONFIG_PATH}" admin
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  write_env_json

  wait_until "namespace default" kube-apiserver kubectl_admin get namespace default
  wait_until "resource.k8s.io/v1 to be served" kube-apiserver kubectl_admin get --raw /apis/resource.k8s.io/v1
  wait_until "kube-controller-manager /healthz" kube-controller-manager https_healthy "${KCM_PORT}"
  wait_until "kube-scheduler /healthz" kube-scheduler https_healthy "${SCHEDULER_PORT}"
  # Pods can only be created once the service account controller made the
  # namespace's default ServiceAccount (ServiceAccount admission).
  wait_until "serviceaccount default/default" kube-controller-manager kubectl_admin -n default get serviceaccount default
  install_crds

  UP_DONE=1
  log "control plane up in $((SECONDS - start)) s: ${APISERVER_URL} (Kubernetes ${K8S_VERSION}, etcd ${ETCD_VERSION}); info in ${STATE}/env.json"
  print_export
}

# The Kubernetes components on the running plane's etcd, ports and certificates, from
# K8S_BIN_DIR; waits until each is healthy again.
cmd_upgrade() {
  running || die "no running control plane in ${STATE} (run: $0 up)"
  load_settings
  "${HACK_DIR}/build-k8s.sh" >/dev/null
  local start=${SECONDS} from
  from="$(sed -n 's/^ *"kubernetesVersion": "\([^"]*\)",$/\1/p' "${STATE}/env.json")"
  log "control plane: Kubernetes ${from:-unknown} -> ${K8S_VERSION} (etcd and its data stay)"
  stop_components kube-scheduler kube-controller-manager kube-apiserver
  start_apiserver
  start_controller_manager
  start_scheduler
  write_env_json
  wait_until "kube-controller-manager /healthz" kube-controller-manager https_healthy "${KCM_PORT}"
  wait_until "kube-scheduler /healthz" kube-scheduler https_healthy "${SCHEDULER_PORT}"
  log "control plane on Kubernetes ${K8S_VERSION} in $((SECONDS - start)) s"
}

cmd_down() {
  parse_down_args "$@"
  if [[ ! -e "${STATE}" ]]; then
    log "nothing to stop: ${STATE} does not exist"
    return 0
  fi
  stop_all
  remove_state
}

cmd_env() {
  running || die "no running control plane in ${STATE} (run: $0 up)"
  print_export
}

cmd_status() {
  if running; then
    log "running: ${APISERVER_URL} (state: ${STATE})"
  else
    log "not running (state: ${STATE})"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -eq 0 ]] || shift
  case "${cmd}" in
    up | down | env | status | upgrade) ;;
    -h | --help | help)
      print_usage
      return 0
      ;;
    *) die "usage: $0 up | down [--keep-logs] | env | status | upgrade" ;;
  esac
  # One command at a time per state dir; the lock file sits beside it so
  # that `down` can remove the dir while holding the lock.
  mkdir -p "$(dirname "${STATE}")"
  exec 8>"${STATE}.lock"
  flock 8 2>/dev/null || true
  "cmd_${cmd}" "$@"
}

main "$@"
