/**
 * The waiting line as an in-process order-statistic index: the `memory:` store's line, and the
 * `sqlite:` store's index over its `line` table (rebuilt from the table at open). Every operation
 * is O(log N) in the line's length N, and `front(k)` is O(k):
 *
 * - a Fenwick (binary indexed) tree over slots gives a position (a rank) in O(log N): each entry
 *   takes the next slot when it joins, a slot counts 1 while its entry is in line, 0 after. Slots
 *   are renumbered densely (compaction) when they run out, at most once per N joins, so the cost
 *   is amortized O(1) per join and memory stays O(N) however many have passed through;
 * - a doubly linked list in line order gives the front without skipping the holes left by those
 *   who left from the middle;
 * - a min-heap of (lastSeenAt, entry) pushed on every join and touch gives the least recently seen
 *   for abandonment sweeps. Outdated items are skipped when they surface (each item carries the
 *   entry's touch stamp) and the heap is rebuilt once it holds more than twice the line, so it
 *   stays O(N) too. A heap rather than a FIFO queue because callers' clocks may step back.
 *
 * Pure data structure, no I/O. Entries handed out are copies.
 */
import type { LineEntry, PlaceInLine } from './types.js';

interface Node {
  entry: LineEntry;
  /** 0-based Fenwick slot (renumbered by compaction). */
  slot: number;
  prev: Node | undefined;
  next: Node | undefined;
  /** Bumped on every touch: only the heap item with the current stamp is live. */
  stamp: number;
  live: boolean;
}

interface SeenItem {
  at: number;
  seq: number;
  stamp: number;
  node: Node;
}

const MIN_SLOTS = 1024;

function copy(e: LineEntry): LineEntry {
  return { ...e };
}

export class LineIndex {
  private readonly byToken = new Map<string, Node>();
  private head: Node | undefined;
  private tail: Node | undefined;
  /** Fenwick tree, 1-based: tree[i] covers slots (i - lowbit(i), i]. */
  private tree = new Int32Array(MIN_SLOTS + 1);
  private nextSlot = 0;
  private seen: SeenItem[] = [];

  get size(): number {
    return this.byToken.size;
  }

  has(token: string): boolean {
    return this.byToken.has(token);
  }

  seqOf(token: string): number | undefined {
    return this.byToken.get(token)?.entry.seq;
  }

  get(token: string): LineEntry | undefined {
    const node = this.byToken.get(token);
    return node ? copy(node.entry) : undefined;
  }

  /** 1-based rank, or undefined when not in line. */
  position(token: string): number | undefined {
    const node = this.byToken.get(token);
    return node ? this.prefix(node.slot + 1) : undefined;
  }

  /** Appends an entry; its `seq` must exceed every seq added before (the stores assign them so). */
  add(entry: LineEntry): number {
    if (this.byToken.has(entry.token)) throw new Error(`line token ${entry.token} already in line`);
    if (this.tail && entry.seq <= this.tail.entry.seq) throw new Error('line seq must grow');
    if (this.nextSlot >= this.tree.length - 1) this.compact(this.byToken.size + 1);
    const node: Node = {
      entry: copy(entry),
      slot: this.nextSlot++,
      prev: this.tail,
      next: undefined,
      stamp: 0,
      live: true,
    };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.byToken.set(entry.token, node);
    this.bump(node.slot, 1);
    this.pushSeen(node);
    return this.byToken.size;
  }

  /** The entry and its 1-based rank, in one lookup (a poll at 100,000 waiting is cache-bound). */
  find(token: string): PlaceInLine | undefined {
    const node = this.byToken.get(token);
    return node ? { entry: copy(node.entry), position: this.prefix(node.slot + 1) } : undefined;
  }

  /** As `find`, after setting `lastSeenAt`. */
  touch(token: string, now: number): PlaceInLine | undefined {
    const node = this.byToken.get(token);
    if (!node) return undefined;
    node.entry.lastSeenAt = now;
    node.stamp++;
    this.pushSeen(node);
    return { entry: copy(node.entry), position: this.prefix(node.slot + 1) };
  }

