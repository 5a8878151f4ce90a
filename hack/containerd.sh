#!/usr/bin/env bash
# Runs a real containerd 2.x for tests, entirely inside one state dir: CRI on,
# NRI on, CDI on, a primary CNI network (bridge + host-local) of its own, our
# locally built pause and busybox images imported, nothing ever pulled.
# Binaries come from hack/build-containerd.sh, images from hack/images/build.sh
# (both built first when missing); runc and the CNI plugins are Debian's.
#
# Usage: hack/containerd.sh up | down [--keep-logs] | restart [--kill] | env | status
#   up      start (or find running) and print an export line as the last line
#           of stdout (CONTAINERD_ADDRESS, CONTAINER_RUNTIME_ENDPOINT, PATH
#           with ctr/crictl, ...); everything else goes to stderr
#   down    remove every pod (through CRI), stop containerd, kill leftover
#           shims and containers, unmount everything under the state dir,
#           delete the bridge, remove the state dir; --keep-logs (or
#           DRA_SRIOV_KEEP_LOGS=1) keeps its logs/
#   restart [--kill]
#           stop containerd alone (TERM; --kill: KILL, as a crash) and start it
#           again on the same state: pods and containers keep running in their
#           shims and containerd picks them up again; env.json gets the new pid
#   env     print the export line of the running containerd
#   status  exit 0 when it runs and answers, 1 otherwise
#
# State dir: ${DRA_SRIOV_CONTAINERD_STATE:-/tmp/dra-sriov-containerd}, holding
#   env.json          what tests read (fields: see hack/README.md)
#   containerd.sock   gRPC: containerd API and CRI (runtime and image service)
#   nri/nri.sock      NRI: external plugins connect here
#   cdi/              CDI spec dir (the only one containerd reads; DRA_SRIOV_CDI_DIR
#                     puts it elsewhere, e.g. under an emulated host's root)
#   cni/net.d/        the primary network's conflist; cni/ipam/ its leases
#   config.toml       containerd config (version 3)
#   logs/containerd.log
#   root/ state/ tmp/ (containerd's; pod network namespaces are mounted in
#   state/io.containerd.grpc.v1.cri/netns/), runc/ (runc's), s/ (shim sockets)
# Keep its path short: sockets inside it are limited to 107 bytes.
# Several instances can run at once with different state dirs: each gets
# its own bridge (drasriovN) and subnet (10.234.N.0/24).
#
# Environment:
#   DRA_SRIOV_CONTAINERD_STATE          state dir (above)
#   DRA_SRIOV_NRI_REQUEST_TIMEOUT       NRI plugin_request_timeout (default 2s)
#   DRA_SRIOV_NRI_REGISTRATION_TIMEOUT  NRI plugin_registration_timeout (default 5s)
#   DRA_SRIOV_CONTAINERD_LOG_LEVEL      containerd log level (default info)
#   DRA_SRIOV_START_TIMEOUT             seconds to wait for containerd (default 60)
#   DRA_SRIOV_STOP_TIMEOUT              seconds between TERM and KILL on down (default 15)
#   DRA_SRIOV_CNI_BIN_DIR               CNI plugins (default /usr/lib/cni, Debian's)
#   DRA_SRIOV_CDI_DIR                   CDI spec dir (default <state>/cdi)
#   CONTAINERD_VERSION, CRICTL_VERSION, DRA_SRIOV_CACHE: see hack/lib/containerd.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/containerd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/containerd.sh"
# shellcheck source-path=SCRIPTDIR source=lib/process.sh
source "${HACK_DIR}/lib/process.sh"
# shellcheck source-path=SCRIPTDIR source=lib/runtime-host.sh
source "${HACK_DIR}/lib/runtime-host.sh"

