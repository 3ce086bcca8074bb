/**
 * Checks, before `rushgate up` starts anything, that every listen address of the deployment is
 * free, so that a taken port is reported once, by name, with exit 2 — instead of a child that
 * crashes and is restarted forever.
 */
import { createServer } from 'node:net';
import type { Config } from '../config/schema.js';
import { parseListen } from '../config/schema.js';

export interface ListenSpec {
  /** Where it comes from in the deployment file, e.g. `contentServers[1].listen (b)`. */
  name: string;
  address: string;
}

export function listenSpecs(config: Config): ListenSpec[] {
  return [
    { name: 'reception.listen', address: config.reception.listen },
    { name: 'reception.internalListen', address: config.reception.internalListen },
    ...config.contentServers.flatMap((s, i) => [
      { name: `contentServers[${i}].listen (${s.id})`, address: s.listen },
      { name: `contentServers[${i}].internalListen (${s.id})`, address: s.internalListen },
    ]),
  ];
}

/** The specs whose address cannot be bound now, each with the reason (EADDRINUSE, EACCES, …). */
export async function unavailableListens(specs: ListenSpec[]): Promise<(ListenSpec & { reason: string })[]> {
  const problems: (ListenSpec & { reason: string })[] = [];
  const seen = new Map<string, string>();
  for (const spec of specs) {
    const parsed = parseListen(spec.address);
    if (!parsed || parsed.port === 0) continue;
    const key = `${parsed.host}:${parsed.port}`;
    const twin = seen.get(key);
    if (twin) {
      problems.push({ ...spec, reason: `also used by ${twin}` });
      continue;
    }
    seen.set(key, spec.name);
    const reason = await tryBind(parsed.host, parsed.port);
    if (reason) problems.push({ ...spec, reason });
  }
  return problems;
}

function tryBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EADDRINUSE' ? 'in use' : (err.code ?? err.message)),
    );
    srv.listen({ host, port, exclusive: true }, () => {
      srv.close(() => resolve(undefined));
    });
  });
}
