#!/usr/bin/env bash
# Builds the two container images the tests run, locally and reproducibly,
# as OCI image layouts packed in tar archives (what `ctr images import` reads):
#   ${PAUSE_IMAGE}     /pause, compiled with gcc from hack/images/pause.c
#                      (static; waits for SIGINT/SIGTERM, reaps children)
#   ${BUSYBOX_IMAGE}   Debian's busybox-static as /bin/busybox with a symlink
#                      per applet (sh, ip, ping, ls, cat, sleep, env, ...)
# Names: see hack/lib/containerd.sh. Nothing is pulled from any registry.
#
# Usage: hack/images/build.sh [--check]
#   --check   build nothing; exit 0 when the archives are cached, 1 otherwise.
#
# Cache: ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/images/<key>/
# with pause.oci.tar, busybox.oci.tar and images.json (names and digests).
# <key> is a hash of every input: this script, oci.sh (the packing, shared
# with build-driver.sh), pause.c, the image names, the busybox binary, and the
# versions of gcc, tar and gzip. The same inputs give byte-identical archives
# (fixed timestamps, owners and file order; gzip -n; no build id), so the
# image digests only change when an input does.
#
# On success stdout carries exactly two lines, for scripts to eval:
#   PAUSE_IMAGE_ARCHIVE=...
#   BUSYBOX_IMAGE_ARCHIVE=...
# Progress goes to stderr. Needs: gcc with a static libc (libc6-dev),
# busybox-static, GNU tar, gzip, sha256sum.
set -euo pipefail
# File modes in the archives must not depend on the caller's umask.
umask 022

IMAGES_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/containerd.sh
source "${IMAGES_SRC}/../lib/containerd.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/build.sh
source "${HACK_DIR}/lib/build.sh"

# shellcheck source-path=SCRIPTDIR source=oci.sh
source "${IMAGES_SRC}/oci.sh"

BUSYBOX_BIN="${DRA_SRIOV_BUSYBOX_BIN:-/bin/busybox}"

trap cleanup EXIT
trap 'exit 130' INT TERM

check_tools() {
  local tool
  for tool in gcc readelf tar gzip sha256sum flock; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is needed to build the test images"
  done
  [[ -x "${BUSYBOX_BIN}" ]] || die "${BUSYBOX_BIN} is missing: install Debian's busybox-static"
  # A dynamically linked busybox would need its libraries in the image.
  if readelf --program-headers "${BUSYBOX_BIN}" 2>/dev/null | grep -q 'program interpreter'; then
    die "${BUSYBOX_BIN} is dynamically linked: install Debian's busybox-static"
  fi
}

cache_key() {
  {
    sha256sum "${IMAGES_SRC}/build.sh" "${IMAGES_SRC}/oci.sh" "${IMAGES_SRC}/pause.c" "${BUSYBOX_BIN}" | cut -d' ' -f1
    printf '%s\n' "${PAUSE_IMAGE}" "${BUSYBOX_IMAGE}" "$(go_arch)"
    gcc --version | head -n 1
    tar --version | head -n 1
    gzip --version | head -n 1
  } | sha256sum | cut -c1-16
}

build_pause() {
  local rootfs="${BUILD_TMP}/pause-rootfs"
  mkdir -p "${rootfs}"
  chmod 0755 "${rootfs}"
  log "compiling pause.c ($(gcc --version | head -n 1))"
  # -static: the image holds nothing else. No build id and stripped, so the
  # same compiler and libc give the same bytes.
  (cd "${BUILD_TMP}" && gcc -std=c11 -static -Os -s -Wall -Wextra -Werror \
    -Wl,--build-id=none -o "${rootfs}/pause" "${IMAGES_SRC}/pause.c")
  chmod 0755 "${rootfs}/pause"
  # As upstream's pause image: an unprivileged user, nothing but /pause.
  pack_image "${PAUSE_IMAGE}" \
    '{"User":"65535:65535","Entrypoint":["/pause"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' \
    "${BUILD_OUT}/pause.oci.tar" "${rootfs}"
  PAUSE_DIGEST="${PACKED_DIGEST}"
}

build_busybox() {
  local rootfs="${BUILD_TMP}/busybox-rootfs" applet applets=()
  mkdir -p "${rootfs}"/{bin,etc,root,tmp,var/tmp,home}
  chmod 0755 "${rootfs}" "${rootfs}"/{bin,etc,var,home}
  chmod 0700 "${rootfs}/root"
  chmod 1777 "${rootfs}/tmp" "${rootfs}/var/tmp"
  cp "${BUSYBOX_BIN}" "${rootfs}/bin/busybox"
  chmod 0755 "${rootfs}/bin/busybox"
  mapfile -t applets < <("${BUSYBOX_BIN}" --list | LC_ALL=C sort)
  [[ ${#applets[@]} -gt 0 ]] || die "${BUSYBOX_BIN} --list printed no applets"
  for applet in "${applets[@]}"; do
    [[ "${applet}" == busybox || "${applet}" == */* ]] && continue
    ln -s busybox "${rootfs}/bin/${applet}"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"${rootfs}/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"${rootfs}/etc/group"
  chmod 0644 "${rootfs}/etc/passwd" "${rootfs}/etc/group"
  local version
  version="$("${BUSYBOX_BIN}" 2>&1 | head -n 1 | awk '{print $2}')"
  log "busybox ${version} from ${BUSYBOX_BIN}: ${#applets[@]} applets"
  pack_image "${BUSYBOX_IMAGE}" \
    "{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"WorkingDir\":\"/\",\"Labels\":{\"org.opencontainers.image.version\":$(json_str "${version}")}}" \
    "${BUILD_OUT}/busybox.oci.tar" "${rootfs}"
  BUSYBOX_DIGEST="${PACKED_DIGEST}"
}

main() {
  parse_build_args "$@"
  check_tools
  local key dir
  key="$(cache_key)"
  dir="${IMAGES_DIR}/${key}"
  if [[ ! -f "${dir}/images.json" ]]; then
    ${CHECK_ONLY} && {
      log "test images missing under ${dir}"
      return 1
    }
    mkdir -p "${IMAGES_DIR}"
    exec 9>"${IMAGES_DIR}/.build.lock"
    flock 9
  fi
  # Checked again under the lock: a concurrent build may have finished.
  if [[ -f "${dir}/images.json" ]]; then
    log "test images cached in ${dir}"
  else
    local start=${SECONDS}
    BUILD_TMP="$(mktemp -d "${IMAGES_DIR}/.build.XXXXXX")"
    TMP_PATHS+=("${BUILD_TMP}")
    BUILD_OUT="${BUILD_TMP}/out"
    mkdir -p "${BUILD_OUT}"
    build_pause
    build_busybox
    printf '{\n  "pause": {"name": %s, "manifest": "%s"},\n  "busybox": {"name": %s, "manifest": "%s"}\n}\n' \
      "$(json_str "${PAUSE_IMAGE}")" "${PAUSE_DIGEST}" "$(json_str "${BUSYBOX_IMAGE}")" "${BUSYBOX_DIGEST}" \
      >"${BUILD_OUT}/images.json"
    # Atomic: the directory appears complete or not at all.
    rm -rf -- "${dir}"
    mv -T "${BUILD_OUT}" "${dir}"
    log "built the test images in $((SECONDS - start)) s -> ${dir}"
  fi
  printf 'PAUSE_IMAGE_ARCHIVE=%s\nBUSYBOX_IMAGE_ARCHIVE=%s\n' "${dir}/pause.oci.tar" "${dir}/busybox.oci.tar"
}

main "$@"
