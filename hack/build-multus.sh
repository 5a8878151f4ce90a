#!/usr/bin/env bash
# Builds Multus CNI from its module fetched through the Go module proxy, with
# the machine's Go:
#   multus          the thin plugin (a CNI meta-plugin that reads the pod's
#                   networks annotation and calls the delegates itself)
#   multus-daemon   the thick plugin's node daemon
#   multus-shim     the thick plugin's CNI binary (asks multus-daemon)
# of gopkg.in/k8snetworkplumbingwg/multus-cni.v4 ${MULTUS_VERSION}, into the
# cache the other build scripts use, keyed by version:
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/multus/<version>/bin/
#
# Usage: hack/build-multus.sh [--check]
#   --check   build nothing; exit 0 when Multus is cached, 1 otherwise.
#
# The proxy does not list this module's versions (`go list -m -versions`
# answers 403 for gopkg.in/k8snetworkplumbingwg/multus-cni.v4), but it serves
# an exact version, so the version is pinned here. Module zips carry no
# vendor/ tree, so it is built inside a wrapper module that requires exactly
# that version (its go.mod has no replace directives: the dependency versions
# of its release), and linked as its hack/build-go.sh links it
# (pkg/multus.version etc.; the date is the release's commit time from the
# proxy, so the same Go gives the same bytes).
# Multus counts as cached when every binary exists and `-version` reports the
# pinned version; a warm run costs three version calls. Binaries are linked
# under temporary names and renamed into place only after they ran, so an
# interrupted build never leaves something that looks complete. Go builds of
# hack/ share one lock (hack/lib/build.sh).
#
# On success stdout carries exactly one line, for scripts to eval:
#   MULTUS_BIN_DIR=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

MULTUS_MODULE=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
# The newest release when it was chosen (exact versions are served; the list is not).
MULTUS_VERSION="${MULTUS_VERSION:-v4.2.2}"
MULTUS_BIN_DIR="${CACHE_ROOT}/multus/${MULTUS_VERSION}/bin"
# The binaries: each a main package cmd/<name> of the module, built as <name>.
MULTUS_BINARIES=(multus multus-daemon multus-shim)

trap cleanup EXIT
trap on_signal INT TERM

# multus_ok BINARY succeeds when BINARY runs and reports MULTUS_VERSION
# (`<name>: version:v4.2.2(clean,released), commit:..., date:...`; the
# status is not looked at: multus-daemon exits 4 after printing it).
multus_ok() {
  local bin="$1" out
  [[ -x "${bin}" ]] || return 1
  out="$("${bin}" -version 2>/dev/null)" || true
  [[ "${out}" == *" version:${MULTUS_VERSION}("* ]]
}

# multus_version_output BINARY prints what BINARY says its version is.
multus_version_output() {
  "$1" -version 2>&1 || true
}

# all_ok succeeds when every binary is cached.
all_ok() {
  local name
  for name in "${MULTUS_BINARIES[@]}"; do
    multus_ok "${MULTUS_BIN_DIR}/${name}" || return 1
  done
}

build_multus() {
  local src="${CACHE_ROOT}/multus/${MULTUS_VERSION}/src" gomod info commit_time ldflags name tmp
  local start=${SECONDS} pkg="${MULTUS_MODULE}/pkg/multus"
  mkdir -p "${src}" "${MULTUS_BIN_DIR}"
  go_new_enough "${MULTUS_MODULE}" "${MULTUS_VERSION}" || die "${GO_PROBLEM}"
  fetch_module "${MULTUS_MODULE}" "${MULTUS_VERSION}"
  gomod="${MODULE_GOMOD}"
  if grep -q '^replace' "${gomod}"; then
    die "${MULTUS_MODULE}@${MULTUS_VERSION} has replace directives this script does not carry over"
  fi
  write_wrapper_module "${src}" multus "${MULTUS_MODULE}" "${MULTUS_VERSION}" "${gomod}"
  # The release's commit time (the .info file of the proxy), for the date.
  info="$(module_download "${MULTUS_MODULE}@${MULTUS_VERSION}" Info)"
  commit_time="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${info}")"
  [[ -n "${commit_time}" ]] || die "no commit time in ${info}"
  ldflags="-s -w -buildid="
  ldflags+=" -X ${pkg}.version=${MULTUS_VERSION}"
  ldflags+=" -X ${pkg}.gitTreeState=clean"
  ldflags+=" -X ${pkg}.releaseStatus=,released"
  ldflags+=" -X ${pkg}.date=${commit_time}"
  for name in "${MULTUS_BINARIES[@]}"; do
    tmp="${MULTUS_BIN_DIR}/.${name}.partial.$$"
    TMP_PATHS+=("${tmp}")
    log "building ${name} (${MULTUS_MODULE}/cmd/${name} ${MULTUS_VERSION}) ..."
    go_build "${src}" "${tmp}" "" "${ldflags}" "${MULTUS_MODULE}/cmd/${name}"
    install_checked "${tmp}" "${MULTUS_BIN_DIR}/${name}" "${MULTUS_VERSION}" multus_ok multus_version_output
  done
  log "built ${MULTUS_BINARIES[*]} in $((SECONDS - start)) s -> ${MULTUS_BIN_DIR}"
}

main() {
  parse_build_args "$@"
  if all_ok; then
    log "Multus ${MULTUS_VERSION}: cached in ${MULTUS_BIN_DIR}"
  elif ${CHECK_ONLY}; then
    log "Multus ${MULTUS_VERSION} missing under ${MULTUS_BIN_DIR}"
    return 1
  else
    prepare_go_build "Multus ${MULTUS_VERSION}"
    mkdir -p "${CACHE_ROOT}/multus"
    if all_ok; then
      log "Multus ${MULTUS_VERSION}: built meanwhile by another run, cached in ${MULTUS_BIN_DIR}"
    else
      # Partial binaries of a build killed outright (no EXIT trap ran).
      find "${MULTUS_BIN_DIR}" -maxdepth 1 -name '.*.partial.*' -delete 2>/dev/null || true
      log "building with $("${GO}" version) (CGO_ENABLED=${CGO_ENABLED}); later runs reuse ${CACHE_ROOT}"
      build_multus
    fi
  fi
  printf 'MULTUS_BIN_DIR=%s\n' "${MULTUS_BIN_DIR}"
}

main "$@"
