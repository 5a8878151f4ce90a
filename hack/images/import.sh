#!/usr/bin/env bash
# Imports the test images (hack/images/build.sh, built first when missing)
# into a running containerd, unpacked for its overlayfs snapshotter, so that
# CRI finds them and never pulls:
#   ${PAUSE_IMAGE}   ${BUSYBOX_IMAGE}   (see hack/lib/containerd.sh)
# and with --driver the driver's image too (hack/images/build-driver.sh,
# built first when missing; it needs `make bundle`), under its fully
# qualified name (docker.io/library/dra-driver-sriov:<version> by default),
# the one the kubelet asks CRI for when a pod names dra-driver-sriov:<version>.
#
# Usage: hack/images/import.sh SOCKET [NAMESPACE] [--driver]
#   SOCKET      containerd's gRPC socket (path)
#   NAMESPACE   containerd namespace; default k8s.io, the one CRI uses
#   --driver    also the driver's image; its name goes to stdout as DRIVER_IMAGE=...
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

# import_image ARCHIVE NAME: the OCI archive ARCHIVE into containerd on
# SOCKET, NAMESPACE as NAME (repository:tag), checked listed afterwards.
# --base-name: only names under NAME's repository are taken from the archive
# (its index.json carries the full name and the tag).
import_image() {
  local archive="$1" name="$2" listed
  ctr_quiet images import --base-name "${name%:*}" --snapshotter overlayfs "${archive}" >/dev/null ||
    die "importing ${archive} as ${name} failed"
  listed="$(ctr_quiet images ls -q)" || die "ctr images ls failed"
  grep -qxF "${name}" <<<"${listed}" || die "${name} is not listed after importing ${archive}"
  log "imported ${name} into namespace ${NAMESPACE}"
}

main() {
  local driver=false args=() arg
  for arg in "$@"; do
    case "${arg}" in
      -h | --help)
        print_usage
        return 0
        ;;
      --driver) driver=true ;;
      -*) die "unknown option ${arg} (usage: $0 SOCKET [NAMESPACE] [--driver])" ;;
      *) args+=("${arg}") ;;
    esac
  done
  if ((${#args[@]} < 1 || ${#args[@]} > 2)); then
    print_usage
    return 2
  fi
  SOCKET="${args[0]}"
  NAMESPACE="${args[1]:-k8s.io}"
  [[ -S "${SOCKET}" ]] || die "${SOCKET} is not a socket"
  "${HACK_DIR}/build-containerd.sh" >/dev/null
  eval "$("${IMAGES_SRC}/build.sh")"

  import_image "${PAUSE_IMAGE_ARCHIVE}" "${PAUSE_IMAGE}"
  import_image "${BUSYBOX_IMAGE_ARCHIVE}" "${BUSYBOX_IMAGE}"
  if ${driver}; then
    local built
    built="$("${IMAGES_SRC}/build-driver.sh")" || die "building the driver image failed"
    DRIVER_IMAGE="$(sed -n 's/^DRIVER_IMAGE=//p' <<<"${built}")"
    DRIVER_IMAGE_ARCHIVE="$(sed -n 's/^DRIVER_IMAGE_ARCHIVE=//p' <<<"${built}")"
    import_image "${DRIVER_IMAGE_ARCHIVE}" "${DRIVER_IMAGE}"
    printf 'DRIVER_IMAGE=%s\n' "${DRIVER_IMAGE}"
  fi
}

main "$@"