STATE="${DRA_SRIOV_CONTAINERD_STATE:-/tmp/dra-sriov-containerd}"
# Absolute, without a trailing slash: matched as "${STATE}/" in command lines
# and mount points.
STATE="$(realpath -m -- "${STATE}")"
LOGS="${STATE}/logs"
SOCKET="${STATE}/containerd.sock"
NRI_SOCKET="${STATE}/nri/nri.sock"
CDI_DIR="${DRA_SRIOV_CDI_DIR:-${STATE}/cdi}"
# Where CRI bind-mounts pods' network namespaces (netns_mounts_under_state_dir below).
NETNS_DIR="${STATE}/state/io.containerd.grpc.v1.cri/netns"
CNI_CONF_DIR="${STATE}/cni/net.d"
CNI_BIN_DIR="${DRA_SRIOV_CNI_BIN_DIR:-/usr/lib/cni}"
RUNC_ROOT="${STATE}/runc"
PIDFILE="${STATE}/containerd.pid"
NAMESPACE=k8s.io
# Where containers of pods naming no cgroup parent go (hack/lib/runtime-host.sh).
CGROUP_TOP="${NAMESPACE}"
NRI_REQUEST_TIMEOUT="${DRA_SRIOV_NRI_REQUEST_TIMEOUT:-2s}"
NRI_REGISTRATION_TIMEOUT="${DRA_SRIOV_NRI_REGISTRATION_TIMEOUT:-5s}"
LOG_LEVEL="${DRA_SRIOV_CONTAINERD_LOG_LEVEL:-info}"
START_TIMEOUT="${DRA_SRIOV_START_TIMEOUT:-60}"
# How often wait_until polls: containerd starts in well under a second.
WAIT_INTERVAL=0.2
STOP_TIMEOUT="${DRA_SRIOV_STOP_TIMEOUT:-15}"
CONTAINERD="${CONTAINERD_BIN_DIR}/containerd"
CTR="${CONTAINERD_BIN_DIR}/ctr"
CRICTL="${CRICTL_BIN_DIR}/crictl"
# The CNI library caches ADD results here (not configurable through
# containerd); `down` removes the entries of our pods.
CNI_CACHE_DIR=/var/lib/cni

