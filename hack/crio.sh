#!/usr/bin/env bash
# Runs a real CRI-O for tests, the second runtime beside hack/containerd.sh and
# started the same way, entirely inside one state dir: CRI, NRI on (its own
# socket), CDI on, a primary CNI network (bridge + host-local) of its own,
# vfs storage, the cgroupfs cgroup manager, our locally built pause and
# busybox images copied into its storage with skopeo, nothing ever pulled.
# crio and pinns come from hack/build-crio.sh, crictl from
# hack/build-containerd.sh, the images from hack/images/build.sh (each built
# first when missing); runc, conmon, skopeo and the CNI plugins are Debian's.
#
# Usage: hack/crio.sh up | down [--keep-logs] | restart [--kill] | env | status
#   up      start (or find running) and print an export line as the last line
#           of stdout (CONTAINER_RUNTIME_ENDPOINT, CRI_CONFIG_FILE, PATH with
#           crictl); everything else goes to stderr
#   down    remove every pod (through CRI), stop CRI-O, kill leftover conmon
#           and containers, unmount everything under the state dir, delete
#           the bridge, remove the state dir; --keep-logs (or
#           DRA_SRIOV_KEEP_LOGS=1) keeps its logs/
#   restart [--kill]
#           stop CRI-O alone (TERM; --kill: KILL, as a crash) and start it
#           again on the same state (starts it when it is not running):
#           containers keep running under their conmon and CRI-O restores
#           them; env.json gets the new pid
#   env     print the export line of the running CRI-O
#   status  exit 0 when it runs and answers, 1 otherwise
#
# State dir: ${DRA_SRIOV_CRIO_STATE:-/tmp/dra-sriov-crio}, holding
#   env.json          what tests read (the fields of hack/containerd.sh's that
#                     are not containerd's own; hack/README.md)
#   crio.sock         CRI (runtime and image service)
#   nri/nri.sock      NRI: external plugins connect here
#   cdi/              CDI spec dir (the only one CRI-O reads; DRA_SRIOV_CDI_DIR
#                     puts it elsewhere)
#   ns/               pod namespaces pinned by pinns (ns/netns/<uuid>, ...)
#   cni/net.d/        the primary network's conflist; cni/ipam/ its leases
#   crio.conf, conf.d/ (empty: nothing from /etc/crio applies), storage.conf,
#   registries.conf, policy.json
#   logs/crio.log
#   root/ run/ (containers-storage), runc/ (runc's), exits/ attach/
# Keep its path short: sockets inside it are limited to 107 bytes.
# Several instances (and hack/containerd.sh's) can run at once with different
# state dirs: each gets its own bridge (drasriovN) and subnet (10.234.N.0/24).
#
# What differs from hack/containerd.sh, and why:
#   - CRI-O runs no infra container for a pod whose PID namespace is per
#     container (drop_infra_ctr, its default). With a pod-wide PID namespace
#     it starts one with oom_score_adj -998, hard-coded; without
#     CAP_SYS_RESOURCE (this machine's root lacks it) runc fails that sandbox
#     and CRI-O has nothing like containerd's restrict_oom_score_adj.
#   - clean_shutdown_file is off: with it, CRI-O wipes its storage (images
#     included) when it starts after a shutdown that was not clean, and
#     `restart --kill` is exactly that.
#   - Images are copied into containers-storage with skopeo before CRI-O
#     starts (CRI-O has no import call); vfs storage: plain directories, no
#     overlay mounts to clean up, and the two images are small.
#
# Environment:
#   DRA_SRIOV_CRIO_STATE                state dir (above)
#   DRA_SRIOV_NRI_REQUEST_TIMEOUT       NRI plugin request timeout (default 2s)
#   DRA_SRIOV_NRI_REGISTRATION_TIMEOUT  NRI plugin registration timeout (default 5s)
#   DRA_SRIOV_CRIO_LOG_LEVEL            CRI-O log level (default info)
#   DRA_SRIOV_START_TIMEOUT             seconds to wait for CRI-O (default 60)
#   DRA_SRIOV_STOP_TIMEOUT              seconds between TERM and KILL on down (default 15)
#   DRA_SRIOV_CNI_BIN_DIR               CNI plugins (default /usr/lib/cni, Debian's)
#   DRA_SRIOV_CDI_DIR                   CDI spec dir (default <state>/cdi)
#   CRIO_VERSION (hack/build-crio.sh), CRICTL_VERSION, DRA_SRIOV_CACHE
#   (hack/lib/containerd.sh)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/containerd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/containerd.sh"
# shellcheck source-path=SCRIPTDIR source=lib/process.sh
source "${HACK_DIR}/lib/process.sh"
# shellcheck source-path=SCRIPTDIR source=lib/runtime-host.sh
source "${HACK_DIR}/lib/runtime-host.sh"

