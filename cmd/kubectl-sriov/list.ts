import type { KubeClient, Query } from "../../lib/kube/client.js";

/** Objects read per request. */
const PAGE_SIZE = 500;
/** More than this of one kind is refused rather than held in memory and printed. */
export const MAX_LISTED = 20_000;

/**
 * Every object of a collection, page by page, checked to be a list; at most `max`,
 * beyond which it fails with what to narrow.
 */
export async function listAll(
  client: Pick<KubeClient, "request">,
  path: string,
  query: Query = {},
  max = MAX_LISTED,
): Promise<unknown[]> {
  const items: unknown[] = [];
  let token: string | undefined;
  do {
    const page = await client.request<unknown>({
      method: "GET",
      path,
      query: { ...query, limit: PAGE_SIZE, continue: token },
    });
    const record =
      typeof page === "object" && page !== null ? (page as Record<string, unknown>) : {};
    const pageItems = record["items"];
    if (!Array.isArray(pageItems)) throw new Error(`GET ${path}: the answer is not a list`);
    items.push(...pageItems);
    if (items.length > max) {
      throw new Error(`GET ${path}: more than ${max} objects; narrow the query (a NODE, -n)`);
    }
    const metadata = record["metadata"];
    const next =
      typeof metadata === "object" && metadata !== null
        ? (metadata as Record<string, unknown>)["continue"]
        : undefined;
    token = typeof next === "string" && next !== "" ? next : undefined;
  } while (token !== undefined);
  return items;
}
