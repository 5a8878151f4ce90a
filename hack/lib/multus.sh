# shellcheck shell=bash
# Thin Multus (hack/build-multus.sh, v4.2.2) as each node's CNI, as upstream's
# multus-integration demos run it, for `hack/local-cluster.sh multus install|remove`.
# Sourced by hack/local-cluster.sh (select_node, load_base, json_get, CRICTL, log, die).
#
# install, per node:
#   <node>/multus/multus          the thin plugin, copied from the cache
#   <cni-bin>/multus              a wrapper containerd runs as the CNI type "multus": Multus
#                                 reads the kubelet's PodResources socket only at
#                                 /var/lib/kubelet/pod-resources/kubelet.sock, and this
#                                 node's kubelet has its --root-dir in the state dir, so the
#                                 wrapper runs Multus in a mount namespace of its own
#                                 (unshare -m) with that root dir bound on /var/lib/kubelet,
#                                 and the emulated host's /var/run/k8s.cni.cncf.io (device
#                                 information, driver.deviceInfo) on that path
#   <containerd>/cni/net.d/00-multus.conflist
#                                 Multus first in containerd's CNI configuration directory
#                                 (containerd takes the first; it reloads on change), with
#                                 the cluster network's conflist as its one delegate (the
#                                 pod's eth0), binDir the node's cni-bin, cniDir (its cache)
#                                 <node>/cni/multus, the admin kubeconfig (Multus reads the
#                                 pod and its NetworkAttachmentDefinitions and writes the
#                                 k8s.v1.cni.cncf.io/network-status annotation), its log in
#                                 the node's logs dir as multus.log
# /var/lib/kubelet and /var/run/k8s.cni.cncf.io are created (empty) when the machine has
# none, as mount points, and removed again by remove (and down) when install created them.
# remove undoes install; pods that Multus attached should be deleted first (their CNI DEL
# goes through the configuration of the moment).

MULTUS_CONFLIST=00-multus.conflist
# The machine's paths Multus reads, each bound to the node's own in Multus's namespace.
MULTUS_KUBELET_DIR=/var/lib/kubelet
MULTUS_DEVINFO_DIR=/var/run/k8s.cni.cncf.io
MULTUS_MOUNT_POINTS_CREATED=multus-mount-points-created

cmd_multus() {
  local action="${1:-}"
  case "${action}" in
    install | remove) ;;
    *) die "usage: $0 multus install|remove" ;;
  esac
  [[ -f "${STATE}/env.json" ]] || die "no cluster in ${STATE} (run: $0 up)"
  load_base
  local i
  if [[ "${action}" == install ]]; then
    local bin
    bin="$("${HACK_DIR}/build-multus.sh" | sed -n 's/^MULTUS_BIN_DIR=//p')/multus"
    [[ -x "${bin}" ]] || die "hack/build-multus.sh built no multus"
    local point
    for point in "${MULTUS_KUBELET_DIR}" "${MULTUS_DEVINFO_DIR}"; do
      [[ -d "${point}" ]] && continue
      mkdir -p "${point}"
      echo "${point}" >>"${STATE}/${MULTUS_MOUNT_POINTS_CREATED}"
    done
    for ((i = 1; i <= NODE_COUNT; i++)); do
      select_node "${i}"
      load_node
      install_multus_on_node "${bin}"
    done
  else
    for ((i = 1; i <= NODE_COUNT; i++)); do
      select_node "${i}"
      load_node
      remove_multus_from_node
    done
    remove_multus_mount_point
  fi
  select_node 1
  load_node
}