STATE="${DRA_SRIOV_CRIO_STATE:-/tmp/dra-sriov-crio}"
# Absolute, without a trailing slash: matched as "${STATE}/" in command lines
# and mount points.
STATE="$(realpath -m -- "${STATE}")"
LOGS="${STATE}/logs"
SOCKET="${STATE}/crio.sock"
NRI_SOCKET="${STATE}/nri/nri.sock"
CDI_DIR="${DRA_SRIOV_CDI_DIR:-${STATE}/cdi}"
# Where pinns pins pods' network namespaces (namespaces_dir + /netns).
NETNS_DIR="${STATE}/ns/netns"
CNI_CONF_DIR="${STATE}/cni/net.d"
CNI_BIN_DIR="${DRA_SRIOV_CNI_BIN_DIR:-/usr/lib/cni}"
RUNC_ROOT="${STATE}/runc"
PIDFILE="${STATE}/crio.pid"
# Where containers of pods naming no cgroup parent go (CRI-O's cgroupfs default).
CGROUP_TOP=crio
NRI_REQUEST_TIMEOUT="${DRA_SRIOV_NRI_REQUEST_TIMEOUT:-2s}"
NRI_REGISTRATION_TIMEOUT="${DRA_SRIOV_NRI_REGISTRATION_TIMEOUT:-5s}"
LOG_LEVEL="${DRA_SRIOV_CRIO_LOG_LEVEL:-info}"
START_TIMEOUT="${DRA_SRIOV_START_TIMEOUT:-60}"
# How often wait_until polls: CRI-O starts in a second or two.
WAIT_INTERVAL=0.2
STOP_TIMEOUT="${DRA_SRIOV_STOP_TIMEOUT:-15}"
CRICTL="${CRICTL_BIN_DIR}/crictl"
# The CNI library caches ADD results here (not configurable through CRI-O);
# `down` removes the entries of our pods.
CNI_CACHE_DIR=/var/lib/cni
# containers-storage as CRI-O and skopeo both name it.
STORE="containers-storage:[vfs@${STATE}/root+${STATE}/run]"

### Processes ################################################################

# is_crio PID: alive, not a zombie, and our CRI-O (its command line names our
# config file).
is_crio() {
  process_alive "$1" " --config ${STATE}/crio.conf "
}

crio_pid() {
  local pid
  [[ -s "${PIDFILE}" ]] || return 1
  pid="$(cat "${PIDFILE}")"
  is_crio "${pid}" || return 1
  printf '%s' "${pid}"
}

# component_alive crio: what wait_until (hack/lib/process.sh) asks.
component_alive() {
  crio_pid >/dev/null
}

crictl_here() {
  # Flags, not only the config file: crictl prefers CONTAINER_RUNTIME_ENDPOINT
  # from the environment (which an eval'ed export line of another instance sets).
  "${CRICTL}" --config "${STATE}/crictl.yaml" --runtime-endpoint "unix://${SOCKET}" \
    --image-endpoint "unix://${SOCKET}" "$@"
}

# crio_answers: our socket is there and CRI-O answers CRI on it.
crio_answers() {
  [[ -S "${SOCKET}" ]] && crictl_here --timeout 5s version
}

