import { describe, expect, it } from "vitest";
import type { KubeRequest } from "../../lib/kube/client.js";
import { listAll } from "./list.js";

/** A collection of `total` items served in pages, recording each request. */
function pagedServer(total: number, answer?: unknown) {
  const requests: KubeRequest[] = [];
  return {
    requests,
    client: {
      request: <T>(request: KubeRequest): Promise<T> => {
        requests.push(request);
        if (answer !== undefined) return Promise.resolve(answer as T);
        const start = Number(request.query?.["continue"] ?? 0);
        const end = Math.min(total, start + Number(request.query?.["limit"]));
        const items = Array.from({ length: end - start }, (_, i) => ({ n: start + i }));
        return Promise.resolve({
          items,
          metadata: end < total ? { continue: String(end) } : {},
        } as T);
      },
    },
  };
}

describe("listAll", () => {
  it("follows continue tokens until the last page, keeping the query", async () => {
    const server = pagedServer(1200);
    const items = await listAll(server.client, "/api/v1/nodes", { fieldSelector: "a=b" });
    expect(items).toHaveLength(1200);
    expect(items[1199]).toEqual({ n: 1199 });
    expect(server.requests.map((r) => r.query)).toEqual([
      { fieldSelector: "a=b", limit: 500, continue: undefined },
      { fieldSelector: "a=b", limit: 500, continue: "500" },
      { fieldSelector: "a=b", limit: 500, continue: "1000" },
    ]);
  });

  it("refuses more objects than its bound, saying what to narrow", async () => {
    await expect(listAll(pagedServer(1200).client, "/x", {}, 1000)).rejects.toThrow(
      "GET /x: more than 1000 objects; narrow the query (a NODE, -n)",
    );
  });

  it.each([[null], [{ items: "many" }], [[1, 2]]])(
    "refuses an answer that is not a list: %j",
    async (answer) => {
      await expect(listAll(pagedServer(0, answer).client, "/x")).rejects.toThrow(
        "GET /x: the answer is not a list",
      );
    },
  );
});
