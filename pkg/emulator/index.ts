/**
 * The emulated SR-IOV host: a sysfs/dev/proc tree under a root that the driver cannot tell
 * from a real kernel's, optional veth netdevs, and an emulated kernel answering writes.
 * Only the `emulate` command and tests import this.
 */
export type { HostChange } from "./changes.js";
export { HostChangeError, changeEmulatedHost, parseChangeList } from "./changes.js";
export type { BuildOptions, BuildSummary } from "./host.js";
export { MARKER_FILE, buildEmulatedHost, destroyEmulatedHost } from "./host.js";
export type { EmulatedKernelOptions } from "./kernel.js";
export { EmulatedKernel } from "./kernel.js";
export type { ExpectedInventory, ExpectedPf, ExpectedVf } from "./layout.js";
export { expectedInventory, macAddress } from "./layout.js";
export type { EmulatorLogger } from "./logger.js";
export { LINK_ALIAS_PREFIX } from "./netdevs.js";
export type {
  EswitchMode,
  HostProfile,
  LinkType,
  OtherDeviceProfile,
  PfProfile,
} from "./profile.js";
export { ProfileError, parseProfile, vfNetdevName, vfPciAddress } from "./profile.js";
export type { BuiltinProfileName } from "./profiles.js";
export { builtinProfiles, loadProfile, scaledHostProfile } from "./profiles.js";
