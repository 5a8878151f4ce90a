import { interfaceNameRule } from "../../api/v1alpha1/formats.js";
import { ClaimError } from "./claim-error.js";
import { interfaceNamesOf, type PreparedClaim } from "./prepared-claim.js";

export interface InterfaceRequest {
  request: string;
  /** Set by a VfConfig; undefined: pick the next free default name. */
  ifName: string | undefined;
}

/**
 * Interface names that prepared claims of the same pods already use, mapped to the claim
 * that holds each (`namespace/name`). A claim being re-prepared does not count.
 */
export function interfaceNamesInPods(
  claims: ReadonlyMap<string, PreparedClaim>,
  podUids: readonly string[],
  exceptClaimUid: string,
): Map<string, string> {
  const taken = new Map<string, string>();
  for (const [uid, claim] of claims) {
    if (uid === exceptClaimUid || !claim.podUids.some((pod) => podUids.includes(pod))) continue;
    for (const name of claim.devices.flatMap(interfaceNamesOf)) {
      taken.set(name, `${claim.namespace}/${claim.name}`);
    }
  }
  return taken;
}

/**
 * Interface names for a claim's VFs, in order: a VfConfig's ifName as given, else the
 * lowest free `<prefix><n>` (n from 1) not used by the pod or by this claim. Explicit
 * names must be unique within the pod.
 */
export function assignInterfaceNames(
  requests: readonly InterfaceRequest[],
  taken: ReadonlyMap<string, string>,
  prefix: string,
): string[] {
  const explicitOwner = new Map<string, string>();
  for (const { request, ifName } of requests) {
    if (ifName === undefined) continue;
    const holder = taken.get(ifName);
    if (holder !== undefined) {
      throw new ClaimError(
        `ifName "${ifName}" (request ${request}) is already used in the pod by claim ${holder}: give this VF another ifName`,
      );
    }
    const sibling = explicitOwner.get(ifName);
    if (sibling !== undefined) {
      throw new ClaimError(
        `ifName "${ifName}" is set for two VFs of the claim (requests ${sibling} and ${request}): an ifName names one interface; set it per request, or leave it out to get ${prefix}1, ${prefix}2, ...`,
      );
    }
    explicitOwner.set(ifName, request);
  }
  const used = new Set([...taken.keys(), ...explicitOwner.keys()]);
  let next = 1;
  return requests.map(({ ifName }) => {
    if (ifName !== undefined) return ifName;
    while (used.has(`${prefix}${next}`)) next++;
    const name = `${prefix}${next}`;
    const problem = interfaceNameRule.check(name);
    if (problem !== undefined) {
      throw new ClaimError(
        `default interface name "${name}" ${problem}: shorten the driver's interface prefix "${prefix}" or set ifName in the VfConfig`,
      );
    }
    used.add(name);
    return name;
  });
}