# Shim sockets: containerd limits their directory to 42 characters. Inside the
# state dir when it fits, else a short directory named after the state dir.
shim_socket_dir() {
  local dir="${STATE}/s"
  if ((${#dir} > 42)); then
    dir="/tmp/dra-sriov-s-$(printf '%s' "${STATE}" | sha256sum | cut -c1-12)"
  fi
  printf '%s' "${dir}"
}
SHIM_SOCKET_DIR="$(shim_socket_dir)"

### Processes ################################################################

# is_containerd PID: alive, not a zombie, and our containerd (its command line
# names our config file).
is_containerd() {
  process_alive "$1" " --config ${STATE}/config.toml "
}

containerd_pid() {
  local pid
  [[ -s "${PIDFILE}" ]] || return 1
  pid="$(cat "${PIDFILE}")"
  is_containerd "${pid}" || return 1
  printf '%s' "${pid}"
}

# component_alive containerd: what wait_until (hack/lib/process.sh) asks.
component_alive() {
  containerd_pid >/dev/null
}

# containerd_answers: our socket is there and containerd answers on it.
containerd_answers() {
  [[ -S "${SOCKET}" ]] && "${CTR}" --address "${SOCKET}" --timeout 5s version
}

# our_shims prints the PIDs of shims serving our containerd: their command
# line names our socket (-address).
our_shims() {
  local dir pid cmdline
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    cmdline="$({ tr '\0' ' ' <"${dir}/cmdline"; } 2>/dev/null)" || continue
    [[ "${cmdline}" == *containerd-shim*" -address ${SOCKET} "* ]] && echo "${pid}"
  done
  return 0
}


### Config ###################################################################

# restrict_oom_score_adj prints true when this process lacks CAP_SYS_RESOURCE
# (bit 24 of the effective capability set), false otherwise.
restrict_oom_score_adj() {
  local caps
  caps="$(awk '$1 == "CapEff:" { print $2 }' /proc/self/status)"
  if (((16#${caps:-0} >> 24) & 1)); then
    echo false
  else
    log "no CAP_SYS_RESOURCE here: containers keep oom_score_adj >= containerd's (restrict_oom_score_adj)"
    echo true
  fi
}

# A version 3 config (the format every containerd 2.x reads; 2.4 migrates it
# to its version 4 at start and logs a warning saying so). In version 3 the
# ttrpc socket follows the gRPC one (containerd.sock.ttrpc), so every path
# containerd uses lies in the state dir, except /var/lib/cni (see above).
write_config() {
  local runc
  runc="$(command -v runc || true)"
  [[ -x "${runc}" ]] || die "runc is needed: install Debian's runc"
  # containerd 2.0 reads one CNI bin dir (bin_dir); 2.1 and later read a list (bin_dirs) and
  # ignore bin_dir. 2.0 ignores bin_dirs and looks in /opt/cni/bin.
  local cni_bin_dirs="bin_dirs = [\"${CNI_BIN_DIR}\"]"
  [[ "${CONTAINERD_VERSION}" == v2.0.* ]] && cni_bin_dirs="bin_dir = \"${CNI_BIN_DIR}\""
  cat >"${STATE}/config.toml" <<EOF
# Generated by hack/containerd.sh; rewritten at every up.
version = 3
root = "${STATE}/root"
state = "${STATE}/state"
temp = "${STATE}/tmp"
# No imports: nothing from /etc/containerd applies.
imports = []
# Snapshotters needing what this machine lacks; nothing here uses them.
disabled_plugins = [
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "${SOCKET}"

[debug]
  level = "${LOG_LEVEL}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE}/opt"

[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "${STATE}/image-verifier/bin"

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "${SHIM_SOCKET_DIR}"

[plugins."io.containerd.nri.v1.nri"]
  disable = false
  disable_connections = false
  socket_path = "${NRI_SOCKET}"
  plugin_path = "${STATE}/nri/plugins"
  plugin_config_path = "${STATE}/nri/conf.d"
  plugin_registration_timeout = "${NRI_REGISTRATION_TIMEOUT}"
  plugin_request_timeout = "${NRI_REQUEST_TIMEOUT}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # Image names under localhost/ have no registry: a pull fails at once.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${PAUSE_IMAGE}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "${STATE}/certs.d"

[plugins."io.containerd.cri.v1.runtime"]
  cdi_spec_dirs = ["${CDI_DIR}"]
  # Pod network namespaces in <state>/netns, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # CRI gives sandboxes oom_score_adj -998; lowering it needs
  # CAP_SYS_RESOURCE, which some machines (VMs run by a sandbox, rootless)
  # lack: runc then fails with "can't get final child's PID from pipe".
  # Restricted, CRI never goes below containerd's own score.
  restrict_oom_score_adj = $(restrict_oom_score_adj)
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${runc}"
        Root = "${RUNC_ROOT}"
        # cgroupfs: no systemd here; cgroup v1 controllers (hybrid host).
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    ${cni_bin_dirs}
    conf_dir = "${CNI_CONF_DIR}"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}


### Starting and stopping ####################################################

start_containerd() {
  log "starting containerd ${CONTAINERD_VERSION} (log: ${LOGS}/containerd.log)"
  start_detached containerd "${PIDFILE}" "${LOGS}/containerd.log" "${CONTAINERD}" --config "${STATE}/config.toml"
  local deadline=$((SECONDS + START_TIMEOUT))
  wait_until "${SOCKET}" containerd containerd_answers
  # CRI and NRI start with containerd but are separate plugins: fail here,
  # with the log, when either did not come up.
  local plugins bad
  plugins="$(ctr_quiet plugins ls)" || die "ctr plugins ls failed"
  bad="$(awk '($1 ~ /^io\.containerd\.(cri|grpc|nri)\.v1$/) && ($2 == "cri" || $2 == "images" || $2 == "runtime" || $2 == "nri") && $NF != "ok" { print $1 "." $2 " " $NF }' <<<"${plugins}")"
  [[ -z "${bad}" ]] || die "containerd plugins not running: ${bad//$'\n'/, } (see ${LOGS}/containerd.log)"
  until [[ -S "${NRI_SOCKET}" ]]; do
    ((SECONDS < deadline)) || die "containerd runs but ${NRI_SOCKET} did not appear; log: ${LOGS}/containerd.log"
    sleep 0.2
  done
}

# ctr_quiet ARGS...: ctr on our socket and namespace. Its stderr (a cgroup
# v1 deprecation warning on every call on such hosts) shows only on failure.
ctr_quiet() {
  local err status=0
  err="$(mktemp)"
  "${CTR}" --address "${SOCKET}" --namespace "${NAMESPACE}" "$@" 2>"${err}" || status=$?
  ((status == 0)) || cat "${err}" >&2
  rm -f "${err}"
  return "${status}"
}

import_images() {
  "${IMAGES_SRC}/import.sh" "${SOCKET}" "${NAMESPACE}"
}


# kill_leftovers: containers and shims that outlived containerd.
kill_leftovers() {
  local root id ids=()
  if [[ -d "${RUNC_ROOT}" ]] && command -v runc >/dev/null 2>&1; then
    for root in "${RUNC_ROOT}"/*/; do
      [[ -d "${root}" ]] || continue
      mapfile -t ids < <(runc --root "${root}" list -q 2>/dev/null)
      for id in "${ids[@]}"; do
        log "deleting leftover container ${id}"
        runc --root "${root}" delete --force "${id}" >/dev/null 2>&1 || true
      done
    done
  fi
  local shims=()
  mapfile -t shims < <(our_shims)
  terminate "leftover shims" "${shims[@]}"
}

stop_all() {
  local pid
  if pid="$(containerd_pid)"; then
    remove_pods
    terminate containerd "${pid}"
  fi
  kill_leftovers
  unmount_all
  teardown_network
  remove_cgroups
}

### env.json #################################################################

write_env_json() {
  cat >"${STATE}/env.json.tmp" <<EOF
{
$(env_json_common "$(containerd_pid)" "${LOGS}/containerd.log" "${STATE}/config.toml" "${CONTAINERD_VERSION}")
  "containerdSocket": $(json_str "${SOCKET}"),
  "ttrpcSocket": $(json_str "${SOCKET}.ttrpc"),
  "namespace": $(json_str "${NAMESPACE}"),
  "containerdBinDir": $(json_str "${CONTAINERD_BIN_DIR}"),
  "ctr": $(json_str "${CTR}"),
  "containerdVersion": $(json_str "${CONTAINERD_VERSION}")
}
EOF
  mv -f "${STATE}/env.json.tmp" "${STATE}/env.json"
}

print_export() {
  # PATH stays unexpanded: it is expanded where the line is eval'ed.
  # shellcheck disable=SC2016
  printf 'export CONTAINERD_ADDRESS=%s CONTAINERD_NAMESPACE=%s CONTAINER_RUNTIME_ENDPOINT=unix://%s CRI_CONFIG_FILE=%s PATH=%s:%s:"$PATH"\n' \
    "${SOCKET}" "${NAMESPACE}" "${SOCKET}" "${STATE}/crictl.yaml" "${CONTAINERD_BIN_DIR}" "${CRICTL_BIN_DIR}"
}

running() {
  [[ -d "${STATE}" ]] || return 1
  containerd_pid >/dev/null || return 1
  containerd_answers >/dev/null 2>&1
}

### Commands #################################################################

check_host() {
  [[ "$(id -u)" == 0 ]] || die "containerd needs root (mounts, namespaces, cgroups)"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem"
  local p
  for p in bridge host-local loopback; do
    [[ -x "${CNI_BIN_DIR}/${p}" ]] || die "${CNI_BIN_DIR}/${p} is missing: install Debian's containernetworking-plugins"
  done
}

cmd_up() {
  if running; then
    log "containerd already running (state: ${STATE}, pid $(containerd_pid))"
    print_export
    return 0
  fi
  remove_stale_state
  check_host
  "${HACK_DIR}/build-containerd.sh" >/dev/null
  "${IMAGES_SRC}/build.sh" >/dev/null

  local start=${SECONDS}
  mkdir -p "${STATE}" "${LOGS}" "${CDI_DIR}" "${STATE}/nri/plugins" "${STATE}/nri/conf.d" "${RUNC_ROOT}"
  [[ "${SHIM_SOCKET_DIR}" == "${STATE}/"* ]] || mkdir -p "${SHIM_SOCKET_DIR}"
  [[ -e "${CNI_CACHE_DIR}" ]] || touch "${STATE}/cni-cache-created"
  trap_failed_up
  record_cgroups
  setup_network
  write_config
  write_crictl_config
  start_containerd
  import_images
  write_env_json
  UP_DONE=1
  log "containerd up in $((SECONDS - start)) s: ${SOCKET} (NRI ${NRI_SOCKET}, CDI ${CDI_DIR}, pods on ${SUBNET}); info in ${STATE}/env.json"
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
  [[ "${SHIM_SOCKET_DIR}" == "${STATE}/"* ]] || rm -rf -- "${SHIM_SOCKET_DIR}"
  remove_state
  # Nothing stays behind, the lock file neither (we still hold it: a
  # command waiting for it finds the state gone and starts afresh).
  rm -f -- "${STATE}.lock"
}

cmd_restart() {
  local signal=TERM pid
  case "${1:-}" in
    "") ;;
    --kill) signal=KILL ;;
    *) die "unknown argument to restart: $1" ;;
  esac
  [[ -f "${STATE}/config.toml" && -f "${STATE}/env.json" ]] || die "no containerd state in ${STATE} (run: $0 up)"
  load_net || die "no network settings in ${STATE}/net.env"
  if pid="$(containerd_pid)"; then
    log "stopping containerd (pid ${pid}, SIG${signal}); shims and pods stay"
    kill "-${signal}" "${pid}" 2>/dev/null || true
    wait_or_kill containerd "" "${pid}"
  fi
  start_containerd
  write_env_json
  log "containerd restarted: pid $(containerd_pid)"
  print_export
}

cmd_env() {
  running || die "no running containerd in ${STATE} (run: $0 up)"
  print_export
}

cmd_status() {
  if running; then
    log "running: ${SOCKET} (pid $(containerd_pid), state: ${STATE})"
  else
    log "not running (state: ${STATE})"
    return 1
  fi
}


runtime_main "$@"
