#!/usr/bin/env bash
# Imports the test images (hack/images/build.sh, built first when missing)
# into a running containerd, unpacked for its overlayfs snapshotter, so that
# CRI finds them and never pulls:
#   ${PAUSE_IMAGE}   ${BUSYBOX_IMAGE}   (see hack/lib/containerd.sh)
#
# Usage: hack/images/import.sh SOCKET [NAMESPACE]
#   SOCKET      containerd's gRPC socket (path)
#   NAMESPACE   containerd namespace; default k8s.io, the one CRI uses
#
# Uses ctr from hack/build-containerd.sh's cache (built first when missing).
# Importing again is harmless: the names point at the same digests.
set -euo pipefail

IMAGES_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/containerd.sh
source "${IMAGES_SRC}/../lib/containerd.sh"

# ctr_quiet ARGS...: ctr on the socket and namespace. Its stderr (a cgroup v1
# deprecation warning on every call on such hosts) shows only on failure.
ctr_quiet() {
  local err status=0
  err="$(mktemp)"
  "${CONTAINERD_BIN_DIR}/ctr" --address "${SOCKET}" --namespace "${NAMESPACE}" "$@" 2>"${err}" || status=$?
  ((status == 0)) || cat "${err}" >&2
  rm -f "${err}"
  return "${status}"
}

main() {
  case "${1:-}" in
    -h | --help | "")
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      [[ -n "${1:-}" ]] || return 2
      return 0
      ;;
  esac
  SOCKET="$1"
  NAMESPACE="${2:-k8s.io}"
  [[ -S "${SOCKET}" ]] || die "${SOCKET} is not a socket"
  "${HACK_DIR}/build-containerd.sh" >/dev/null
  eval "$("${IMAGES_SRC}/build.sh")"

  local pair archive name listed
  for pair in "${PAUSE_IMAGE_ARCHIVE}|${PAUSE_IMAGE}" "${BUSYBOX_IMAGE_ARCHIVE}|${BUSYBOX_IMAGE}"; do
    archive="${pair%%|*}"
    name="${pair#*|}"
    # --base-name: only names under our repository are taken from the
    # archive (its index.json carries the full name and the tag).
    ctr_quiet images import --base-name "${name%:*}" --snapshotter overlayfs "${archive}" >/dev/null ||
      die "importing ${archive} as ${name} failed"
    listed="$(ctr_quiet images ls -q)" || die "ctr images ls failed"
    grep -qxF "${name}" <<<"${listed}" || die "${name} is not listed after importing ${archive}"
    log "imported ${name} into namespace ${NAMESPACE}"
  done
}

main "$@"
