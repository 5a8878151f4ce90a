#!/usr/bin/env bash
# Builds the guest of the real-kernel test tier: a Debian kernel and an
# initramfs with busybox, the kernel modules the tier needs (igb and igbvf for
# QEMU's emulated Intel 82576 SR-IOV NIC, vfio-pci, virtio-net for the
# management NIC, 9p and overlay for the root) and hack/real-kernel/guest-init.sh
# as /init. Everything comes from Debian's packages (apt-get download of
# linux-image-amd64's kernel package and busybox-static; depmod/modprobe of
# kmod resolve the modules' dependencies), into the cache the other build
# scripts use, keyed by this script, guest-init.sh and the kernel's version:
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/guest/<key>/
# The guest's root is the host's / (shared read-only over 9p, writes go to a
# tmpfs), so the guest runs the host's Node, the repo's dist/ and the hack/
# binaries without copying them.
#
# Usage: hack/real-kernel/build-guest.sh [--check]
#   --check   build nothing; exit 0 when the guest is cached, 1 otherwise.
#
# On success stdout carries exactly two lines, for scripts to eval:
#   GUEST_KERNEL=...
#   GUEST_INITRAMFS=...
# Progress goes to stderr.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/build.sh
source "${HACK_DIR}/lib/build.sh"

# The modules the guest loads, with what they depend on (modprobe --show-depends).
GUEST_MODULES=(igb igbvf vfio_pci vfio_iommu_type1 virtio_pci virtio_net 9pnet_virtio 9p overlay)
INIT_SCRIPT="${HACK_DIR}/real-kernel/guest-init.sh"

trap cleanup EXIT
trap on_signal INT TERM

# kernel_package: the versioned kernel package linux-image-amd64 depends on now.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

main() {
  parse_build_args "$@"
  local package
  package="$(kernel_package)"
  [[ -n "${package}" ]] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
  local key
  key="$({
    sha256sum "${BASH_SOURCE[0]}" "${INIT_SCRIPT}" | cut -d' ' -f1
    apt-cache show --no-all-versions "${package}" busybox-static | sed -n 's/^SHA256: //p'
  } | sha256sum | cut -c1-16)"
  local dir="${CACHE_ROOT}/guest/${key}"
  if [[ -f "${dir}/vmlinuz" && -f "${dir}/initramfs.cpio" ]]; then
    printf 'GUEST_KERNEL=%s\nGUEST_INITRAMFS=%s\n' "${dir}/vmlinuz" "${dir}/initramfs.cpio"
    return 0
  fi
  ${CHECK_ONLY} && exit 1
  for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is missing (hack/prereqs.sh installs it)"
  done

  mkdir -p "${CACHE_ROOT}/guest"
  local tmp
  tmp="$(mktemp -d "${CACHE_ROOT}/guest/.build.XXXXXX")"
  TMP_PATHS+=("${tmp}")
  log "downloading ${package} and busybox-static (apt-get download)"
  (cd "${tmp}" && apt-get download -q "${package}" busybox-static >&2) || die "apt-get download ${package} busybox-static failed"
  mkdir "${tmp}/kernel" "${tmp}/busybox" "${tmp}/initramfs"
  dpkg-deb -x "${tmp}"/linux-image-*.deb "${tmp}/kernel"
  dpkg-deb -x "${tmp}"/busybox-static_*.deb "${tmp}/busybox"
  local version
  version="$(ls "${tmp}/kernel/lib/modules")"
  [[ "${version}" =~ ^[0-9][0-9A-Za-z.+_-]*$ ]] || die "unexpected module directory in ${package}: ${version}"
  depmod -b "${tmp}/kernel" "${version}"

  local root="${tmp}/initramfs" module path
  mkdir -p "${root}/bin" "${root}/modules" "${root}/proc" "${root}/sys" "${root}/dev"
  cp "${tmp}/busybox/bin/busybox" "${root}/bin/busybox"
  install -m 0755 "${INIT_SCRIPT}" "${root}/init"
  : >"${root}/modules/order"
  for module in "${GUEST_MODULES[@]}"; do
    modprobe -d "${tmp}/kernel" -S "${version}" --show-depends "${module}" |
      awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r path; do
    cp "${path}" "${root}/modules/"
    basename "${path}" >>"${root}/modules/order"
  done
  for module in "${GUEST_MODULES[@]}"; do
    grep -q "^${module//_/[-_]}\.ko" "${root}/modules/order" || die "module ${module} is not in ${package}"
  done
  (cd "${root}" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"${tmp}/initramfs.cpio")
  cp "${tmp}/kernel/boot/vmlinuz-${version}" "${tmp}/vmlinuz"
  mkdir "${tmp}/out"
  mv "${tmp}/vmlinuz" "${tmp}/initramfs.cpio" "${tmp}/out/"
  rm -rf -- "${dir}"
  mv "${tmp}/out" "${dir}"
  log "guest: kernel ${version}, $(wc -l <"${root}/modules/order") modules, initramfs $(du -h "${dir}/initramfs.cpio" | cut -f1)"
  printf 'GUEST_KERNEL=%s\nGUEST_INITRAMFS=%s\n' "${dir}/vmlinuz" "${dir}/initramfs.cpio"
}

main "$@"
