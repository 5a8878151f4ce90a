import { isIP } from "node:net";
import { string, type Refinement } from "../schema/index.js";

/*
 * String formats shared by our types. Patterns must mean the same in JavaScript and in
 * RE2 (the API server checks CRD patterns with Go's regexp): no lookaround, no `\s`.
 */

export const hexId = string({
  pattern: { regex: /^[0-9a-fA-F]{4}$/, hint: '4 hex digits, e.g. "8086"' },
});

export const pciAddress = string({
  pattern: {
    regex: /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]$/,
    hint: 'a PCI address domain:bus:device.function, e.g. "0000:3b:02.1"',
  },
});

/** Longest resourceName: leaves room within the 64-character DRA attribute string limit. */
export const MAX_RESOURCE_NAME_LENGTH = 63;

/** The SR-IOV device plugin's resource name format. */
export const resourceName = string({
  pattern: { regex: /^[A-Za-z0-9_.-]+$/, hint: 'made of letters, digits, "_", "-" and "."' },
  maxLength: MAX_RESOURCE_NAME_LENGTH,
});

export const dnsLabel = string({
  pattern: {
    regex: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    hint: 'a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit',
  },
  maxLength: 63,
});

export const dnsSubdomain = string({
  pattern: {
    regex: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    hint: 'a DNS subdomain: DNS labels (lower-case letters, digits and "-") joined by "."',
  },
  maxLength: 253,
});

export const labelValue = string({
  pattern: {
    regex: /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/,
    hint: 'a label value: letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
  },
  maxLength: 63,
});

/** `eth0`, or `eth0#0-3,8`: VF indices of that PF, as the SR-IOV device plugin accepts them. */
export const pfSelector = string({
  pattern: {
    regex: /^[^\t\n\v\f\r /:#]{1,15}(#[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/,
    hint: 'a PF interface name, optionally with VF indices, e.g. "eth0" or "eth0#0-3,8"',
  },
  maxLength: 128,
});

/** `0000:86:00.0`, or `0000:86:00.0#0-1,3`: VF indices of the PF at that address, as the SR-IOV device plugin accepts them. */
export const rootDeviceSelector = string({
  pattern: {
    regex:
      /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7](#[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/,
    hint: 'a PF PCI address, optionally with VF indices, e.g. "0000:86:00.0" or "0000:86:00.0#0-3,8"',
  },
  maxLength: 128,
});

export const numaNode = string({
  pattern: {
    regex: /^(-1|0|[1-9][0-9]{0,3})$/,
    hint: 'a NUMA node number, e.g. "0" ("-1": PFs without NUMA information)',
  },
});

export const kernelDriver = string({
  pattern: { regex: /^[A-Za-z0-9_.-]+$/, hint: 'a kernel driver name, e.g. "vfio-pci"' },
  maxLength: 64,
});

/** The kernel's own rule (`dev_valid_name`): IFNAMSIZ is 16 bytes including the NUL. */
const MAX_IFNAME_BYTES = 15;
// What the kernel refuses in a name ("/", ":", whitespace), what no C string can carry or a
// terminal should print (control characters), and "%", which `ip link` and the kernel's
// name allocation take as a template ("net%d").
// The kernel's isspace() is ASCII: space, and \t \n \v \f \r among the control characters.
// One character class, the same in JavaScript and RE2 (the admission policy's CEL).
const IFNAME_FORBIDDEN_CLASS = "[/:% \\x00-\\x1f\\x7f]";
const IFNAME_FORBIDDEN = new RegExp(IFNAME_FORBIDDEN_CLASS);

/** A string as JSON shows it, DEL escaped too. */
function quoted(text: string): string {
  return JSON.stringify(text).replaceAll("\x7f", "\\u007f");
}

export const interfaceNameRule: Refinement<string> = {
  description: `a Linux interface name: 1-${MAX_IFNAME_BYTES} bytes, no "/", ":", "%", whitespace or control characters, not "." or ".."`,
  cel:
    `size(bytes(self)) >= 1 && size(bytes(self)) <= ${MAX_IFNAME_BYTES} && ` +
    `self != '.' && self != '..' && !self.matches('${IFNAME_FORBIDDEN_CLASS.replaceAll("\\", "\\\\")}')`,
  check(name) {
    const bytes = Buffer.byteLength(name, "utf8");
    if (bytes === 0) return "must not be empty";
    if (bytes > MAX_IFNAME_BYTES) {
      return `must be at most ${MAX_IFNAME_BYTES} bytes (the kernel's limit); "${name}" has ${bytes}`;
    }
    if (name === "." || name === "..") return `must not be "${name}"`;
    const forbidden = IFNAME_FORBIDDEN.exec(name);
    if (forbidden !== null) {
      const why = forbidden[0] === "%" ? " (the kernel reads it as a name template)" : "";
      return `must not contain ${quoted(forbidden[0])}${why}; got ${quoted(name)}`;
    }
    return undefined;
  },
};

/** `10.56.217.10/24` or `fd00::10/64`: an address with its prefix length, as CNI takes it. */
export const ipCidrRule: Refinement<string> = {
  description: 'an IP address with its prefix length, e.g. "10.56.217.10/24" or "fd00::10/64"',
  // Kubernetes' CEL network library (isCIDR takes an address with host bits set, as we do).
  cel: "isCIDR(self)",
  check(value) {
    const [address = "", prefix, ...rest] = value.split("/");
    const family = isIP(address);
    const bits = Number(prefix);
    if (
      family === 0 ||
      rest.length > 0 ||
      prefix === undefined ||
      !/^[0-9]{1,3}$/.test(prefix) ||
      bits > (family === 4 ? 32 : 128)
    ) {
      return `must be an IP address with a prefix length; got ${JSON.stringify(value)}`;
    }
    return undefined;
  },
};

/** A unicast Ethernet MAC address, `02:00:00:aa:bb:01`. */
export const macAddress = string({
  pattern: {
    regex: /^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$/,
    hint: 'a unicast MAC address, six hex pairs joined by ":", e.g. "02:00:00:aa:bb:01"',
  },
});
