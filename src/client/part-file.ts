/**
 * The sidecar beside a `.part` file (`FILE.part.json`): which reception, item and order the
 * partial bytes belong to, the last ticket, and the item's size and digest once a server stated
 * them. It is what lets a rerun of the same `rushgate get` continue the same order with `Range`
 * (CONTRACT §5). Written atomically (temp file + rename), so a kill never leaves half a sidecar;
 * an unreadable one is treated as absent.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Ticket } from './reception-api.js';

const sidecarSchema = z.object({
  version: z.literal(1),
  origin: z.string(),
  item: z.string(),
  orderId: z.string().min(1),
  ticket: z
    .object({
      id: z.string(),
      url: z.string(),
      server: z.string(),
      notBefore: z.number(),
      expiresAt: z.number(),
    })
    .optional(),
  size: z.number().int().min(0).optional(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

export interface PartRecord {
  origin: string;
  item: string;
  orderId: string;
  ticket?: Ticket;
  size?: number;
  sha256?: string;
}

export function readSidecar(file: string): PartRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = sidecarSchema.safeParse(JSON.parse(text));
    if (!parsed.success) return undefined;
    const { version: _version, ...record } = parsed.data;
    return record;
  } catch {
    return undefined;
  }
}

export function writeSidecar(file: string, record: PartRecord): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ version: 1, ...record })}\n`);
  renameSync(tmp, file);
}

export function removeQuietly(...files: string[]): void {
  for (const f of files) rmSync(f, { force: true });
}