# install_multus_on_node BIN: the selected node's wrapper, binary and configuration.
install_multus_on_node() {
  local bin="$1" conf_dir network_conf own="${NODE_DIR}/multus" unshare mount
  # containerd's environment need not have a PATH that finds them.
  unshare="$(command -v unshare)" || die "unshare (util-linux) is missing"
  mount="$(command -v mount)" || die "mount (util-linux) is missing"
  conf_dir="$(json_get "${CTRD_STATE}/env.json" j.cniConfDir)"
  network_conf="${conf_dir}/10-$(json_get "${CTRD_STATE}/env.json" j.cniNetwork).conflist"
  [[ -f "${network_conf}" ]] || die "the cluster network's ${network_conf} is missing"
  mkdir -p "${own}" "${NODE_CNI_DIR}/multus" "${LOGS}" "${HOST_ROOT}${MULTUS_DEVINFO_DIR}"
  cp -f "${bin}" "${own}/multus"
  cat >"${NODE_CNI_BIN_DIR}/multus.tmp" <<EOF
#!/bin/sh
# hack/lib/multus.sh: Multus in a mount namespace where this node's kubelet root dir is
# ${MULTUS_KUBELET_DIR} (its PodResources socket) and its emulated host's device information
# is ${MULTUS_DEVINFO_DIR}; CNI's stdin and variables pass through.
exec ${unshare} --mount --propagation private /bin/sh -c '${mount} --bind "\$0" ${MULTUS_KUBELET_DIR} && ${mount} --bind "\$1" ${MULTUS_DEVINFO_DIR} && exec "\$2"' '${KUBELET_DIR}' '${HOST_ROOT}${MULTUS_DEVINFO_DIR}' '${own}/multus'
EOF
  chmod 0755 "${NODE_CNI_BIN_DIR}/multus.tmp"
  mv -f "${NODE_CNI_BIN_DIR}/multus.tmp" "${NODE_CNI_BIN_DIR}/multus"
  node_js -e '
const fs = require("fs");
const [networkConf, kubeconfig, cniDir, binDir, logFile, out] = process.argv.slice(1);
const conf = {
  cniVersion: "1.0.0",
  name: "multus-cni-network",
  plugins: [{
    type: "multus",
    kubeconfig, cniDir, binDir, logFile, logLevel: "verbose",
    delegates: [JSON.parse(fs.readFileSync(networkConf, "utf8"))],
  }],
};
fs.writeFileSync(out + ".tmp", JSON.stringify(conf, null, 2) + "\n");
fs.renameSync(out + ".tmp", out);' "${network_conf}" "${CP_STATE}/kubeconfig" "${NODE_CNI_DIR}/multus" \
    "${NODE_CNI_BIN_DIR}" "${LOGS}/multus.log" "${conf_dir}/${MULTUS_CONFLIST}"
  wait_containerd_multus present
  log "Multus is the CNI of node ${NODE_NAME} (${conf_dir}/${MULTUS_CONFLIST})"
}

# wait_containerd_multus present|absent: until the selected node's containerd has loaded
# (or dropped) the Multus configuration; it reloads its CNI directory on its own.
wait_containerd_multus() {
  local want="$1" deadline=$((SECONDS + START_TIMEOUT)) info
  while :; do
    info="$("${CRICTL}" --runtime-endpoint "${CRI_ENDPOINT}" info 2>/dev/null || true)"
    if [[ "${info}" == *'"Name": "multus-cni-network"'* ]]; then
      [[ "${want}" == present ]] && return 0
    elif [[ -n "${info}" && "${want}" == absent ]]; then
      return 0
    fi
    ((SECONDS < deadline)) || die "containerd of node ${NODE_NAME} did not load the change of its CNI configuration in ${START_TIMEOUT} s (crictl info)"
    sleep "${WAIT_INTERVAL}"
  done
}

# remove_multus_from_node: the configuration first, so no new sandbox runs Multus.
remove_multus_from_node() {
  local conf_dir
  conf_dir="$(json_get "${CTRD_STATE}/env.json" j.cniConfDir)"
  rm -f -- "${conf_dir}/${MULTUS_CONFLIST}"
  wait_containerd_multus absent
  rm -f -- "${NODE_CNI_BIN_DIR}/multus" "${NODE_CNI_BIN_DIR}/multus.tmp"
  rm -rf -- "${NODE_DIR}/multus" "${NODE_CNI_DIR}/multus"
  log "Multus removed from node ${NODE_NAME}"
}

# remove_multus_mount_point: the mount points install created, when still empty.
remove_multus_mount_point() {
  local point
  [[ -f "${STATE}/${MULTUS_MOUNT_POINTS_CREATED}" ]] || return 0
  while read -r point; do
    if [[ "${point}" == "${MULTUS_KUBELET_DIR}" || "${point}" == "${MULTUS_DEVINFO_DIR}" ]]; then
      rmdir -- "${point}" 2>/dev/null || true
    fi
  done <"${STATE}/${MULTUS_MOUNT_POINTS_CREATED}"
  rm -f -- "${STATE}/${MULTUS_MOUNT_POINTS_CREATED}"
}
