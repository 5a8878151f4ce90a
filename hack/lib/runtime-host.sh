# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# What hack/containerd.sh and hack/crio.sh both set up on the host for a
# container runtime of their own: its primary pod network (a bridge, a subnet
# and a CNI conflist), the cgroups its containers leave behind, and the
# commands both scripts run the same way (at the end). Source it
# after hack/lib/common.sh; it defines functions and runs nothing else. They
# use what the sourcing script defines: STATE (its state dir), CNI_CONF_DIR
# (where the conflist goes), CNI_CACHE_DIR (where the CNI library caches ADD
# results, /var/lib/cni) and CGROUP_TOP (the cgroup the runtime puts pods
# under when they name no parent: k8s.io for containerd, crio for CRI-O).

### Cgroups ##################################################################

# With the cgroupfs driver and no cgroup_parent in a pod's config, the runtime
# puts containers under /${CGROUP_TOP}/<id> in every hierarchy; runc removes
# <id> but leaves ${CGROUP_TOP}. `down` removes the ${CGROUP_TOP} cgroups that
# did not exist at `up` when they are empty (rmdir refuses otherwise, so a
# second instance still using them keeps them).

cgroup_mounts() {
  # The filesystem type follows the "-" that ends the optional fields.
  awk '{ for (i = 7; i < NF; i++) if ($i == "-") break; t = $(i + 1) }
    t == "cgroup" || t == "cgroup2" { print $5 }' /proc/self/mountinfo
}

record_cgroups() {
  local m
  for m in $(cgroup_mounts); do
    if [[ -d "${m}/${CGROUP_TOP}" ]]; then echo "${m}/${CGROUP_TOP}"; fi
  done >"${STATE}/cgroups-before"
}

