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
 * - a min-heap by (lastSeenAt, seq) gives the least recently seen for abandonment sweeps. It
 *   keeps one live item per entry, keyed by a lower bound of its lastSeenAt, as the retention
 *   queue does (time-queue.ts): a touch only moves the entry's time forward, and a sweep
 *   that pops an entry seen since puts it back under its true time, so each such push follows at
 *   least one touch (amortized O(log N) per touch, paid by the sweep). Only a clock that steps
 *   back makes a touch push (callers' clocks may; that is also why a heap and not a FIFO queue).
 *   The item it replaces is skipped when it surfaces, as are those of entries gone (each item
 *   carries the entry's stamp), and the heap keeps only its live items once it holds more than
 *   twice the line, so it stays O(N) too.
 *
 * Why: a poll (`touch`) at 100,000 waiting is bound by cache misses and the garbage collector,
 * not by instructions (bench/line.ts). A heap item per touch was an object that outlived the poll
 * (promoted to the old generation by the scavenges), and as numbers in arrays still meant a
 * compaction that reads every item's node; now a touch allocates only the copy it returns and
 * reaches one object, the entry's node, which holds the entry's fields.
 *
 * Pure data structure, no I/O. Entries handed out are copies.
 */
import type { LineEntry, PlaceInLine } from './types.js';

/** A waiter: its entry's fields, and its place in the index. */
interface Node {
  token: string;
  seq: number;
  joinedAt: number;
  lastSeenAt: number;
  firstEstimateSeconds: number;
  heldSince: number | undefined;
  dueAt: number | undefined;
  /** 0-based slot (renumbered by compaction). */
  slot: number;
  prev: Node | undefined;
  next: Node | undefined;
  /** Bumped when the entry is pushed anew: only the heap item with the current stamp is live. */
  stamp: number;
  live: boolean;
}

const MIN_SLOTS = 1024;

function entryOf(n: Node): LineEntry {
  const e: LineEntry = {
    token: n.token,
    seq: n.seq,
    joinedAt: n.joinedAt,
    lastSeenAt: n.lastSeenAt,
    firstEstimateSeconds: n.firstEstimateSeconds,
  };
  if (n.heldSince !== undefined) e.heldSince = n.heldSince;
  if (n.dueAt !== undefined) e.dueAt = n.dueAt;
  return e;
}

export class LineIndex {
  private readonly byToken = new Map<string, Node>();
  private head: Node | undefined;
  private tail: Node | undefined;
  /** Fenwick tree, 1-based: tree[i] covers slots (i - lowbit(i), i]. */
  private tree = new Int32Array(MIN_SLOTS + 1);
  private nextSlot = 0;
  private readonly seen = new SeenHeap();

  get size(): number {
    return this.byToken.size;
  }

  has(token: string): boolean {
    return this.byToken.has(token);
  }

  seqOf(token: string): number | undefined {
    return this.byToken.get(token)?.seq;
  }

  get(token: string): LineEntry | undefined {
    const node = this.byToken.get(token);
    return node ? entryOf(node) : undefined;
  }

  /** 1-based rank, or undefined when not in line. */
  position(token: string): number | undefined {
    const node = this.byToken.get(token);
    return node ? this.prefix(node.slot + 1) : undefined;
  }

  /** Appends an entry; its `seq` must exceed every seq added before (the stores assign them so). */
  add(entry: LineEntry): number {
    if (this.byToken.has(entry.token)) throw new Error(`line token ${entry.token} already in line`);
    if (this.tail && entry.seq <= this.tail.seq) throw new Error('line seq must grow');
    if (this.nextSlot >= this.tree.length - 1) this.compact(this.byToken.size + 1);
    const node: Node = {
      token: entry.token,
      seq: entry.seq,
      joinedAt: entry.joinedAt,
      lastSeenAt: entry.lastSeenAt,
      firstEstimateSeconds: entry.firstEstimateSeconds,
      heldSince: entry.heldSince,
      dueAt: entry.dueAt,
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
    return node ? { entry: entryOf(node), position: this.prefix(node.slot + 1) } : undefined;
  }

  /** As `find`, after setting `lastSeenAt` (and `dueAt`, when given). */
  touch(token: string, now: number, dueAt?: number): PlaceInLine | undefined {
    const node = this.byToken.get(token);
    if (!node) return undefined;
    const back = now < node.lastSeenAt;
    node.lastSeenAt = now;
    if (dueAt !== undefined) node.dueAt = dueAt;
    // Moving forward keeps the heap's key a lower bound; a step back needs an item of its own.
    if (back) {
      node.stamp++;
      this.pushSeen(node);
    }
    return { entry: entryOf(node), position: this.prefix(node.slot + 1) };
  }

  setHeld(token: string, heldSince: number | undefined): boolean {
    const node = this.byToken.get(token);
    if (!node) return false;
    node.heldSince = heldSince;
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
    return entryOf(node);
  }

  /** The first `limit` entries, earliest first. */
  front(limit: number): LineEntry[] {
    const out: LineEntry[] = [];
    for (let n = this.head; n && out.length < limit; n = n.next) out.push(entryOf(n));
    return out;
  }

  /**
   * Up to `limit` entries last seen before `seenBefore`, least recently seen first (ties by
   * seq), without removing them: the caller removes what it swept (the sqlite store first
   * deletes them in its transaction). O(k log N), plus the items it discards (outdated) or puts
   * back under a later time (seen since), which the leaves and touches before it pay for.
   */
  stale(seenBefore: number, limit: number): LineEntry[] {
    const found: Node[] = [];
    const heap = this.seen;
    while (found.length < limit && heap.size > 0 && heap.topAt() < seenBefore) {
      const { node, at, stamp } = heap.pop();
      if (!node.live || stamp !== node.stamp) continue;
      if (node.lastSeenAt > at) heap.push(node);
      else found.push(node);
    }
    // Still in line until the caller removes them; their items go back meanwhile.
    for (const node of found) heap.push(node);
    return found.map(entryOf);
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

  // ── Seen order ────────────────────────────────────────────────────────────────────────────

  private pushSeen(node: Node): void {
    // Outdated items (touched since, or gone) are only dropped when they surface; past twice the
    // line the heap keeps only its live items, which the N pushes since the last time pay for.
    if (this.seen.size >= 2 * this.byToken.size + MIN_SLOTS) {
      this.seen.retain((n, stamp) => n.live && stamp === n.stamp);
    }
    this.seen.push(node);
  }
}

/**
 * Nodes by (lastSeenAt, seq) as they were when pushed, with the node's stamp then: a binary
 * min-heap in parallel arrays (numbers stay unboxed in them, so a push allocates nothing that
 * lives on).
 */
class SeenHeap {
  private at: number[] = [];
  private seq: number[] = [];
  private stamp: number[] = [];
  private nodes: Node[] = [];

  get size(): number {
    return this.nodes.length;
  }

  topAt(): number {
    return this.at[0]!;
  }

  push(node: Node): void {
    this.at.push(node.lastSeenAt);
    this.seq.push(node.seq);
    this.stamp.push(node.stamp);
    this.nodes.push(node);
    this.siftUp(this.nodes.length - 1);
  }

  /** Removes the least item; the heap must not be empty. */
  pop(): { node: Node; at: number; stamp: number } {
    const top = { node: this.nodes[0]!, at: this.at[0]!, stamp: this.stamp[0]! };
    const last = this.nodes.length - 1;
    this.move(last, 0);
    this.dropLast();
    if (last > 0) this.siftDown(0);
    return top;
  }

  /** Keeps only the items `keep` accepts, in O(size). */
  retain(keep: (node: Node, stamp: number) => boolean): void {
    let kept = 0;
    for (let i = 0; i < this.nodes.length; i++) {
      if (keep(this.nodes[i]!, this.stamp[i]!)) this.move(i, kept++);
    }
    this.truncate(kept);
    // Floyd's construction: sift down every inner item, last first.
    for (let i = (kept >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private before(a: number, b: number): boolean {
    return this.at[a]! < this.at[b]! || (this.at[a] === this.at[b] && this.seq[a]! < this.seq[b]!);
  }

  private move(from: number, to: number): void {
    this.at[to] = this.at[from]!;
    this.seq[to] = this.seq[from]!;
    this.stamp[to] = this.stamp[from]!;
    this.nodes[to] = this.nodes[from]!;
  }

  private swap(a: number, b: number): void {
    const at = this.at[a]!;
    const seq = this.seq[a]!;
    const stamp = this.stamp[a]!;
    const node = this.nodes[a]!;
    this.move(b, a);
    this.at[b] = at;
    this.seq[b] = seq;
    this.stamp[b] = stamp;
    this.nodes[b] = node;
  }

  private dropLast(): void {
    this.at.pop();
    this.seq.pop();
    this.stamp.pop();
    this.nodes.pop();
  }

  private truncate(length: number): void {
    this.at.length = length;
    this.seq.length = length;
    this.stamp.length = length;
    this.nodes.length = length;
  }

  private siftUp(start: number): void {
    for (let i = start; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(start: number): void {
    const n = this.nodes.length;
    for (let i = start; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.before(l, m)) m = l;
      if (r < n && this.before(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