  setHeld(token: string, heldSince: number | undefined): boolean {
    const node = this.byToken.get(token);
    if (!node) return false;
    if (heldSince === undefined) delete node.entry.heldSince;
    else node.entry.heldSince = heldSince;
    return true;
  }

  remove(token: string): LineEntry | undefined {
    const node = this.byToken.get(token);
    if (!node) return undefined;
    this.byToken.delete(token);
    node.live = false;
    this.bump(node.slot, -1);
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    // Outdated heap items may still point here: let them keep this node alive, not its neighbours.
    node.prev = undefined;
    node.next = undefined;
    return copy(node.entry);
  }

  /** The first `limit` entries, earliest first. */
  front(limit: number): LineEntry[] {
    const out: LineEntry[] = [];
    for (let n = this.head; n && out.length < limit; n = n.next) out.push(copy(n.entry));
    return out;
  }

  /**
   * Up to `limit` entries last seen before `seenBefore`, least recently seen first (ties by
   * seq), without removing them: the caller removes what it swept (the sqlite store first
   * deletes them in its transaction). O(k log N) plus the outdated items it discards.
   */
  stale(seenBefore: number, limit: number): LineEntry[] {
    const found: SeenItem[] = [];
    while (found.length < limit && this.seen.length > 0) {
      const top = this.seen[0]!;
      if (top.at >= seenBefore) break;
      this.popSeen();
      if (top.node.live && top.stamp === top.node.stamp) found.push(top);
    }
    // Still in line until the caller removes them; their items go back meanwhile.
    for (const item of found) this.pushItem(item);
    return found.map((i) => copy(i.node.entry));
  }

  // ── Fenwick tree ──────────────────────────────────────────────────────────────────────────

  private bump(slot: number, delta: number): void {
    for (let i = slot + 1; i < this.tree.length; i += i & -i) this.tree[i]! += delta;
  }

  private prefix(count: number): number {
    let sum = 0;
    for (let i = count; i > 0; i -= i & -i) sum += this.tree[i]!;
    return sum;
  }

  /** Renumbers the live entries 0..N-1 in line order, with room for at least `room` more. */
  private compact(room: number): void {
    const slots = Math.max(MIN_SLOTS, 2 * (this.byToken.size + room));
    const tree = new Int32Array(slots + 1);
    let slot = 0;
    for (let n = this.head; n; n = n.next) {
      n.slot = slot++;
      tree[slot] = 1;
    }
    // Linear-time construction: each cell passes its sum to its parent.
    for (let i = 1; i <= slots; i++) {
      const parent = i + (i & -i);
      if (parent <= slots) tree[parent]! += tree[i]!;
    }
    this.tree = tree;
    this.nextSlot = slot;
  }

  // ── Heap by lastSeenAt ────────────────────────────────────────────────────────────────────

  private pushSeen(node: Node): void {
    // Outdated items (touched since, or gone) are only dropped when they surface; past twice the
    // line the heap is rebuilt from the live entries, which N pushes at least pay for.
    // The node is linked already, so a rebuild includes it.
    if (this.seen.length >= 2 * this.byToken.size + MIN_SLOTS) {
      this.rebuildSeen();
      return;
    }
    this.pushItem({ at: node.entry.lastSeenAt, seq: node.entry.seq, stamp: node.stamp, node });
  }

  private rebuildSeen(): void {
    this.seen = [];
    for (let n = this.head; n; n = n.next) {
      this.pushItem({ at: n.entry.lastSeenAt, seq: n.entry.seq, stamp: n.stamp, node: n });
    }
  }

  private before(a: SeenItem, b: SeenItem): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private pushItem(item: SeenItem): void {
    const h = this.seen;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i]!, h[parent]!)) break;
      const t = h[i]!;
      h[i] = h[parent]!;
      h[parent] = t;
      i = parent;
    }
  }

  private popSeen(): void {
    const h = this.seen;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      const t = h[i]!;
      h[i] = h[m]!;
      h[m] = t;
      i = m;
    }
  }
}
