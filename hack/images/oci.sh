# shellcheck shell=bash disable=SC2034 # PACKED_* and the settings are for the scripts that source this
# OCI image packing shared by hack/images/build.sh (the test images) and
# hack/images/build-driver.sh (the driver's image): directories in, one OCI
# image layout packed as a tar archive out (what `ctr images import` reads).
# Source it after hack/lib/common.sh (log, die); it defines functions and
# runs nothing. The callers set BUILD_TMP (scratch space, removed on exit).
#
# Reproducible: every file gets the time ${EPOCH}, owner 0:0 (or the owner
# PACK_OWNERS names), the archive members are sorted, gzip -n stores no name
# or time, and the image config has no "created". The same inputs give the
# same bytes, so the scripts that source this hash it into their cache keys.

# Every file in the images gets this modification time (2000-01-01T00:00:00Z).
EPOCH=946684800

# Paths of a layer (relative, like "home/nonroot") with an owner other than
# 0:0, as "PATH UID GID" (a directory gets the owner, not its content).
PACK_OWNERS=()
# One history comment per layer, in layer order; the image name when unset.
PACK_COMMENTS=()
# gzip's level for the layers: 9 for the small test images; 6 for large layers
# (a 126 MB Node.js binary: 3x faster, 0.6 % larger).
PACK_GZIP_LEVEL=9

# go_arch: the OCI platform architecture of this machine.
go_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armv7l) echo arm ;;
    ppc64le | s390x | riscv64) uname -m ;;
    *) die "unsupported machine $(uname -m)" ;;
  esac
}

sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

size_of() {
  stat -c %s "$1"
}

# json_str STRING: STRING as a JSON string (our inputs have no control characters).
# As hack/lib/common.sh's, but kept here: it shapes the image bytes, and the
# cache keys hash this file, not the libraries.
json_str() {
  local s="${1//\\/\\\\}"
  printf '"%s"' "${s//\"/\\\"}"
}

# json_array STRING...: a JSON array of strings.
json_array() {
  local sep="" s out="["
  for s in "$@"; do
    out+="${sep}$(json_str "${s}")"
    sep=","
  done
  printf '%s]' "${out}"
}

# blob LAYOUT FILE: moves FILE into LAYOUT's blob store and prints its digest.
blob() {
  local layout="$1" file="$2" digest
  digest="$(sha256_of "${file}")"
  mv -f "${file}" "${layout}/blobs/sha256/${digest}"
  printf 'sha256:%s' "${digest}"
}

# layer_tar ROOTFS OUT: ROOTFS as a plain tar, sorted, with fixed times and
# owners. The paths of PACK_OWNERS that ROOTFS has come last, with theirs.
layer_tar() {
  local rootfs="$1" out="$2" entry path uid gid
  local common=(--format=ustar --mtime="@${EPOCH}" --numeric-owner --no-acls --no-xattrs --no-selinux)
  local excludes=() owned=()
  for entry in "${PACK_OWNERS[@]}"; do
    read -r path uid gid <<<"${entry}"
    [[ -e "${rootfs}/${path}" || -L "${rootfs}/${path}" ]] || continue
    excludes+=("--exclude=./${path}")
    owned+=("${entry}")
  done
  tar --create --file="${out}" --directory="${rootfs}" --sort=name "${common[@]}" \
    --owner=0 --group=0 --anchored "${excludes[@]}" .
  for entry in "${owned[@]}"; do
    read -r path uid gid <<<"${entry}"
    tar --append --file="${out}" --directory="${rootfs}" --no-recursion "${common[@]}" \
      --owner="${uid}" --group="${gid}" "./${path}"
  done
}

# pack_image NAME CONFIG_JSON_FRAGMENT OUT ROOTFS...: one OCI layout with the
# image NAME, one layer per ROOTFS (a directory, bottom layer first), packed
# as the tar archive OUT.
#   CONFIG_JSON_FRAGMENT the image config's "config" object (Entrypoint, Env, ...)
# Sets PACKED_DIGEST (the manifest's digest), PACKED_LAYOUT (the unpacked
# layout, in BUILD_TMP) and PACKED_LAYERS (the layer blobs, bottom first).
pack_image() {
  local name="$1" config="$2" out="$3"
  shift 3
  (($# > 0)) || die "pack_image ${name}: no layer"
  local work layout arch tag script
  work="$(mktemp -d "${BUILD_TMP}/pack.XXXXXX")"
  layout="${work}/layout"
  arch="$(go_arch)"
  tag="${name##*:}"
  script="${0##*/}"
  mkdir -p "${layout}/blobs/sha256"

  # Each layer: a plain tar of its ROOTFS (the diff, whose digest is the
  # diff_id), then gzip'ed without name or time stamp (the layer digest).
  local rootfs i=0 diff_id layer_digest layer_size total=0 comment
  local diff_ids=() layers=() history=()
  PACKED_LAYERS=()
  for rootfs in "$@"; do
    layer_tar "${rootfs}" "${work}/layer.tar"
    diff_id="sha256:$(sha256_of "${work}/layer.tar")"
    total=$((total + $(size_of "${work}/layer.tar")))
    gzip "-${PACK_GZIP_LEVEL}" -n -c "${work}/layer.tar" >"${work}/layer.tar.gz"
    rm -f "${work}/layer.tar"
    layer_size="$(size_of "${work}/layer.tar.gz")"
    layer_digest="$(blob "${layout}" "${work}/layer.tar.gz")"
    comment="${PACK_COMMENTS[i]:-${name}}"
    diff_ids+=("\"${diff_id}\"")
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"${layer_digest}\",\"size\":${layer_size}}")
    history+=("{\"created_by\":$(json_str "dra-driver-sriov hack/images/${script}"),\"comment\":$(json_str "${comment}")}")
    PACKED_LAYERS+=("${layout}/blobs/sha256/${layer_digest#sha256:}")
    i=$((i + 1))
  done
  local IFS=,

  # The image config (OCI image-spec config.md). No "created": the same
  # inputs give the same digest.
  printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
    "${arch}" "${config}" "${diff_ids[*]}" "${history[*]}" >"${work}/config.json"
  local config_size config_digest
  config_size="$(size_of "${work}/config.json")"
  config_digest="$(blob "${layout}" "${work}/config.json")"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "${config_digest}" "${config_size}" "${layers[*]}" >"${work}/manifest.json"
  local manifest_size manifest_digest
  manifest_size="$(size_of "${work}/manifest.json")"
  manifest_digest="$(blob "${layout}" "${work}/manifest.json")"

  # index.json names the image twice: the OCI annotation carries only the
  # tag, as the image-layout spec suggests (`ctr images import --base-name
  # <repository>` completes it); containerd's own annotation carries the
  # full name, which its importer prefers.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":%s,"org.opencontainers.image.ref.name":%s}}]}' \
    "${manifest_digest}" "${manifest_size}" "${arch}" "$(json_str "${name}")" "$(json_str "${tag}")" >"${layout}/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"${layout}/oci-layout"

  tar --create --file="${out}" --directory="${layout}" \
    --format=ustar --sort=name --mtime="@${EPOCH}" \
    --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux \
    oci-layout index.json blobs
  log "packed ${name}: manifest ${manifest_digest}, ${#PACKED_LAYERS[@]} layer(s), ${total} bytes unpacked"
  PACKED_DIGEST="${manifest_digest}"
  PACKED_LAYOUT="${layout}"
}
