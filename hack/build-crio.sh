#!/usr/bin/env bash
# Builds CRI-O, the second container runtime the driver is checked against
# (docs/compatibility.md), from source fetched through the Go module proxy:
#   crio    github.com/cri-o/cri-o ${CRIO_VERSION}, cmd/crio, with the machine's Go
#   pinns   the same module's pinns/src/*.c (CRI-O pins a pod's namespaces
#           with it), with the machine's gcc, static, as pinns/Makefile does
# into a cache outside the repo, keyed by version:
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/crio/<version>/bin/
# conmon (the container monitor CRI-O starts per container) and runc are
# Debian's packages (conmon, runc); crictl is hack/build-containerd.sh's.
#
# Usage: hack/build-crio.sh [--check]
#   --check   build nothing; exit 0 when both binaries are cached, 1 otherwise.
#
# crio counts as cached when it reports the pinned version, pinns when it
# exists (it has no version flag; the directory is keyed by version). Both are
# built into a temporary directory and renamed into place only after crio ran,
# so an interrupted build never leaves something that looks complete. The Go
# build lock of hack/lib/build.sh serializes it with the other builds.
#
# crio is static (CGO_ENABLED=0) and needs no C library: build tags leave out
# what would (containers_image_openpgp: signatures checked in Go, not with
# gpgme; containers_image_ostree_stub; exclude_graphdriver_btrfs and
# exclude_graphdriver_devicemapper: no btrfs or device-mapper storage).
# Without cgo there is no seccomp filter support (libseccomp-golang) and no
# SELinux labelling; the tests need neither.
#
# On success stdout carries exactly one line, for scripts to eval:
#   CRIO_BIN_DIR=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

# The proxy this project builds from refuses CRI-O's version list and some
# versions (403: v1.30.0, v1.34.4); v1.34.0 is served.
CRIO_VERSION="${CRIO_VERSION:-v1.34.0}"
CRIO_BIN_DIR="${CACHE_ROOT}/crio/${CRIO_VERSION}/bin"
CRIO_MODULE=github.com/cri-o/cri-o
CRIO_TAGS="containers_image_openpgp containers_image_ostree_stub exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"

trap cleanup EXIT
trap on_signal INT TERM

# crio_ok BINARY VERSION: BINARY runs and `--version` names VERSION without
# its v (crio prints "crio version 1.34.0"), as a whole word.
crio_ok() {
  local bin="$1" want="${2#v}" out
  [[ -x "${bin}" ]] || return 1
  out="$("${bin}" --version 2>&1)" || return 1
  [[ " ${out//$'\n'/ } " == *[[:space:]]"${want}"[[:space:]]* ]]
}

crio_version_output() {
  "$1" --version 2>&1
}

crio_all_ok() {
  crio_ok "${CRIO_BIN_DIR}/crio" "${CRIO_VERSION}" && [[ -x "${CRIO_BIN_DIR}/pinns" ]]
}

build_all() {
  local src="${CACHE_ROOT}/crio/${CRIO_VERSION}/src" tmpbin="${CRIO_BIN_DIR}/.partial.$$" dir
  mkdir -p "${CRIO_BIN_DIR}" "${tmpbin}"
  TMP_PATHS+=("${tmpbin}")
  fetch_module "${CRIO_MODULE}" "${CRIO_VERSION}"
  dir="$(module_download "${CRIO_MODULE}@${CRIO_VERSION}" Dir)"
  [[ -d "${dir}/pinns/src" ]] || die "${CRIO_MODULE}@${CRIO_VERSION} has no pinns/src in ${dir}"
  write_wrapper_module "${src}" crio "${CRIO_MODULE}" "${CRIO_VERSION}" "${MODULE_GOMOD}"

  log "building pinns (gcc, static) ..."
  # pinns/Makefile's flags (CFLAGS and the -O3 of its objects), in one step.
  gcc -std=c99 -Os -O3 -Wall -Werror -Wextra -static -o "${tmpbin}/pinns" "${dir}"/pinns/src/*.c ||
    die "gcc could not build pinns (hack/prereqs.sh installs gcc and libc6-dev)"
  strip -s "${tmpbin}/pinns"

  go_build_progress "crio ${CRIO_VERSION}" "${src}" "${tmpbin}/" "${CRIO_TAGS}" "-s -w" "${CRIO_MODULE}/cmd/crio"
  install_checked "${tmpbin}/crio" "${CRIO_BIN_DIR}/crio" "${CRIO_VERSION}" crio_ok crio_version_output
  mv -f "${tmpbin}/pinns" "${CRIO_BIN_DIR}/pinns"
}

main() {
  parse_build_args "$@"
  if crio_all_ok; then
    log "crio ${CRIO_VERSION} and pinns are cached in ${CRIO_BIN_DIR}"
  elif ${CHECK_ONLY}; then
    log "crio ${CRIO_VERSION} or pinns missing in ${CRIO_BIN_DIR}"
    return 1
  else
    prepare_go_build "crio ${CRIO_VERSION}"
    # Left by a build killed outright (no EXIT trap ran); none runs now.
    rm -rf -- "${CRIO_BIN_DIR}"/.partial.*
    local start=${SECONDS}
    log "building with $("${GO}" version) (CGO_ENABLED=${CGO_ENABLED}); tags: ${CRIO_TAGS}"
    build_all
    log "built crio ${CRIO_VERSION} and pinns in $(elapsed "${start}") -> ${CRIO_BIN_DIR}"
  fi
  printf 'CRIO_BIN_DIR=%s\n' "${CRIO_BIN_DIR}"
}

main "$@"