remove_cgroups() {
  local m dir
  [[ -f "${STATE}/cgroups-before" ]] || return 0
  for m in $(cgroup_mounts); do
    dir="${m}/${CGROUP_TOP}"
    [[ -d "${dir}" ]] || continue
    grep -qxF "${dir}" "${STATE}/cgroups-before" && continue
    find "${dir}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

### Network ##################################################################

# The primary network: bridge drasriovN with 10.234.N.1/24, N picked free
# among running instances (under a machine-wide lock on /run) and saved in
# net.env. The bridge and its address are made here, not by the bridge
# plugin: the address is what marks the subnet as taken, and the plugin runs
# with isGateway=false so it changes no host sysctl (ip_forward stays as is).

load_net() {
  [[ -f "${STATE}/net.env" ]] || return 1
  # shellcheck source=/dev/null
  source "${STATE}/net.env"
  [[ -n "${NET_INDEX:-}" ]]
}

net_taken() {
  local n="$1"
  ip link show "drasriov${n}" >/dev/null 2>&1 && return 0
  # Any address or route in 10.234.n.0/24 already on the machine.
  local routes addrs
  routes="$(ip -4 route show to match "10.234.${n}.1" 2>/dev/null)"
  addrs="$(ip -4 addr show to "10.234.${n}.0/24" 2>/dev/null)"
  [[ -n "${addrs}" || "${routes}" == *10.234.* ]]
}

setup_network() {
  command -v ip >/dev/null 2>&1 || die "ip (iproute2) is needed for the pod network"
  local start n i
  exec 7</run
  flock 7
  start=$((16#$(printf '%s' "${STATE}" | sha256sum | cut -c1-4) % 250))
  for ((i = 0; i < 250; i++)); do
    n=$(((start + i) % 250 + 1))
    net_taken "${n}" || break
  done
  ((i < 250)) || die "no free subnet 10.234.N.0/24 (N = 1..250) for the pod network"
  NET_INDEX="${n}"
  BRIDGE="drasriov${n}"
  SUBNET="10.234.${n}.0/24"
  GATEWAY="10.234.${n}.1"
  CNI_NETWORK="dra-sriov-${n}"
  printf 'NET_INDEX=%s\nBRIDGE=%s\nSUBNET=%s\nGATEWAY=%s\nCNI_NETWORK=%s\n' \
    "${NET_INDEX}" "${BRIDGE}" "${SUBNET}" "${GATEWAY}" "${CNI_NETWORK}" >"${STATE}/net.env"
  ip link add name "${BRIDGE}" type bridge
  ip addr add "${GATEWAY}/24" dev "${BRIDGE}"
  ip link set "${BRIDGE}" up
  exec 7<&-
  log "pod network ${CNI_NETWORK}: bridge ${BRIDGE}, ${SUBNET}, gateway ${GATEWAY}"

  mkdir -p "${CNI_CONF_DIR}" "${STATE}/cni/ipam"
  cat >"${CNI_CONF_DIR}/10-${CNI_NETWORK}.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "${CNI_NETWORK}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "${STATE}/cni/ipam",
        "ranges": [[{ "subnet": "${SUBNET}", "gateway": "${GATEWAY}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF
}

teardown_network() {
  load_net || return 0
  if ip link show "${BRIDGE}" >/dev/null 2>&1; then
    log "deleting bridge ${BRIDGE}"
    ip link delete "${BRIDGE}" type bridge || true
  fi
  # Host-side veths of pods whose CNI DEL never ran went with their netns;
  # their cached ADD results stay: ours name our network, or (loopback) a
  # network namespace in our state dir.
  local f
  for f in "${CNI_CACHE_DIR}/results/"*; do
    [[ -f "${f}" ]] || continue
    if [[ "$(basename "${f}")" == "${CNI_NETWORK}-"* ]] || grep -qF "\"netns\":\"${STATE}/" "${f}"; then
      rm -f -- "${f}"
    fi
  done
  if [[ -f "${STATE}/cni-cache-created" ]]; then
    rmdir "${CNI_CACHE_DIR}/results" "${CNI_CACHE_DIR}" 2>/dev/null || true
  fi
}

### Commands shared by both scripts ##########################################

# They use what the sourcing script defines besides the above: SOCKET (its CRI
# socket), CRICTL, STOP_TIMEOUT and its cmd_* functions.

# terminate DESC PID...: TERM, then KILL to those still alive (zombies count
# as gone) after STOP_TIMEOUT.
terminate() {
  local desc="$1"
  shift
  [[ $# -gt 0 ]] || return 0
  log "stopping ${desc} (pid $*)"
  kill -TERM "$@" 2>/dev/null || true
  wait_or_kill "${desc}" "" "$@"
}

# crictl.yaml: crictl --config <state>/crictl.yaml (or CRI_CONFIG_FILE, as
# the export line sets it) talks to this runtime.
write_crictl_config() {
  cat >"${STATE}/crictl.yaml" <<EOF
runtime-endpoint: unix://${SOCKET}
image-endpoint: unix://${SOCKET}
timeout: 30
pull-image-on-create: false
EOF
}

# remove_pods: every pod sandbox through CRI (stops containers, runs CNI DEL,
# unmounts their rootfs and shm, removes the netns), as the kubelet would.
remove_pods() {
  [[ -x "${CRICTL}" ]] || return 0
  local out
  [[ -f "${STATE}/crictl.yaml" ]] || write_crictl_config
  # Flags, not only the config file: crictl prefers CONTAINER_RUNTIME_ENDPOINT
  # from the environment (which an eval'ed export line of another instance sets).
  out="$(timeout 60 "${CRICTL}" --config "${STATE}/crictl.yaml" --runtime-endpoint "unix://${SOCKET}" \
    --image-endpoint "unix://${SOCKET}" rmp --all --force 2>&1)" ||
    log "removing pods through CRI failed: ${out}"
  [[ -z "${out}" ]] || log "${out//$'\n'/; }"
}

# env_json_common PID LOG CONFIG VERSION: the env.json fields both scripts write (those
# test/support/cri/runtime.ts reads), each line ending in a comma. Uses NRI_*,
# CDI_DIR, NETNS_DIR, CNI_*, BRIDGE, SUBNET, GATEWAY and RUNC_ROOT too.
env_json_common() {
  cat <<EOF
  "stateDir": $(json_str "${STATE}"),
  "pid": $1,
  "criSocket": $(json_str "${SOCKET}"),
  "criEndpoint": $(json_str "unix://${SOCKET}"),
  "nriSocket": $(json_str "${NRI_SOCKET}"),
  "nriPluginDir": $(json_str "${STATE}/nri/plugins"),
  "nriPluginConfigDir": $(json_str "${STATE}/nri/conf.d"),
  "nriPluginRequestTimeout": $(json_str "${NRI_REQUEST_TIMEOUT}"),
  "nriPluginRegistrationTimeout": $(json_str "${NRI_REGISTRATION_TIMEOUT}"),
  "cdiDirs": [$(json_str "${CDI_DIR}")],
  "netnsDir": $(json_str "${NETNS_DIR}"),
  "cniConfDir": $(json_str "${CNI_CONF_DIR}"),
  "cniBinDir": $(json_str "${CNI_BIN_DIR}"),
  "cniNetwork": $(json_str "${CNI_NETWORK}"),
  "bridge": $(json_str "${BRIDGE}"),
  "subnet": $(json_str "${SUBNET}"),
  "gateway": $(json_str "${GATEWAY}"),
  "images": {"pause": $(json_str "${PAUSE_IMAGE}"), "busybox": $(json_str "${BUSYBOX_IMAGE}")},
  "runcRoot": $(json_str "${RUNC_ROOT}"),
  "logFile": $(json_str "$2"),
  "configFile": $(json_str "$3"),
  "crictl": $(json_str "${CRICTL}"),
  "version": $(json_str "$4"),
EOF
}

# runtime_main COMMAND ARGS...: up | down | restart | env | status, each the
# sourcing script's cmd_<command>.
runtime_main() {
  local cmd="${1:-}"
  [[ $# -eq 0 ]] || shift
  case "${cmd}" in
    up | down | restart | env | status) ;;
    -h | --help | help)
      print_usage
      return 0
      ;;
    *) die "usage: $0 up | down [--keep-logs] | restart [--kill] | env | status" ;;
  esac
  IMAGES_SRC="${HACK_DIR}/images"
  # up, down and restart one at a time per state dir (env and status only read). The
  # lock file sits beside the state dir so that `down` can remove the dir
  # while holding the lock; `down` removes the lock file too, so whoever
  # waited for it checks that the file it locked is still the one in place.
  if [[ "${cmd}" == up || "${cmd}" == down || "${cmd}" == restart ]]; then
    mkdir -p "$(dirname "${STATE}")"
    while :; do
      exec 8>"${STATE}.lock"
      flock 8
      [[ "$(stat -L -c %i /proc/self/fd/8)" != "$(stat -c %i "${STATE}.lock" 2>/dev/null)" ]] || break
    done
  fi
  "cmd_${cmd}" "$@"
}
