/**
 * A min-heap of order ids by a lower bound of their last activity: the `memory:` store's index
 * for retention. The sweep pops only the orders that may be due, so no tick scans every order;
 * push and pop are O(log n). Each order is in the heap once (pushed at creation, pushed back by
 * the sweep when it is not due yet).
 */
export class ActivityQueue {
  private readonly at: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(activeAt: number, id: string): void {
    this.at.push(activeAt);
    this.ids.push(id);
    let i = this.ids.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent]! <= this.at[i]!) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** The earliest entry when it is at or before `bound`, removed; else undefined. */
  popAtOrBefore(bound: number): { activeAt: number; id: string } | undefined {
    if (this.ids.length === 0 || this.at[0]! > bound) return undefined;
    const top = { activeAt: this.at[0]!, id: this.ids[0]! };
    const lastAt = this.at.pop()!;
    const lastId = this.ids.pop()!;
    if (this.ids.length > 0) {
      this.at[0] = lastAt;
      this.ids[0] = lastId;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.ids.length && this.at[l]! < this.at[m]!) m = l;
        if (r < this.ids.length && this.at[r]! < this.at[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private swap(a: number, b: number): void {
    const at = this.at[a]!;
    this.at[a] = this.at[b]!;
    this.at[b] = at;
    const id = this.ids[a]!;
    this.ids[a] = this.ids[b]!;
    this.ids[b] = id;
  }
}
