#!/usr/bin/env bash
# Builds the binaries of a real Kubernetes control plane for tests, from source
# fetched through the Go module proxy, with the machine's Go:
#   etcd                      go.etcd.io/etcd/server/v3 ${ETCD_VERSION} (via hack/etcd/main.go)
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl
#                             k8s.io/kubernetes ${K8S_VERSION}
# into a cache outside the repo, keyed by version (see hack/lib/common.sh):
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/etcd/<version>/bin/
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/k8s/<version>/bin/
#
# Usage: hack/build-k8s.sh [--check]
#   --check   build nothing; exit 0 when every binary is cached, 1 otherwise.
#
# A binary counts as cached when it exists and reports the pinned version, so
# a second run costs only a few --version calls. Each binary is linked under a
# temporary name and renamed into place only after it ran, so an interrupted
# build never leaves something that looks complete.
#
# On success stdout carries exactly two lines, for scripts to eval:
#   ETCD_BIN_DIR=...
#   K8S_BIN_DIR=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Temporary files to remove however the script ends.
TMP_PATHS=()
cleanup() {
  local p
  for p in "${TMP_PATHS[@]}"; do
    rm -rf -- "${p}"
  done
}
trap cleanup EXIT

# The go build that is running, if any. On INT/TERM it is interrupted too,
# so that a killed script does not leave a compiler running on its own.
BUILD_PID=""
on_signal() {
  if [[ -n "${BUILD_PID}" ]]; then
    # Background jobs of a script ignore SIGINT, so TERM: first to the
    # compiler and linker processes go started, then to go itself.
    pkill -TERM -P "${BUILD_PID}" 2>/dev/null || true
    kill -TERM "${BUILD_PID}" 2>/dev/null || true
    wait "${BUILD_PID}" 2>/dev/null || true
  fi
  log "interrupted"
  exit 130
}
trap on_signal INT TERM

find_go() {
  if command -v go >/dev/null 2>&1; then
    GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
  else
    die "Go is needed to build the control plane (go.mod of k8s.io/kubernetes ${K8S_VERSION} asks for a recent Go); none on PATH or in /usr/local/go/bin"
  fi
}

# Go settings for every build. -mod=mod lets the generated wrapper modules
# complete their own go.mod/go.sum; GOWORK=off keeps any go.work of an
# enclosing directory out of it. GOMODCACHE and GOCACHE stay Go's defaults.
setup_go_env() {
  export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"
  export GOWORK=off
  export CGO_ENABLED=0
}

# module_download MODULE@VERSION FIELD prints one field (GoMod, Info, Dir) of
# `go mod download -json`, fetching the module zip into the module cache.
module_download() {
  local spec="$1" field="$2" json
  # Run outside any module so that no go.mod is consulted or edited.
  if ! json="$(cd "${WORK_TMP}" && "${GO}" mod download -json "${spec}")"; then
    printf '%s\n' "${json}" >&2
    die "go mod download ${spec} failed"
  fi
  sed -n "s/^[[:space:]]*\"${field}\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"${json}"
}

# go_directive GOMOD prints the `go` version line of a go.mod file.
go_directive() {
  awk '$1 == "go" { print $2; exit }' "$1"
}

# write_file PATH reads stdin into PATH atomically.
write_file() {
  local path="$1"
  cat >"${path}.tmp.$$"
  mv -f "${path}.tmp.$$" "${path}"
}

# build_binary MODDIR PACKAGE OUT VERSION LDFLAGS builds PACKAGE inside the
# wrapper module MODDIR and installs it as OUT once it reports VERSION.
build_binary() {
  local moddir="$1" pkg="$2" out="$3" version="$4" ldflags="$5"
  local name tmp start
  name="$(basename "${out}")"
  tmp="$(dirname "${out}")/.${name}.partial.$$"
  TMP_PATHS+=("${tmp}")
  start=${SECONDS}
  log "building ${name} ${version} (${pkg}) ..."
  # In the background and waited for: bash runs a signal trap only between
  # commands, but it does interrupt `wait`.
  (cd "${moddir}" && exec "${GO}" build -trimpath -buildvcs=false -ldflags "${ldflags}" -o "${tmp}" "${pkg}") &
  BUILD_PID=$!
  wait "${BUILD_PID}" || die "go build ${pkg} failed"
  BUILD_PID=""
  # Run it under its real name: version_output dispatches on the basename.
  ln -sfn "${tmp}" "${WORK_TMP}/${name}"
  binary_ok "${WORK_TMP}/${name}" "${version}" ||
    die "${name} was built but does not report ${version}: $(version_output "${WORK_TMP}/${name}" | head -n 3)"
  mv -f "${tmp}" "${out}"
  log "built ${name} in $((SECONDS - start)) s -> ${out}"
}

