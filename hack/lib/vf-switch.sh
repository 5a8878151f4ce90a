# shellcheck shell=bash
# The "wire" of an emulated host's VFs (used by hack/local-cluster.sh). An emulated VF
# netdev (`emulate --netdevs`) is one end of a veth pair: CNI moves that end into a pod,
# its peer (named emu…, carrying the alias dra-sriov-emulator:<root>) stays in the host
# namespace. One bridge joins the peers, as a NIC's embedded switch (and the switch its
# ports are cabled to) joins real VFs, so pods reach each other over their VFs. The bridge
# has no address: the host is not on that network. The emulated kernel deletes and makes
# a VF's pair again when the VF changes driver (vfio-pci and back), so new peers are
# joined as they appear.

# vf_switch_unbridged ROOT BRIDGE: the peers of ROOT's VFs that are not ports of BRIDGE.
vf_switch_unbridged() {
  local root="$1" bridge="$2"
  ip -o link show | awk -v alias="alias dra-sriov-emulator:${root}" -v master="master ${bridge} " '
    substr($0, length($0) - length(alias) + 1) == alias && $2 ~ /^emu/ && !index($0, master) {
      name = $2; sub(/@.*/, "", name); sub(/:$/, "", name); print name
    }'
}

# vf_switch_connect ROOT BRIDGE: makes BRIDGE if needed and joins every unjoined peer.
vf_switch_connect() {
  local root="$1" bridge="$2" peer
  if ! ip link show "${bridge}" >/dev/null 2>&1; then
    ip link add name "${bridge}" type bridge
    ip link set "${bridge}" up
  fi
  for peer in $(vf_switch_unbridged "${root}" "${bridge}"); do
    ip link set "${peer}" master "${bridge}" up 2>/dev/null || true
  done
}

# vf_switch_watch ROOT BRIDGE: keeps joining new peers, once a second, until killed.
vf_switch_watch() {
  local root="$1" bridge="$2"
  while :; do
    vf_switch_connect "${root}" "${bridge}"
    sleep 1
  done
}
