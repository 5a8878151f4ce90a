/**
 * REST paths of the Kubernetes resources the driver and its tools read and write, spelled
 * once. Names and namespaces are encoded as path segments: a value from the API server or
 * a user never adds a segment or a query.
 */

const segment = (value: string): string => encodeURIComponent(value);

/**
 * The path of a collection, or of one object in it: `prefix` is `/api/v1` or
 * `/apis/<group>/<version>`; a namespace scopes it when given.
 */
export function resourcePath(
  prefix: string,
  plural: string,
  scope: { namespace?: string | undefined; name?: string | undefined } = {},
): string {
  const namespace = scope.namespace === undefined ? "" : `/namespaces/${segment(scope.namespace)}`;
  const name = scope.name === undefined ? "" : `/${segment(scope.name)}`;
  return `${prefix}${namespace}/${plural}${name}`;
}

const CORE = "/api/v1";
const RESOURCE = "/apis/resource.k8s.io/v1";

export const nodesPath = (name?: string) => resourcePath(CORE, "nodes", { name });

export const resourceSlicesPath = (name?: string) =>
  resourcePath(RESOURCE, "resourceslices", { name });

export const deviceClassesPath = (name?: string) =>
  resourcePath(RESOURCE, "deviceclasses", { name });

export const resourceClaimsPath = (namespace?: string, name?: string) =>
  resourcePath(RESOURCE, "resourceclaims", { namespace, name });

export const resourceClaimTemplatesPath = (namespace?: string, name?: string) =>
  resourcePath(RESOURCE, "resourceclaimtemplates", { namespace, name });

export const leasesPath = (namespace: string, name?: string) =>
  resourcePath("/apis/coordination.k8s.io/v1", "leases", { namespace, name });

export const eventsPath = (namespace: string) =>
  resourcePath("/apis/events.k8s.io/v1", "events", { namespace });

/** One namespace's NetworkAttachmentDefinitions, or every namespace's. */
export const networkAttachmentDefinitionsPath = (namespace?: string, name?: string) =>
  resourcePath("/apis/k8s.cni.cncf.io/v1", "network-attachment-definitions", { namespace, name });

export const configMapsPath = (namespace: string, name?: string) =>
  resourcePath(CORE, "configmaps", { namespace, name });

export const podsPath = (namespace: string, name?: string) =>
  resourcePath(CORE, "pods", { namespace, name });