# our_conmons prints the PIDs of conmon processes of our CRI-O: their command
# line names our state dir.
our_conmons() {
  local dir pid cmdline
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    cmdline="$({ tr '\0' ' ' <"${dir}/cmdline"; } 2>/dev/null)" || continue
    [[ "${cmdline}" == conmon\ * || "${cmdline}" == */conmon\ * ]] || continue
    [[ "${cmdline}" == *" ${STATE}/"* ]] && echo "${pid}"
  done
  return 0
}


### Config ###################################################################

write_config() {
  local runc conmon
  runc="$(command -v runc || true)"
  [[ -x "${runc}" ]] || die "runc is needed: install Debian's runc"
  conmon="$(command -v conmon || true)"
  [[ -x "${conmon}" ]] || die "conmon is needed: install Debian's conmon"
  mkdir -p "${STATE}/conf.d"
  cat >"${STATE}/policy.json" <<EOF
{ "default": [{ "type": "insecureAcceptAnything" }] }
EOF
  cat >"${STATE}/registries.conf" <<EOF
# No registry: every image is copied in at up; a pull fails at once.
unqualified-search-registries = []
EOF
  cat >"${STATE}/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "${STATE}/root"
runroot = "${STATE}/run"
EOF
  cat >"${STATE}/crio.conf" <<EOF
# Generated by hack/crio.sh; rewritten at every up.
[crio]
root = "${STATE}/root"
runroot = "${STATE}/run"
storage_driver = "vfs"
log_dir = "${LOGS}/containers"
version_file = "${STATE}/version"
version_file_persist = "${STATE}/version-persist"
# Off: see the header of hack/crio.sh.
clean_shutdown_file = ""

[crio.api]
listen = "${SOCKET}"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
# cgroupfs: no systemd here; cgroup v1 controllers (hybrid host).
cgroup_manager = "cgroupfs"
pinns_path = "${CRIO_BIN_DIR}/pinns"
namespaces_dir = "${STATE}/ns"
container_exits_dir = "${STATE}/exits"
container_attach_socket_dir = "${STATE}/attach"
cdi_spec_dirs = ["${CDI_DIR}"]
hooks_dir = []
decryption_keys_path = "${STATE}/keys"
apparmor_profile = "unconfined"
log_level = "${LOG_LEVEL}"
log_to_journald = false

[crio.runtime.runtimes.runc]
runtime_path = "${runc}"
runtime_type = "oci"
runtime_root = "${RUNC_ROOT}"
monitor_path = "${conmon}"
monitor_cgroup = "pod"

[crio.image]
pause_image = "${PAUSE_IMAGE}"
pause_command = "/pause"
signature_policy = "${STATE}/policy.json"

[crio.network]
network_dir = "${CNI_CONF_DIR}"
plugin_dirs = ["${CNI_BIN_DIR}"]

[crio.nri]
enable_nri = true
nri_listen = "${NRI_SOCKET}"
nri_plugin_dir = "${STATE}/nri/plugins"
nri_plugin_config_dir = "${STATE}/nri/conf.d"
nri_plugin_registration_timeout = "${NRI_REGISTRATION_TIMEOUT}"
nri_plugin_request_timeout = "${NRI_REQUEST_TIMEOUT}"

[crio.metrics]
enable_metrics = false
EOF
}


### Starting and stopping ####################################################

crio_env() {
  env CONTAINERS_REGISTRIES_CONF="${STATE}/registries.conf" \
    CONTAINERS_STORAGE_CONF="${STATE}/storage.conf" "$@"
}

