/**
 * Which content servers may serve which item, from their catalogs (part of the load condition
 * monitor 132). Items are known only from the catalogs; there is no list of items at the
 * reception. The majority rule keeps a client from being sent to a copy that differs from the
 * others (a half-synced mirror, a corrupted disk): for each path, the (size, sha-256) held by the
 * most servers wins, and a server whose copy differs is not used for that item. With no strict
 * majority (one against one), the copy of the server listed first in the deployment file wins,
 * so the choice is stable and an operator can predict it. Every exclusion keeps its reason, for
 * the dashboard. Pure: built from catalogs, no I/O.
 */
import type { CatalogEntry } from '../protocol/internal.js';

export interface ItemCopy {
  size: number;
  sha256: string;
}

export interface Exclusion {
  server: string;
  path: string;
  reason: string;
}

export interface ItemIndex {
  /** Servers whose copy of the item agrees with the majority, in deployment order. */
  holders(path: string): readonly string[];
  /** Why a server holding the item is not used for it, if it is not. */
  exclusion(path: string, server: string): string | undefined;
  /** Every exclusion, for the dashboard. */
  readonly exclusions: readonly Exclusion[];
  readonly itemCount: number;
}

const describe = (c: ItemCopy) => `${c.size} bytes, sha-256 ${c.sha256.slice(0, 12)}…`;

/** `catalogs` in deployment order; servers whose catalog is not known yet are simply absent. */
export function buildItemIndex(
  serverOrder: readonly string[],
  catalogs: ReadonlyMap<string, ReadonlyMap<string, ItemCopy>>,
): ItemIndex {
  const copies = new Map<string, { server: string; copy: ItemCopy }[]>();
  for (const server of serverOrder) {
    const catalog = catalogs.get(server);
    if (!catalog) continue;
    for (const [path, copy] of catalog) {
      let list = copies.get(path);
      if (!list) {
        list = [];
        copies.set(path, list);
      }
      list.push({ server, copy });
    }
  }
  const holders = new Map<string, string[]>();
  const excluded = new Map<string, Map<string, string>>();
  const exclusions: Exclusion[] = [];
  for (const [path, list] of copies) {
    const votes = new Map<string, { copy: ItemCopy; servers: string[] }>();
    for (const { server, copy } of list) {
      const key = `${copy.size}:${copy.sha256}`;
      const v = votes.get(key);
      if (v) v.servers.push(server);
      else votes.set(key, { copy, servers: [server] });
    }
    if (votes.size === 1) {
      holders.set(
        path,
        list.map((l) => l.server),
      );
      continue;
    }
    // Map iteration follows insertion, i.e. deployment order, so on a tie the first listed wins.
    let winner: { copy: ItemCopy; servers: string[] } | undefined;
    let tied = false;
    for (const v of votes.values()) {
      if (!winner || v.servers.length > winner.servers.length) {
        winner = v;
        tied = false;
      } else if (v.servers.length === winner.servers.length) {
        tied = true;
      }
    }
    if (!winner) continue;
    holders.set(path, winner.servers);
    const reasons = new Map<string, string>();
    for (const v of votes.values()) {
      if (v === winner) continue;
      for (const server of v.servers) {
        const reason = tied
          ? `copy (${describe(v.copy)}) differs from server ${winner.servers[0]}'s (${describe(winner.copy)}) and there is no majority; the first listed server's copy is used`
          : `copy (${describe(v.copy)}) differs from the majority's (${describe(winner.copy)}, held by ${winner.servers.join(', ')})`;
        reasons.set(server, reason);
        exclusions.push({ server, path, reason });
      }
    }
    excluded.set(path, reasons);
  }
  return {
    holders: (path) => holders.get(path) ?? [],
    exclusion: (path, server) => excluded.get(path)?.get(server),
    exclusions,
    itemCount: holders.size,
  };
}

export function catalogMap(entries: readonly CatalogEntry[]): Map<string, ItemCopy> {
  return new Map(entries.map((e) => [e.path, { size: e.size, sha256: e.sha256 }]));
}
