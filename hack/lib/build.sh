# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Machinery shared by the build scripts of hack/ (build-k8s.sh,
# build-containerd.sh, build-helm.sh; images/build.sh uses the first part;
# prereqs.sh the first part, find_go and go_new_enough):
# temporary paths removed however a script ends, the [--check] command line,
# a `go build` stopped together with the script, the Go toolchain (is it new
# enough?) and its settings, wrapper modules, the build lock and checked,
# atomic installs.
# Source it after hack/lib/common.sh; it defines variables and functions and
# runs nothing else. The scripts set the traps themselves:
#   trap cleanup EXIT
#   trap on_signal INT TERM

### Every build script #######################################################

# Temporary files and directories to remove however the script ends.
TMP_PATHS=()
cleanup() {
  local p
  for p in "${TMP_PATHS[@]}"; do
    rm -rf -- "${p}"
  done
}

# parse_build_args [--check]: the command line of a build script. --check sets
# CHECK_ONLY=true (build nothing, only say whether everything is cached);
# -h/--help prints the script's usage and exits.
CHECK_ONLY=false
parse_build_args() {
  case "${1:-}" in
    "") ;;
    --check) CHECK_ONLY=true ;;
    -h | --help)
      print_usage
      exit 0
      ;;
    *) die "unknown argument: $1 (usage: $0 [--check])" ;;
  esac
}

### Go builds ################################################################

