/**
 * A min-heap of ids by a time: what the stores pop when something may be due, so that no tick
 * scans every record. Push and pop are O(log n). The `memory:` store keeps its orders in one by
 * a lower bound of their last activity (retention: each order once, pushed at creation and
 * pushed back by the sweep when it is not due yet), and both in-process stores keep their
 * outstanding tickets in one by deadline (deadline-index.ts).
 */
export class TimeQueue {
  private readonly at: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(at: number, id: string): void {
    this.at.push(at);
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
  popAtOrBefore(bound: number): { at: number; id: string } | undefined {
    if (this.ids.length === 0 || this.at[0]! > bound) return undefined;
    const top = { at: this.at[0]!, id: this.ids[0]! };
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
