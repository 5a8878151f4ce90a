import { resourcePath } from "../../lib/kube/api-paths.js";

/** API group of our resources, also the DRA driver name. */
export const GROUP = "sriovnetwork.openshift.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
/**
 * The upstream driver's group: `VfConfig` parameters written for it decode unchanged, so
 * existing DeviceClasses and ResourceClaims keep working.
 */
export const UPSTREAM_GROUP = "sriovnetwork.k8snetworkplumbingwg.io";
export const UPSTREAM_API_VERSION = `${UPSTREAM_GROUP}/${VERSION}`;

/** SriovResourceFilters of one namespace, or of all namespaces. */
export const sriovResourceFiltersPath = (namespace?: string, name?: string) =>
  resourcePath(`/apis/${API_VERSION}`, "sriovresourcefilters", { namespace, name });

/** The upstream driver's SriovResourcePolicies of one namespace, or of all namespaces. */
export const sriovResourcePoliciesPath = (namespace?: string, name?: string) =>
  resourcePath(`/apis/${UPSTREAM_API_VERSION}`, "sriovresourcepolicies", { namespace, name });

/** The upstream driver's DeviceAttributes of one namespace, or of all namespaces. */
export const deviceAttributesPath = (namespace?: string, name?: string) =>
  resourcePath(`/apis/${UPSTREAM_API_VERSION}`, "deviceattributes", { namespace, name });