# The go command that is running, if any, and the loop reporting its progress
# (go_build_progress). On INT/TERM they are stopped too, so that a killed
# script does not leave a compiler running on its own.
BUILD_PID=""
PROGRESS_PID=""
on_signal() {
  stop_progress
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

# find_go WHAT sets GO to the machine's go (on PATH, else /usr/local/go/bin);
# without one it dies saying that Go is needed to build WHAT.
find_go() {
  if command -v go >/dev/null 2>&1; then
    GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
  else
    die "Go is needed to build $1; none on PATH or in /usr/local/go/bin"
  fi
}

# go_new_enough MODULE VERSION succeeds when GO (see find_go) is at least the
# Go version that the go.mod of MODULE@VERSION asks for (its go directive).
# Otherwise it sets GO_PROBLEM to one line saying what is wrong and how to fix
# it, and fails. It reads only that go.mod: from the module cache, else
# through the Go module proxy (a few kB).
# On success GO_VERSION is GO's version and GO_VERSION_WANTED the go.mod's.
GO_PROBLEM=""
GO_VERSION=""
GO_VERSION_WANTED=""
go_new_enough() {
  local module="$1" version="$2" have want
  have="$("${GO}" env GOVERSION)" || have="unknown"
  have="${have%% *}"
  have="${have#go}"
  # Outside any module, whatever GOFLAGS says (-mod=... is refused there).
  if ! want="$(cd / && GOWORK=off GOFLAGS='' "${GO}" list -m -f '{{.GoVersion}}' "${module}@${version}" 2>&1)"; then
    GO_PROBLEM="cannot read the go.mod of ${module}@${version} through the Go module proxy: ${want}"
    return 1
  fi
  # sort -V orders 1.9 < 1.26 < 1.26.0 < 1.26.8 as Go does (release candidates aside).
  if [[ "${have}" != "unknown" && "$(printf '%s\n' "${want}" "${have}" | sort -V | head -n 1)" == "${want}" ]]; then
    GO_VERSION="${have}"
    GO_VERSION_WANTED="${want}"
    return 0
  fi
  GO_PROBLEM="${GO} is Go ${have}; ${module} ${version} needs Go >= ${want} (its go.mod): install it from https://go.dev/dl/ into /usr/local/go (rm -rf /usr/local/go && tar -C /usr/local -xzf go<version>.linux-<arch>.tar.gz), /usr/local/go/bin first on PATH"
  return 1
}

# Go settings for every build. -mod=mod lets the generated wrapper modules
# complete their own go.mod/go.sum; GOWORK=off keeps any go.work of an
# enclosing directory out of it. GOMODCACHE and GOCACHE stay Go's defaults,
# shared by all the build scripts: they have many modules in common (grpc,
# protobuf, k8s.io/cri-api, ...).
setup_go_env() {
  export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"
  export GOWORK=off
  export CGO_ENABLED=0
}

# prepare_go_build WHAT: what a build script does before it builds anything:
# finds Go (find_go WHAT), sets it up, makes WORK_TMP (scratch space, empty,
# outside any module, removed on exit; go's own work dirs go there too, so an
# interrupted build leaves none behind) and takes the build lock.
prepare_go_build() {
  find_go "$1"
  setup_go_env
  mkdir -p "${CACHE_ROOT}"
  WORK_TMP="$(mktemp -d)"
  TMP_PATHS+=("${WORK_TMP}")
  export GOTMPDIR="${WORK_TMP}"
  # One lock for every Go build of hack/: concurrent builds (parallel test
  # jobs on one machine) only slow each other down, and the one that waited
  # then finds the binaries cached.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${CACHE_ROOT}/.build.lock"
    if ! flock -n 9; then
      log "another build holds ${CACHE_ROOT}/.build.lock; waiting ..."
      flock 9
    fi
  fi
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

# fetch_module MODULE VERSION downloads MODULE@VERSION through the Go module
# proxy and sets MODULE_GOMOD to its go.mod in the module cache.
fetch_module() {
  local module="$1" version="$2"
  log "fetching ${module}@${version} through the Go module proxy ..."
  MODULE_GOMOD="$(module_download "${module}@${version}" GoMod)"
  [[ -f "${MODULE_GOMOD}" ]] || die "no go.mod for ${module}@${version}"
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

# write_wrapper_module DIR NAME MODULE VERSION GOMOD writes DIR/go.mod, the
# module dra-driver-sriov.local/NAME requiring exactly MODULE VERSION, with
# the go directive of GOMOD (that module's own go.mod). Built inside it, a
# package of MODULE gets the dependency versions of MODULE's own go.mod.
write_wrapper_module() {
  local dir="$1" name="$2" module="$3" version="$4" gomod="$5"
  mkdir -p "${dir}"
  write_file "${dir}/go.mod" <<EOF
// Generated by hack/${0##*/}; do not edit.
module dra-driver-sriov.local/${name}

go $(go_directive "${gomod}")

require ${module} ${version}
EOF
}

# go_build MODDIR OUT TAGS LDFLAGS PACKAGE... builds the packages inside the
# wrapper module MODDIR as OUT (-o: a file, or a directory ending in /), with
# the build tags TAGS (none when empty). In the background and waited for:
# bash runs a signal trap only between commands, but it does interrupt `wait`.
go_build() {
  local moddir="$1" out="$2" tags="$3" ldflags="$4" args=(-trimpath -buildvcs=false)
  shift 4
  [[ -z "${tags}" ]] || args+=(-tags "${tags}")
  (cd "${moddir}" && exec "${GO}" build "${args[@]}" -ldflags "${ldflags}" -o "${out}" "$@") &
  BUILD_PID=$!
  wait "${BUILD_PID}" || die "go build $* failed"
  BUILD_PID=""
}

# go_build_progress WHAT MODDIR OUTDIR TAGS LDFLAGS PACKAGE... builds the
# packages as go_build does, together (one `go build -o OUTDIR/`: shared
# compilation, the links running beside other work), and reports how far it
# is every DRA_SRIOV_PROGRESS_INTERVAL seconds (default 20): how many of the
# packages to compile are done (`go build -v` names each one it compiles;
# `go list -deps` says which are not in Go's build cache yet: about 1 s for
# Kubernetes), and the time so far. WHAT names them in those lines. go's
# output goes to a log in WORK_TMP; on failure its end is shown.
go_build_progress() {
  local what="$1" moddir="$2" outdir="$3" tags="$4" ldflags="$5" args=(-trimpath -buildvcs=false)
  shift 5
  [[ -z "${tags}" ]] || args+=(-tags "${tags}")
  local total golog="${WORK_TMP}/go-build.log" start=${SECONDS}
  # This also completes the wrapper module's go.mod and go.sum (-mod=mod).
  if ! total="$(cd "${moddir}" && "${GO}" list "${args[@]}" -deps -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$@" |
    awk 'NF { n++ } END { print n + 0 }')"; then
    die "go list -deps $* failed"
  fi
  log "${what}: ${total} packages to compile"
  (cd "${moddir}" && exec "${GO}" build "${args[@]}" -v -ldflags "${ldflags}" -o "${outdir}" "$@") 2>"${golog}" &
  BUILD_PID=$!
  start_progress "${what}" "${golog}" "${total}" "${start}"
  if ! wait "${BUILD_PID}"; then
    BUILD_PID=""
    stop_progress
    tail -n 40 "${golog}" >&2
    die "go build $* failed (above: the end of its output)"
  fi
  BUILD_PID=""
  stop_progress
  log "${what}: $(compiled_count "${golog}") packages compiled in $(elapsed "${start}")"
}

# compiled_count LOG: how many packages `go build -v` has named in LOG so far
# (its other lines have spaces or start with #: downloads, errors).
compiled_count() {
  grep -c -v -e ' ' -e '^#' -e '^$' "$1" || true
}

# elapsed START: the time since SECONDS was START, as 5m 07s.
elapsed() {
  local s=$((SECONDS - $1))
  printf '%dm %02ds' $((s / 60)) $((s % 60))
}

# start_progress WHAT LOG TOTAL START: in the background, every interval, one
# line with how many packages LOG names, of TOTAL, and the time since START.
start_progress() {
  local what="$1" golog="$2" total="$3" start="$4" interval="${DRA_SRIOV_PROGRESS_INTERVAL:-20}"
  local fifo
  fifo="$(mktemp -u "${WORK_TMP}/progress.XXXXXX")"
  mkfifo "${fifo}"
  (
    # It waits in `read -t` on a FIFO nobody writes to: no sleep process left
    # behind, and stop_progress's TERM ends it at once, quietly.
    trap 'exit 0' TERM
    exec 3<>"${fifo}"
    while ! read -r -t "${interval}" -u 3 _; do
      log "${what}: $(compiled_count "${golog}")/${total} packages compiled, $(elapsed "${start}")"
    done
  ) &
  PROGRESS_PID=$!
}

stop_progress() {
  [[ -n "${PROGRESS_PID}" ]] || return 0
  kill -TERM "${PROGRESS_PID}" 2>/dev/null || true
  wait "${PROGRESS_PID}" 2>/dev/null || true
  PROGRESS_PID=""
}

# install_checked BIN OUT VERSION CHECK SHOW renames the freshly built BIN to
# OUT (never a half-written OUT) once `CHECK BIN VERSION` succeeds, else dies
# with the first lines of `SHOW BIN`. Both run BIN under OUT's name (a
# symlink in WORK_TMP): version outputs may dispatch on the basename.
install_checked() {
  local bin="$1" out="$2" version="$3" check="$4" show="$5" name
  name="$(basename "${out}")"
  ln -sfn "${bin}" "${WORK_TMP}/${name}"
  "${check}" "${WORK_TMP}/${name}" "${version}" ||
    die "${name} was built but does not report ${version}: $("${show}" "${WORK_TMP}/${name}" | head -n 3)"
  mv -f "${bin}" "${out}"
}
