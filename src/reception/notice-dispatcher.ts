/**
 * The notice dispatcher (the seed's module 135, step Sa35): tells the chosen content server about
 * each ticket before the client is answered, so that under `strict` a client can never arrive
 * before its notice. Notices to one server are gathered until the end of the current turn of the
 * event loop (`setImmediate`: every order whose request arrived in the same burst of socket reads,
 * well within a millisecond or two) and sent as one batch, which is what keeps a rush's throughput
 * up; every order in the batch waits for that batch's acknowledgement. It also sends revocations to every content server; a server that
 * cannot be reached keeps its revocations pending and gets them when it comes back up (or on
 * the next retry), until they no longer matter (past `until`).
 */
import type { Notice, Revocation } from '../protocol/internal.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { InternalClient } from './internal-client.js';

export interface NoticeDispatcher {
  /** Resolves once the server acknowledged the notice; rejects with the reason otherwise. */
  notify(serverId: string, notice: Notice): Promise<void>;
  /** Sends revocations to every server; says which got them and which will get them later. */
  revoke(revocations: readonly Revocation[]): Promise<{ notified: string[]; pending: string[] }>;
  /** Retries pending revocations for one server (it just came up) or for all. */
  retryPending(serverId?: string): Promise<void>;
  pendingCount(): number;
  /**
   * A server restarted (new instance id) and forgot everything it was told: sends it again every
   * revocation still in force and, of the notices sent to it and not expired, those `stillLive`
   * accepts. Resolves when done; failures are logged (revocations stay pending).
   */
  resendAfterRestart(serverId: string, stillLive: (notices: Notice[]) => Promise<Notice[]>): Promise<void>;
  close(): Promise<void>;
}

/** A batch this big is sent at once, without waiting for the window. */
const BATCH_MAX = 1000;

interface Batch {
  notices: Notice[];
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
  timer: NodeJS.Immediate | undefined;
}

export function buildNoticeDispatcher(deps: {
  servers: readonly string[];
  client: InternalClient;
  clock: Clock;
  logger: Logger;
}): NoticeDispatcher {
  const { client, clock, logger } = deps;
  const open = new Map<string, Batch>();
  const inFlight = new Set<Promise<unknown>>();
  const pending = new Map<string, Revocation[]>(deps.servers.map((s) => [s, []]));
  // What a content server holds only in memory, kept here until it no longer matters, so that a
  // restarted server can be told again (issue 8): revocations until `until`, notices until `exp`.
  let inForce: Revocation[] = [];
  const noticed = new Map<string, Map<string, Notice>>(deps.servers.map((s) => [s, new Map()]));
  let sinceSweep = 0;
  const sweepNoticed = () => {
    const nowS = clock.now() / 1000;
    for (const m of noticed.values()) for (const [jti, n] of m) if (n.exp <= nowS) m.delete(jti);
  };

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };

  function flush(serverId: string): void {
    const batch = open.get(serverId);
    if (!batch) return;
    open.delete(serverId);
    if (batch.timer) clearImmediate(batch.timer);
    void track(
      client.notices(serverId, batch.notices).then(
        () => {
          for (const w of batch.waiters) w.resolve();
        },
        (err: Error) => {
          for (const w of batch.waiters) w.reject(err);
        },
      ),
    );
  }

  const stillMatters = (r: Revocation) => r.until * 1000 > clock.now();

  async function sendRevocations(serverId: string, revocations: Revocation[]): Promise<boolean> {
    try {
      await track(client.revocations(serverId, revocations));
      return true;
    } catch (err) {
      logger.warn({ server: serverId, err: (err as Error).message }, 'revocation not delivered; will retry');
      const list = pending.get(serverId) ?? [];
      list.push(...revocations);
      pending.set(serverId, list);
      return false;
    }
  }

  return {
    notify(serverId, notice) {
      noticed.get(serverId)?.set(notice.jti, notice);
      if (++sinceSweep >= BATCH_MAX) {
        sinceSweep = 0;
        sweepNoticed();
      }
      return new Promise<void>((resolve, reject) => {
        let batch = open.get(serverId);
        if (!batch) {
          batch = { notices: [], waiters: [], timer: undefined };
          open.set(serverId, batch);
          batch.timer = setImmediate(() => flush(serverId));
        }
        batch.notices.push(notice);
        batch.waiters.push({ resolve, reject });
        if (batch.notices.length >= BATCH_MAX) flush(serverId);
      });
    },
    async revoke(revocations) {
      inForce = inForce.filter(stillMatters).concat(revocations.filter(stillMatters));
      const notified: string[] = [];
      const failed: string[] = [];
      await Promise.all(
        [...pending.keys()].map(async (serverId) => {
          if (await sendRevocations(serverId, [...revocations])) notified.push(serverId);
          else failed.push(serverId);
        }),
      );
      return { notified: notified.sort(), pending: failed.sort() };
    },
    async retryPending(serverId) {
      const targets = serverId === undefined ? [...pending.keys()] : [serverId];
      await Promise.all(
        targets.map(async (id) => {
          const list = (pending.get(id) ?? []).filter(stillMatters);
          pending.set(id, []);
          if (list.length > 0) await sendRevocations(id, list);
        }),
      );
    },
    async resendAfterRestart(serverId, stillLive) {
      inForce = inForce.filter(stillMatters);
      // Pending ones are in `inForce` too: sending them now is their retry.
      pending.set(serverId, []);
      if (inForce.length > 0) await sendRevocations(serverId, [...inForce]);
      sweepNoticed();
      const candidates = [...(noticed.get(serverId)?.values() ?? [])];
      const live = candidates.length > 0 ? await stillLive(candidates) : [];
      for (let i = 0; i < live.length; i += BATCH_MAX) {
        try {
          await track(client.notices(serverId, live.slice(i, i + BATCH_MAX)));
        } catch (err) {
          logger.warn(
            { server: serverId, err: (err as Error).message },
            'notices not sent again after a restart; those tickets get no_notice there',
          );
          return;
        }
      }
      logger.info(
        { server: serverId, revocations: inForce.length, notices: live.length },
        'content server restarted: revocations and notices sent again',
      );
    },
    pendingCount() {
      let n = 0;
      for (const list of pending.values()) n += list.length;
      return n;
    },
    async close() {
      for (const id of [...open.keys()]) flush(id);
      await Promise.allSettled([...inFlight]);
    },
  };
}