build_etcd() {
  local out="${ETCD_BIN_DIR}/etcd"
  if binary_ok "${out}" "${ETCD_VERSION}"; then
    log "etcd ${ETCD_VERSION}: cached at ${out}"
    return 0
  fi
  local src="${CACHE_ROOT}/etcd/${ETCD_VERSION}/src" gomod
  mkdir -p "${src}" "${ETCD_BIN_DIR}"
  log "fetching go.etcd.io/etcd/server/v3@${ETCD_VERSION} through the Go module proxy ..."
  gomod="$(module_download "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" GoMod)"
  [[ -f "${gomod}" ]] || die "no go.mod for go.etcd.io/etcd/server/v3@${ETCD_VERSION}"

  # The wrapper module: our main.go plus a go.mod requiring the server
  # library. -mod=mod fills in the indirect requirements and go.sum.
  cp "${HACK_DIR}/etcd/main.go" "${src}/main.go.tmp.$$"
  mv -f "${src}/main.go.tmp.$$" "${src}/main.go"
  write_file "${src}/go.mod" <<EOF
// Generated by hack/build-k8s.sh; do not edit.
module dra-driver-sriov.local/etcd

go $(go_directive "${gomod}")

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
  build_binary "${src}" . "${out}" "${ETCD_VERSION}" "-s -w"
}

