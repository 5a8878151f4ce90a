#!/usr/bin/env bash
# Builds helm (v3) for the chart checks, from source fetched through the Go
# module proxy with the machine's Go:
#   helm    helm.sh/helm/v3/cmd/helm ${HELM_VERSION}
# into the cache hack/build-k8s.sh uses, keyed by version (see hack/lib/common.sh):
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/helm/<version>/bin/helm
#
# Usage: hack/build-helm.sh [--check]
#   --check   build nothing; exit 0 when helm is cached, 1 otherwise.
#
# helm counts as cached when it exists and `helm version` reports the pinned
# version, so a second run costs one version call. It is linked under a
# temporary name and renamed into place only after it ran, so an interrupted
# build never leaves something that looks complete; Go builds of hack/ are
# serialized through build-k8s.sh's lock. It is linked as Helm's release
# Makefile links it: the version, and the Kubernetes version of its client-go
# as the default `.Capabilities.KubeVersion` (otherwise helm assumes v1.20 for
# `helm template` and `helm lint`).
#
# On success stdout carries exactly one line, for scripts to eval:
#   HELM_BIN=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

# The newest 3.x release when it was chosen: go list -m -versions helm.sh/helm/v3
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM_BIN_DIR="${CACHE_ROOT}/helm/${HELM_VERSION}/bin"
HELM_BIN="${HELM_BIN_DIR}/helm"

trap cleanup EXIT
trap on_signal INT TERM

# helm_ok BINARY succeeds when BINARY runs and reports HELM_VERSION.
helm_ok() {
  local bin="$1" out
  [[ -x "${bin}" ]] || return 1
  out="$("${bin}" version --short 2>/dev/null)" || return 1
  # --short prints e.g. "v3.22.0+g..." or "v3.22.0".
  [[ "${out}" == "${HELM_VERSION}" || "${out}" == "${HELM_VERSION}+"* ]]
}

# helm_version_output BINARY prints what BINARY says its version is.
helm_version_output() {
  "$1" version --short 2>&1
}

build_helm() {
  local src="${CACHE_ROOT}/helm/${HELM_VERSION}/src" gomod client_go major minor
  local ldflags tmp start=${SECONDS}
  mkdir -p "${src}" "${HELM_BIN_DIR}"
  fetch_module helm.sh/helm/v3 "${HELM_VERSION}"
  gomod="${MODULE_GOMOD}"
  # helm's go.mod has no replace directives, so requiring it from a wrapper
  # module resolves exactly the dependency versions its own build uses.
  if grep -q '^replace' "${gomod}"; then
    die "helm.sh/helm/v3@${HELM_VERSION} has replace directives this script does not carry over"
  fi
  write_wrapper_module "${src}" helm helm.sh/helm/v3 "${HELM_VERSION}" "${gomod}"
  # The Kubernetes version helm's own Makefile derives from its client-go
  # (v0.X.Y -> 1.X) for the default capabilities and lint deprecations.
  client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "${gomod}")"
  [[ "${client_go}" =~ ^v0\.([0-9]+)\. ]] || die "cannot read the k8s.io/client-go version from ${gomod}"
  major=1
  minor="${BASH_REMATCH[1]}"
  ldflags="-s -w"
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=${major} -X ${pkg}.k8sVersionMinor=${minor}"
  done

  tmp="${HELM_BIN_DIR}/.helm.partial.$$"
  TMP_PATHS+=("${tmp}")
  log "building helm ${HELM_VERSION} (helm.sh/helm/v3/cmd/helm, Kubernetes ${major}.${minor} capabilities) ..."
  go_build "${src}" "${tmp}" "" "${ldflags}" helm.sh/helm/v3/cmd/helm
  install_checked "${tmp}" "${HELM_BIN}" "${HELM_VERSION}" helm_ok helm_version_output
  log "built helm in $((SECONDS - start)) s -> ${HELM_BIN}"
}

main() {
  parse_build_args "$@"
  if helm_ok "${HELM_BIN}"; then
    log "helm ${HELM_VERSION}: cached at ${HELM_BIN}"
  elif ${CHECK_ONLY}; then
    log "helm ${HELM_VERSION} missing under ${CACHE_ROOT}"
    return 1
  else
    prepare_go_build "helm ${HELM_VERSION}"
    mkdir -p "${CACHE_ROOT}/helm"
    if helm_ok "${HELM_BIN}"; then
      log "helm ${HELM_VERSION}: built meanwhile by another run, cached at ${HELM_BIN}"
    else
      # Partial binaries of a build killed outright (no EXIT trap ran).
      find "${HELM_BIN_DIR}" -maxdepth 1 -name '.*.partial.*' -delete 2>/dev/null || true
      log "building with $("${GO}" version) (GOFLAGS=${GOFLAGS}, CGO_ENABLED=${CGO_ENABLED}); later runs reuse ${CACHE_ROOT}"
      build_helm
    fi
  fi
  printf 'HELM_BIN=%s\n' "${HELM_BIN}"
}

main "$@"
