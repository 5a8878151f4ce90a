#!/usr/bin/env bash
# Builds the guest of the real-kernel test tier: a Debian kernel and an
# initramfs with busybox, the kernel modules the tier needs (igb and igbvf for
# QEMU's emulated Intel 82576 SR-IOV NIC, vfio-pci, virtio-net for the
# management NIC, 9p and overlay for the root, netdevsim for a devlink instance
# with an e-switch) and hack/real-kernel/guest-init.sh as /init. Everything comes
# from Debian's packages (apt-get download of linux-image-amd64's kernel package
# and busybox-static; depmod/modprobe of kmod resolve the modules'
# dependencies), into the cache the other build scripts use, keyed by this
# script, guest-init.sh and the packages' checksums:
#   ${DRA_SRIOV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dra-driver-sriov}/guest/<key>/
# The guest's root is the host's / (shared read-only over 9p, writes go to a
# tmpfs), so the guest runs the host's Node, the repo's dist/ and the hack/
# binaries without copying them.
#
# netdevsim (the kernel's simulated netdev with a devlink instance, the one
# device whose e-switch a guest can switch to switchdev) is not in Debian's
# kernel package (CONFIG_NETDEVSIM is not set): it is built here, out of tree,
# from the same Debian kernel's sources (linux-source-<x.y>, only
# drivers/net/netdevsim is unpacked) against its linux-headers and
# linux-kbuild packages, with gcc-12 as the kernel was. The module is unsigned:
# loading it taints the guest's kernel ("module verification failed"), which
# does not stop it (no module.sig_enforce).
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
GUEST_MODULES=(igb igbvf vfio_pci vfio_iommu_type1 virtio_pci virtio_net 9pnet_virtio 9p overlay netdevsim)
INIT_SCRIPT="${HACK_DIR}/real-kernel/guest-init.sh"

trap cleanup EXIT
trap on_signal INT TERM

# kernel_package: the versioned kernel package linux-image-amd64 depends on now.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# build_packages PACKAGE: what netdevsim is built from, for the kernel package
# PACKAGE (linux-image-6.1.0-57-amd64 6.1.192-3): its linux-headers, what those
# depend on (the -common headers and linux-kbuild-<x.y>), and linux-source-<x.y>
# of the same version, one a line as apt-get download takes them.
build_packages() {
  local package="$1" release version headers rest
  release="${package#linux-image-}"
  version="$(apt-cache show --no-all-versions "${package}" | sed -n 's/^Version: //p')"
  headers="linux-headers-${release}"
  printf '%s=%s\n' "${headers}" "${version}"
  apt-cache depends "${headers}" 2>/dev/null |
    awk -v v="${version}" '/Depends: linux-(headers-.*-common|kbuild-)/ { print $2 "=" v }'
  rest="${version#*.}"
  printf 'linux-source-%s.%s=%s\n' "${version%%.*}" "${rest%%.*}" "${version}"
}

# build_netdevsim TMP VERSION: netdevsim.ko for kernel VERSION, built from the
# packages build_packages names (downloaded into TMP), installed into
# TMP/kernel/lib/modules/VERSION/extra for depmod.
build_netdevsim() {
  local tmp="$1" version="$2" headers source
  mkdir "${tmp}/build"
  local deb
  for deb in "${tmp}"/linux-headers-*.deb "${tmp}"/linux-kbuild-*.deb; do
    dpkg-deb -x "${deb}" "${tmp}/build"
  done
  headers="${tmp}/build/usr/src/linux-headers-${version}"
  [[ -f "${headers}/Makefile" ]] || die "linux-headers-${version} has no Makefile"
  # It includes the -common headers' Makefile by its absolute path under /usr/src.
  sed -i "s|^include /usr/src/|include ${tmp}/build/usr/src/|" "${headers}/Makefile"
  source="$(find "${tmp}" -maxdepth 1 -name 'linux-source-*.deb')"
  dpkg-deb --fsys-tarfile "${source}" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
    tar -xJ -C "${tmp}/build" --wildcards '*/drivers/net/netdevsim'
  local dir
  dir="$(find "${tmp}/build" -maxdepth 4 -type d -path '*/drivers/net/netdevsim')"
  [[ -f "${dir}/Makefile" ]] || die "no drivers/net/netdevsim in ${source##*/}"
  log "building netdevsim for ${version} (out of tree, gcc-12)"
  make -s -C "${headers}" M="${dir}" CONFIG_NETDEVSIM=m -j "$(nproc)" modules >&2 ||
    die "building netdevsim failed (gcc-12, make and libelf1 are needed: hack/prereqs.sh installs them)"
  install -D -m 0644 "${dir}/netdevsim.ko" "${tmp}/kernel/lib/modules/${version}/extra/netdevsim.ko"
}

main() {
  parse_build_args "$@"
  local package
  package="$(kernel_package)"
  [[ -n "${package}" ]] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
  local -a build_debs
  mapfile -t build_debs < <(build_packages "${package}")
  [[ ${#build_debs[@]} -eq 4 ]] || die "cannot name the packages netdevsim is built from: ${build_debs[*]}"
  local key
  key="$({
    sha256sum "${BASH_SOURCE[0]}" "${INIT_SCRIPT}" | cut -d' ' -f1
    apt-cache show --no-all-versions "${package}" busybox-static "${build_debs[@]}" | sed -n 's/^SHA256: //p'
  } | sha256sum | cut -c1-16)"
  local dir="${CACHE_ROOT}/guest/${key}"
  if [[ -f "${dir}/vmlinuz" && -f "${dir}/initramfs.cpio" ]]; then
    printf 'GUEST_KERNEL=%s\nGUEST_INITRAMFS=%s\n' "${dir}/vmlinuz" "${dir}/initramfs.cpio"
    return 0
  fi
  ${CHECK_ONLY} && exit 1
  for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio make gcc-12; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is missing (hack/prereqs.sh installs it)"
  done

  mkdir -p "${CACHE_ROOT}/guest"
  local tmp
  tmp="$(mktemp -d "${CACHE_ROOT}/guest/.build.XXXXXX")"
  TMP_PATHS+=("${tmp}")
  log "downloading ${package}, busybox-static and ${build_debs[*]} (apt-get download)"
  (cd "${tmp}" && apt-get download -q "${package}" busybox-static "${build_debs[@]}" >&2) ||
    die "apt-get download ${package} busybox-static ${build_debs[*]} failed"
  mkdir "${tmp}/kernel" "${tmp}/busybox" "${tmp}/initramfs"
  dpkg-deb -x "${tmp}"/linux-image-*.deb "${tmp}/kernel"
  dpkg-deb -x "${tmp}"/busybox-static_*.deb "${tmp}/busybox"
  local version
  version="$(ls "${tmp}/kernel/lib/modules")"
  [[ "${version}" =~ ^[0-9][0-9A-Za-z.+_-]*$ ]] || die "unexpected module directory in ${package}: ${version}"
  build_netdevsim "${tmp}" "${version}"
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
