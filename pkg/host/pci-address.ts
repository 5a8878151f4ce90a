/**
 * PCI addresses in the kernel's sysfs spelling, `DDDD:BB:DD.F` (domain, bus, device, function),
 * and the SR-IOV routing-id arithmetic that places VFs relative to their PF.
 */
export interface PciAddress {
  domain: number;
  bus: number;
  device: number;
  function: number;
}

const PCI_ADDRESS = /^([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/;

export function parsePciAddress(text: string): PciAddress {
  const match = PCI_ADDRESS.exec(text);
  if (!match) {
    throw new Error(`"${text}" is not a PCI address of the form 0000:3b:02.1 (lower-case hex)`);
  }
  const [, domain, bus, device, fn] = match as unknown as [string, string, string, string, string];
  const address = {
    domain: parseInt(domain, 16),
    bus: parseInt(bus, 16),
    device: parseInt(device, 16),
    function: parseInt(fn, 10),
  };
  if (address.device > 0x1f) {
    throw new Error(`"${text}" has device number ${address.device}, above the PCI maximum of 31`);
  }
  return address;
}

export function isPciAddress(text: string): boolean {
  return PCI_ADDRESS.test(text) && parseInt(text.slice(8, 10), 16) <= 0x1f;
}

export function formatPciAddress(address: PciAddress): string {
  const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");
  return `${hex(address.domain, 4)}:${hex(address.bus, 2)}:${hex(address.device, 2)}.${address.function}`;
}

/** Routing id = bus << 8 | device << 3 | function (PCIe "requester id"). */
export function routingId(address: PciAddress): number {
  return (address.bus << 8) | (address.device << 3) | address.function;
}

export function fromRoutingId(domain: number, id: number): PciAddress {
  if (id < 0 || id > 0xffff) {
    throw new Error(`routing id ${id} is outside the 16-bit PCI range`);
  }
  return { domain, bus: id >> 8, device: (id >> 3) & 0x1f, function: id & 0x7 };
}

/** Address of VF `index` per the SR-IOV rule: rid(VF n) = rid(PF) + offset + n × stride. */
export function vfAddress(
  pf: PciAddress,
  offset: number,
  stride: number,
  index: number,
): PciAddress {
  return fromRoutingId(pf.domain, routingId(pf) + offset + index * stride);
}