start_crio() {
  log "starting CRI-O ${CRIO_VERSION} (log: ${LOGS}/crio.log)"
  # env, not crio_env: start_detached runs its command in a new bash.
  start_detached crio "${PIDFILE}" "${LOGS}/crio.log" \
    env CONTAINERS_REGISTRIES_CONF="${STATE}/registries.conf" \
    CONTAINERS_STORAGE_CONF="${STATE}/storage.conf" \
    "${CRIO_BIN_DIR}/crio" --config "${STATE}/crio.conf" --config-dir "${STATE}/conf.d"
  local deadline=$((SECONDS + START_TIMEOUT))
  wait_until "${SOCKET}" crio crio_answers
  until [[ -S "${NRI_SOCKET}" ]]; do
    ((SECONDS < deadline)) || die "CRI-O runs but ${NRI_SOCKET} did not appear; log: ${LOGS}/crio.log"
    sleep 0.2
  done
}

# import_images: the OCI archives of hack/images/build.sh into containers-storage,
# under the names hack/lib/containerd.sh gives them.
import_images() {
  command -v skopeo >/dev/null 2>&1 || die "skopeo is needed to load the images: install Debian's skopeo"
  eval "$("${IMAGES_SRC}/build.sh")"
  local archive name pair
  for pair in "${PAUSE_IMAGE_ARCHIVE}=${PAUSE_IMAGE}" "${BUSYBOX_IMAGE_ARCHIVE}=${BUSYBOX_IMAGE}"; do
    archive="${pair%%=*}"
    name="${pair#*=}"
    crio_env skopeo --insecure-policy copy --quiet "oci-archive:${archive}" "${STORE}${name}" >&2 ||
      die "copying ${archive} into ${STATE}/root as ${name} failed"
    log "copied ${name} into containers-storage"
  done
}


# kill_leftovers: containers and conmon processes that outlived CRI-O.
kill_leftovers() {
  local id ids=()
  if [[ -d "${RUNC_ROOT}" ]] && command -v runc >/dev/null 2>&1; then
    mapfile -t ids < <(runc --root "${RUNC_ROOT}" list -q 2>/dev/null)
    for id in "${ids[@]}"; do
      log "deleting leftover container ${id}"
      runc --root "${RUNC_ROOT}" delete --force "${id}" >/dev/null 2>&1 || true
    done
  fi
  local conmons=()
  mapfile -t conmons < <(our_conmons)
  terminate "leftover conmon" "${conmons[@]}"
}

# Top-level cgroups: for a pod naming no cgroup parent CRI-O makes
# /crio-<sandbox id> and /crio-conmon-<container id> in every hierarchy and
# never removes them (the kubelet would, with the parent it names). `up`
# records those already there; `down` removes the others that are empty
# (rmdir refuses otherwise: another instance's live ones).
record_top_cgroups() {
  local m dir
  for m in $(cgroup_mounts); do
    for dir in "${m}"/crio-*; do
      if [[ -d "${dir}" ]]; then echo "${dir}"; fi
    done
  done >"${STATE}/top-cgroups-before"
}

