#!/usr/bin/env bash
# Builds a real container runtime for tests, from source fetched through the
# Go module proxy, with the machine's Go:
#   containerd, ctr, containerd-shim-runc-v2
#                github.com/containerd/containerd/v2 ${CONTAINERD_VERSION}
#   crictl       sigs.k8s.io/cri-tools ${CRICTL_VERSION} (for humans debugging CRI)
# into a cache outside the repo, keyed by version (see hack/lib/containerd.sh):
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/containerd/<version>/bin/
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/cri-tools/<version>/bin/
# runc and the CNI plugins are not built: Debian's packages are used (runc,
# containernetworking-plugins).
#
# Usage: hack/build-containerd.sh [--check]
#   --check   build nothing; exit 0 when every binary is cached, 1 otherwise.
#
# A binary counts as cached when it exists and reports the pinned version, so
# a second run costs only four version calls. Binaries are installed into a
# temporary directory and renamed into place only after they ran, so an
# interrupted build never leaves something that looks complete. Builds are
# serialized with hack/build-k8s.sh through one lock: two Go builds at once
# only slow each other down.
#
# All binaries are static (CGO_ENABLED=0, as containerd's release builds of
# the shim): no btrfs snapshotter (it needs cgo and the btrfs headers; the
# no_btrfs tag says so explicitly), the shim without its unused gRPC server
# (no_grpc, as containerd's Makefile builds it).
#
# On success stdout carries exactly two lines, for scripts to eval:
#   CONTAINERD_BIN_DIR=...
#   CRICTL_BIN_DIR=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/containerd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/containerd.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

trap cleanup EXIT
trap on_signal INT TERM

# Each part is built inside a wrapper module of ours that requires exactly
# the pinned module version (write_wrapper_module, as hack/build-k8s.sh does):
# the build then uses that module's own go.mod versions. Not `go install
# pkg@version`, which also asks the proxy for the module's version list to
# look for a deprecation notice, and the proxy refuses that list for cri-tools.

build_containerd() {
  local entry name missing=() daemon_pkgs=() shim_pkgs=()
  for entry in "${CONTAINERD_COMMANDS[@]}"; do
    name="${entry%%:*}"
    if containerd_binary_ok "${CONTAINERD_BIN_DIR}/${name}" "${CONTAINERD_VERSION}"; then
      log "${name} ${CONTAINERD_VERSION}: cached at ${CONTAINERD_BIN_DIR}/${name}"
      continue
    fi
    missing+=("${name}")
    case "${name}" in
      containerd-shim-*) shim_pkgs+=("${entry#*:}") ;;
      *) daemon_pkgs+=("${entry#*:}") ;;
    esac
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0

  local src="${CACHE_ROOT}/containerd/${CONTAINERD_VERSION}/src" pkg=github.com/containerd/containerd/v2
  local tmpbin="${CONTAINERD_BIN_DIR}/.partial.$$" start=${SECONDS}
  mkdir -p "${CONTAINERD_BIN_DIR}" "${tmpbin}"
  TMP_PATHS+=("${tmpbin}")
  fetch_module "${pkg}" "${CONTAINERD_VERSION}"
  write_wrapper_module "${src}" containerd "${pkg}" "${CONTAINERD_VERSION}" "${MODULE_GOMOD}"
  # What containerd's Makefile sets, minus the git revision (the proxy's
  # module zip carries none).
  local ldflags="-s -w -X ${pkg}/version.Version=${CONTAINERD_VERSION} -X ${pkg}/version.Package=${pkg}"
  local tags="urfave_cli_no_docs no_btrfs"
  if [[ ${#daemon_pkgs[@]} -gt 0 ]]; then
    log "building ${daemon_pkgs[*]##*/} ${CONTAINERD_VERSION} (tags: ${tags}) ..."
    go_build "${src}" "${tmpbin}/" "${tags}" "${ldflags}" "${daemon_pkgs[@]}"
  fi
  if [[ ${#shim_pkgs[@]} -gt 0 ]]; then
    log "building containerd-shim-runc-v2 ${CONTAINERD_VERSION} (tags: ${tags} no_grpc) ..."
    go_build "${src}" "${tmpbin}/" "${tags} no_grpc" "${ldflags}" "${shim_pkgs[@]}"
  fi
  for name in "${missing[@]}"; do
    install_checked "${tmpbin}/${name}" "${CONTAINERD_BIN_DIR}/${name}" "${CONTAINERD_VERSION}" \
      containerd_binary_ok containerd_version_output
  done
  log "built ${missing[*]} ${CONTAINERD_VERSION} in $((SECONDS - start)) s -> ${CONTAINERD_BIN_DIR}"
}

build_crictl() {
  if containerd_binary_ok "${CRICTL_BIN_DIR}/crictl" "${CRICTL_VERSION}"; then
    log "crictl ${CRICTL_VERSION}: cached at ${CRICTL_BIN_DIR}/crictl"
    return 0
  fi
  local src="${CACHE_ROOT}/cri-tools/${CRICTL_VERSION}/src"
  local tmpbin="${CRICTL_BIN_DIR}/.partial.$$" start=${SECONDS}
  mkdir -p "${CRICTL_BIN_DIR}" "${tmpbin}"
  TMP_PATHS+=("${tmpbin}")
  fetch_module sigs.k8s.io/cri-tools "${CRICTL_VERSION}"
  write_wrapper_module "${src}" cri-tools sigs.k8s.io/cri-tools "${CRICTL_VERSION}" "${MODULE_GOMOD}"
  log "building crictl ${CRICTL_VERSION} (sigs.k8s.io/cri-tools/cmd/crictl) ..."
  go_build "${src}" "${tmpbin}/" "" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" \
    sigs.k8s.io/cri-tools/cmd/crictl
  install_checked "${tmpbin}/crictl" "${CRICTL_BIN_DIR}/crictl" "${CRICTL_VERSION}" \
    containerd_binary_ok containerd_version_output
  log "built crictl in $((SECONDS - start)) s -> ${CRICTL_BIN_DIR}/crictl"
}

main() {
  parse_build_args "$@"
  if containerd_all_ok; then
    log "containerd ${CONTAINERD_VERSION} and crictl ${CRICTL_VERSION} are cached under ${CACHE_ROOT}"
  elif ${CHECK_ONLY}; then
    log "binaries missing under ${CACHE_ROOT} (containerd ${CONTAINERD_VERSION}, crictl ${CRICTL_VERSION})"
    return 1
  else
    prepare_go_build "containerd ${CONTAINERD_VERSION} (its go.mod asks for a recent Go)"
    # Left by a build killed outright (no EXIT trap ran); none runs now.
    rm -rf -- "${CONTAINERD_BIN_DIR}"/.partial.* "${CRICTL_BIN_DIR}"/.partial.*
    local start=${SECONDS}
    log "building with $("${GO}" version) (CGO_ENABLED=${CGO_ENABLED})"
    log "a fresh build compiles containerd from source and takes a few minutes; later runs reuse ${CACHE_ROOT}"
    build_containerd
    build_crictl
    log "done in $((SECONDS - start)) s"
  fi
  printf 'CONTAINERD_BIN_DIR=%s\nCRICTL_BIN_DIR=%s\n' "${CONTAINERD_BIN_DIR}" "${CRICTL_BIN_DIR}"
}

main "$@"
