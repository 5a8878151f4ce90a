#!/usr/bin/env bash
# Builds the CNI plugins of hack/cni/ that tests and demos run, with the
# machine's Go:
#   emulated-vf   hack/cni/emulated-vf: the SR-IOV CNI's stand-in on an
#                 emulated host (hands the VF's veth to Debian's host-device)
# into the cache the other build scripts use, keyed by a hash of the sources
# (hack/cni/, this script) and of the Go toolchain and platform:
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/cni/<key>/
# That directory is a CNI bin dir: put it on the driver's --cni-bin-dir before
# the reference plugins (/usr/lib/cni).
#
# Usage: hack/build-cni.sh [--check]
#   --check   build nothing; exit 0 when the plugins are cached, 1 otherwise.
#
# The binaries are static (CGO_ENABLED=0; checked: no program interpreter),
# so they run in the node plugin's distroless image as on the host, and
# reproducible (-trimpath, no build id, no VCS stamp): the same sources and Go
# give the same bytes. The directory is built under a temporary name and
# renamed into place once complete, so it appears whole or not at all; a warm
# run costs one `go env`. Go builds of hack/ share one lock (hack/lib/build.sh).
# golang.org/x/sys comes through the Go module proxy; hack/cni/go.sum pins it.
#
# On success stdout carries exactly one line, for scripts to eval:
#   CNI_TEST_BIN_DIR=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/build.sh
source "${HACK_DIR}/lib/build.sh"

CNI_SRC="${HACK_DIR}/cni"
# The plugins: each a main package hack/cni/<name>/, built as <name>.
CNI_PLUGINS=(emulated-vf)

trap cleanup EXIT
trap on_signal INT TERM

# cache_key prints the cache directory's name: a hash of this script, every
# file of hack/cni/ (names and contents) and what the Go toolchain compiles for.
cache_key() {
  local files=()
  mapfile -t files < <(cd "${CNI_SRC}" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort)
  [[ ${#files[@]} -gt 0 ]] || die "no sources under ${CNI_SRC}"
  {
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
    (cd "${CNI_SRC}" && sha256sum "${files[@]}")
    "${GO}" env GOVERSION GOOS GOARCH GOAMD64 GOARM64
  } | sha256sum | cut -c1-16
}

# plugins_present DIR succeeds when DIR has every plugin.
plugins_present() {
  local name
  for name in "${CNI_PLUGINS[@]}"; do
    [[ -x "$1/${name}" ]] || return 1
  done
}

# check_static BINARY dies unless BINARY is an ELF file without a program
# interpreter (the dynamic loader a dynamically linked binary names).
check_static() {
  local headers
  headers="$(readelf --program-headers "$1" 2>&1)" || die "$1 is not an ELF binary: ${headers}"
  if grep -q 'program interpreter' <<<"${headers}"; then
    die "$1 is dynamically linked; it must be static (CGO_ENABLED=0)"
  fi
}

# check_runs BINARY dies unless emulated-vf answers a configuration without
# deviceID with its own CNI error result (it runs, reads stdin, writes stdout).
check_runs() {
  local out
  out="$(CNI_COMMAND=ADD CNI_PATH="" "$1" <<<'{"cniVersion":"1.0.0"}')" && die "$1 accepted a configuration without deviceID"
  [[ "${out}" == *'"msg":"deviceID is missing"'* ]] || die "$1 does not answer as emulated-vf: ${out}"
}

build_plugins() {
  local out="$1" name start=${SECONDS}
  for name in "${CNI_PLUGINS[@]}"; do
    log "building ${name} (hack/cni/${name}) ..."
    # -mod=readonly after hack/lib/build.sh's -mod=mod: a build never edits
    # hack/cni/go.mod or go.sum.
    GOFLAGS="${GOFLAGS} -mod=readonly" go_build "${CNI_SRC}" "${out}/${name}" "" "-s -w -buildid=" "./${name}"
    check_static "${out}/${name}"
  done
  check_runs "${out}/emulated-vf"
  log "built ${CNI_PLUGINS[*]} in $((SECONDS - start)) s"
}

main() {
  parse_build_args "$@"
  find_go "the test CNI plugins"
  local key dir
  key="$(cache_key)"
  dir="${CACHE_ROOT}/cni/${key}"
  if plugins_present "${dir}"; then
    log "test CNI plugins cached in ${dir}"
  elif ${CHECK_ONLY}; then
    log "test CNI plugins missing under ${dir}"
    return 1
  else
    command -v readelf >/dev/null 2>&1 || die "readelf (binutils) is needed to check that the plugins are static"
    prepare_go_build "the test CNI plugins"
    mkdir -p "${CACHE_ROOT}/cni"
    # Checked again under the lock: a concurrent run may have built them.
    if plugins_present "${dir}"; then
      log "test CNI plugins: built meanwhile by another run, cached in ${dir}"
    else
      # Left by a build killed outright (no EXIT trap ran); none runs now.
      rm -rf -- "${CACHE_ROOT}"/cni/.build.*
      local tmp
      tmp="$(mktemp -d "${CACHE_ROOT}/cni/.build.XXXXXX")"
      TMP_PATHS+=("${tmp}")
      chmod 0755 "${tmp}"
      log "building with $("${GO}" version) (CGO_ENABLED=${CGO_ENABLED}) -> ${dir}"
      build_plugins "${tmp}"
      rm -rf -- "${dir}"
      mv -T "${tmp}" "${dir}"
    fi
  fi
  printf 'CNI_TEST_BIN_DIR=%s\n' "${dir}"
}

main "$@"