remove_top_cgroups() {
  local m dir
  [[ -f "${STATE}/top-cgroups-before" ]] || return 0
  for m in $(cgroup_mounts); do
    for dir in "${m}"/crio-*; do
      [[ -d "${dir}" ]] || continue
      grep -qxF "${dir}" "${STATE}/top-cgroups-before" && continue
      find "${dir}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}

stop_all() {
  local pid
  if pid="$(crio_pid)"; then
    remove_pods
    terminate crio "${pid}"
  fi
  kill_leftovers
  unmount_all
  teardown_network
  remove_cgroups
  remove_top_cgroups
}

### env.json #################################################################

write_env_json() {
  cat >"${STATE}/env.json.tmp" <<EOF
{
$(env_json_common "$(crio_pid)" "${LOGS}/crio.log" "${STATE}/crio.conf" "${CRIO_VERSION}")
  "runtime": "crio",
  "crioBinDir": $(json_str "${CRIO_BIN_DIR}"),
  "crioVersion": $(json_str "${CRIO_VERSION}")
}
EOF
  mv -f "${STATE}/env.json.tmp" "${STATE}/env.json"
}

print_export() {
  # PATH stays unexpanded: it is expanded where the line is eval'ed.
  # shellcheck disable=SC2016
  printf 'export CONTAINER_RUNTIME_ENDPOINT=unix://%s CRI_CONFIG_FILE=%s PATH=%s:"$PATH"\n' \
    "${SOCKET}" "${STATE}/crictl.yaml" "${CRICTL_BIN_DIR}"
}

running() {
  [[ -d "${STATE}" ]] || return 1
  crio_pid >/dev/null || return 1
  crio_answers >/dev/null 2>&1
}

### Commands #################################################################

check_host() {
  [[ "$(id -u)" == 0 ]] || die "CRI-O needs root (mounts, namespaces, cgroups)"
  local p
  for p in bridge host-local loopback; do
    [[ -x "${CNI_BIN_DIR}/${p}" ]] || die "${CNI_BIN_DIR}/${p} is missing: install Debian's containernetworking-plugins"
  done
}

# build_crio: hack/build-crio.sh (builds when the cache lacks it) sets CRIO_BIN_DIR.
build_crio() {
  local line
  line="$("${HACK_DIR}/build-crio.sh")" || die "hack/build-crio.sh failed"
  CRIO_BIN_DIR="$(sed -n 's/^CRIO_BIN_DIR=//p' <<<"${line}")"
  [[ -x "${CRIO_BIN_DIR}/crio" ]] || die "hack/build-crio.sh gave no crio (got: ${line})"
  CRIO_VERSION="$(basename "$(dirname "${CRIO_BIN_DIR}")")"
}

cmd_up() {
  if running; then
    log "CRI-O already running (state: ${STATE}, pid $(crio_pid))"
    print_export
    return 0
  fi
  remove_stale_state
  check_host
  build_crio
  "${HACK_DIR}/build-containerd.sh" >/dev/null

  local start=${SECONDS}
  mkdir -p "${STATE}" "${LOGS}" "${CDI_DIR}" "${STATE}/nri/plugins" "${STATE}/nri/conf.d" "${RUNC_ROOT}"
  [[ -e "${CNI_CACHE_DIR}" ]] || touch "${STATE}/cni-cache-created"
  trap_failed_up
  record_cgroups
  record_top_cgroups
  setup_network
  write_config
  write_crictl_config
  import_images
  start_crio
  write_env_json
  UP_DONE=1
  log "CRI-O up in $((SECONDS - start)) s: ${SOCKET} (NRI ${NRI_SOCKET}, CDI ${CDI_DIR}, pods on ${SUBNET}); info in ${STATE}/env.json"
  print_export
}

cmd_down() {
  parse_down_args "$@"
  if [[ ! -e "${STATE}" ]]; then
    log "nothing to stop: ${STATE} does not exist"
    rm -f -- "${STATE}.lock"
    return 0
  fi
  stop_all
  remove_state
  rm -f -- "${STATE}.lock"
}

cmd_restart() {
  local signal=TERM pid
  case "${1:-}" in
    "") ;;
    --kill) signal=KILL ;;
    *) die "unknown argument to restart: $1" ;;
  esac
  [[ -f "${STATE}/crio.conf" && -f "${STATE}/env.json" ]] || die "no CRI-O state in ${STATE} (run: $0 up)"
  load_net || die "no network settings in ${STATE}/net.env"
  build_crio
  if pid="$(crio_pid)"; then
    log "stopping CRI-O (pid ${pid}, SIG${signal}); conmon and pods stay"
    kill "-${signal}" "${pid}" 2>/dev/null || true
    wait_or_kill crio "" "${pid}"
  fi
  start_crio
  write_env_json
  log "CRI-O restarted: pid $(crio_pid)"
  print_export
}

cmd_env() {
  running || die "no running CRI-O in ${STATE} (run: $0 up)"
  print_export
}

cmd_status() {
  if running; then
    log "running: ${SOCKET} (pid $(crio_pid), state: ${STATE})"
  else
    log "not running (state: ${STATE})"
    return 1
  fi
}


runtime_main "$@"