# k8s_go_mod KUBERNETES_GOMOD prints the wrapper go.mod for k8s.io/kubernetes.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...)
# at v0.0.0 and points them at ./staging/ with replace directives, which only
# apply inside its own repository. As a dependency it therefore needs every
# one of them replaced by its published v0.X.Y release, X.Y matching v1.X.Y.
# The list is taken from the downloaded go.mod so it follows the version.
k8s_go_mod() {
  local gomod="$1" staging_version="v0.${K8S_VERSION#v1.}" replaces godebug
  replaces="$(awk -v ver="${staging_version}" '
    # Inside or outside a block, a directive line is: [keyword] path ...
    /^replace[[:space:]]*\(/ { inrep = 1; next }
    /^require[[:space:]]*\(/ { inreq = 1; next }
    /^\)/ { inrep = 0; inreq = 0; next }
    {
      line = $0; sub(/\/\/.*/, "", line)
      n = split(line, f, /[[:space:]]+/)
      # drop the leading empty field of indented lines
      k = 0; for (i = 1; i <= n; i++) if (f[i] != "") g[++k] = f[i]
      if (k == 0) next
      if (g[1] == "replace") { for (i = 1; i < k; i++) g[i] = g[i + 1]; k--; single = "rep" }
      else if (g[1] == "require") { for (i = 1; i < k; i++) g[i] = g[i + 1]; k--; single = "req" }
      else single = ""
      if ((inrep || single == "rep") && g[2] == "=>" && g[3] ~ /^\.\/staging\//) mods[g[1]] = 1
      if ((inreq || single == "req") && g[1] ~ /^k8s\.io\// && g[2] == "v0.0.0") mods[g[1]] = 1
    }
    END { for (m in mods) printf "\t%s => %s %s\n", m, m, ver }
  ' "${gomod}" | sort)"
  [[ -n "${replaces}" ]] || die "found no staging modules in ${gomod}"
  # Keep the GODEBUG defaults Kubernetes builds its binaries with.
  godebug="$(awk '/^godebug[[:space:]]*\(/ { b = 1 } b || /^godebug[[:space:]]/ { print } b && /^\)/ { b = 0 }' "${gomod}")"
  cat <<EOF
// Generated by hack/build-k8s.sh from the go.mod of k8s.io/kubernetes ${K8S_VERSION}; do not edit.
module dra-driver-sriov.local/k8s

go $(go_directive "${gomod}")

${godebug}

require k8s.io/kubernetes ${K8S_VERSION}

replace (
${replaces}
)
EOF
}

# k8s_ldflags INFOFILE prints the -ldflags Kubernetes' own build would set, so
# that `--version` and the version checks between components see the release.
k8s_ldflags() {
  local info="$1" minor build_date pkg flags="-s -w"
  minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  # The tag's commit time from the proxy's .info keeps builds reproducible.
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${info}")"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
    flags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean"
    [[ -z "${build_date}" ]] || flags+=" -X ${pkg}.buildDate=${build_date}"
  done
  printf '%s\n' "${flags}"
}

build_k8s() {
  local entry missing=()
  for entry in "${K8S_COMMANDS[@]}"; do
    if binary_ok "${K8S_BIN_DIR}/${entry%%:*}" "${K8S_VERSION}"; then
      log "${entry%%:*} ${K8S_VERSION}: cached at ${K8S_BIN_DIR}/${entry%%:*}"
    else
      missing+=("${entry}")
    fi
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0

  local src="${CACHE_ROOT}/k8s/${K8S_VERSION}/src" gomod info ldflags
  mkdir -p "${src}" "${K8S_BIN_DIR}"
  log "fetching k8s.io/kubernetes@${K8S_VERSION} through the Go module proxy ..."
  gomod="$(module_download "k8s.io/kubernetes@${K8S_VERSION}" GoMod)"
  info="$(module_download "k8s.io/kubernetes@${K8S_VERSION}" Info)"
  [[ -f "${gomod}" && -f "${info}" ]] || die "no go.mod/.info for k8s.io/kubernetes@${K8S_VERSION}"
  k8s_go_mod "${gomod}" | write_file "${src}/go.mod"
  log "wrapper module: ${src}/go.mod ($(grep -c '=>' "${src}/go.mod") staging modules pinned to v0.${K8S_VERSION#v1.})"
  ldflags="$(k8s_ldflags "${info}")"

  for entry in "${missing[@]}"; do
    build_binary "${src}" "${entry#*:}" "${K8S_BIN_DIR}/${entry%%:*}" "${K8S_VERSION}" "${ldflags}"
  done
}

main() {
  local check=false
  case "${1:-}" in
    "") ;;
    --check) check=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      return 0
      ;;
    *) die "unknown argument: $1 (usage: $0 [--check])" ;;
  esac

  if all_binaries_ok; then
    log "etcd ${ETCD_VERSION} and Kubernetes ${K8S_VERSION} binaries are cached under ${CACHE_ROOT}"
  elif ${check}; then
    log "binaries missing under ${CACHE_ROOT} (etcd ${ETCD_VERSION}, Kubernetes ${K8S_VERSION})"
    return 1
  else
    find_go
    setup_go_env
    mkdir -p "${CACHE_ROOT}"
    # Scratch space (empty, outside any module), removed on exit.
    WORK_TMP="$(mktemp -d)"
    TMP_PATHS+=("${WORK_TMP}")
    # go's own work dirs too, so an interrupted build leaves none behind.
    export GOTMPDIR="${WORK_TMP}"
    # Serialize concurrent builds (parallel test jobs on one machine); the
    # one that waited then finds the binaries cached.
    if command -v flock >/dev/null 2>&1; then
      exec 9>"${CACHE_ROOT}/.build.lock"
      if ! flock -n 9; then
        log "another build holds ${CACHE_ROOT}/.build.lock; waiting ..."
        flock 9
      fi
    fi
    # Partial binaries left by a build that was killed outright (no EXIT
    # trap ran); no build runs concurrently here, so all of them are stale.
    find "${ETCD_BIN_DIR}" "${K8S_BIN_DIR}" -maxdepth 1 -name '.*.partial.*' -delete 2>/dev/null || true
    local start=${SECONDS}
    log "building with $("${GO}" version) (GOFLAGS=${GOFLAGS}, CGO_ENABLED=${CGO_ENABLED})"
    log "a fresh build compiles Kubernetes from source and takes a long while; later runs reuse ${CACHE_ROOT}"
    build_etcd
    build_k8s
    log "done in $((SECONDS - start)) s"
  fi
  printf 'ETCD_BIN_DIR=%s\nK8S_BIN_DIR=%s\n' "${ETCD_BIN_DIR}" "${K8S_BIN_DIR}"
}

main "$@"
