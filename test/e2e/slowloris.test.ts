/**
 * Slowloris (issue 10): a client that sends its headers a byte at a time, and one that sends its
 * body a byte at a time, are cut off on every listener of real `rushgate reception` and
 * `rushgate content` processes, while an honest client is served meanwhile. The listener
 * timeouts are shortened through the environment (src/util/listener-timeouts.ts) so the test stays
 * bounded; before them, Node's and fastify's defaults let such a client hold its socket for a
 * minute or more, which the bounded wait here does not allow.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { serverOf } from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../helpers/proc.js';

const env = {
  RUSHGATE_HEADERS_TIMEOUT_MS: '1000',
  RUSHGATE_REQUEST_TIMEOUT_MS: '2000',
  RUSHGATE_KEEPALIVE_TIMEOUT_MS: '1000',
};

let dep: TestDeployment;
let reception: Proc;
let content: Proc;

before(async () => {
  dep = await makeDeployment({ servers: 1 });
  dep.writeItem('/hello.txt', 'hello\n', 'a');
  content = startRushgate(['content', '--config', dep.configPath, '--id', 'a'], { env });
  await waitForHttp(`${serverOf(dep.config, 'a').internalUrl}/healthz`, { proc: content });
  reception = startRushgate(['reception', '--config', dep.configPath], { env });
  await waitForHttp(`${dep.config.reception.internalUrl}/healthz`, { proc: reception });
});

after(async () => {
  await reception?.kill('SIGKILL');
  await content?.kill('SIGKILL');
  dep?.cleanup();
});

/**
 * Opens a socket to `url` and writes `head` then `drip` one byte every 100 ms, forever; resolves
 * with how many drip bytes went out once the server closes the socket, or rejects after 20 s
 * (a failure guard: the timeouts under test are 1–2 s).
 */
function slowClient(url: string, head: string, drip: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port) });
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${url}: still connected after 20 s of a byte per 100 ms`));
    }, 20_000);
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write(drip[sent++ % drip.length] as string);
      }, 100);
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve(sent);
    });
  });
}

function listeners() {
  const s = serverOf(dep.config, 'a');
  return [
    { name: 'reception public', url: dep.config.reception.publicUrl, honest: '/healthz' },
    { name: 'reception internal', url: dep.config.reception.internalUrl, honest: '/healthz' },
    { name: 'content public', url: s.publicUrl, honest: '/hello.txt' },
    { name: 'content internal', url: s.internalUrl, honest: '/healthz' },
  ];
}

describe('slowloris', () => {
  for (const kind of ['headers', 'body'] as const) {
    test(`a client sending its ${kind} a byte at a time is cut off on every listener; honest clients are served meanwhile`, async () => {
      const results = await Promise.all(
        listeners().map(async (l) => {
          const host = new URL(l.url).host;
          const slow =
            kind === 'headers'
              ? slowClient(l.url, `GET ${l.honest} HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `, 'abcdefgh')
              : slowClient(
                  l.url,
                  `POST /api/orders HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
                    'Content-Length: 10000\r\n\r\n{"item": "',
                  'aaaaaaaa',
                );
          // While the slow client holds its socket, an honest one is answered.
          const honest = await fetch(`${l.url}${l.honest}`);
          await honest.arrayBuffer();
          assert.ok(honest.status < 500 || honest.status === 503, `${l.name}: honest client answered`);
          const sent = await slow;
          return { name: l.name, sent, honest: honest.status };
        }),
      );
      for (const r of results) assert.ok(r.sent < 200, `${r.name}: cut off after ${r.sent} bytes`);
    });
  }
});
