/**
 * The service files of docs/DEPLOYING.md, checked as far as this machine allows: the compose
 * deployment file passes the schema; the systemd units pass `systemd-analyze verify` (skipped,
 * saying so, when it is not installed); the Dockerfile builds (skipped, saying so, when no Docker
 * daemon answers). The page embeds each file verbatim, and that is checked too, so the page and
 * the files cannot drift apart.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { REPO_ROOT } from '../helpers/proc.js';

const file = (p: string) => readFileSync(path.join(REPO_ROOT, p), 'utf8');
const UNITS = ['deploy/systemd/rushgate-reception.service', 'deploy/systemd/rushgate-content@.service'];
const EMBEDDED = ['Dockerfile', 'deploy/compose/compose.yaml', 'deploy/compose/deployment.yaml', ...UNITS];

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
}

test('docs/DEPLOYING.md embeds every service file verbatim', () => {
  const page = file('docs/DEPLOYING.md');
  for (const f of EMBEDDED)
    assert.ok(page.includes(file(f).trim()), `${f} is not in docs/DEPLOYING.md as it is`);
});

test('the compose deployment file is valid (HTTPS on every public listener, Redis store)', () => {
  const config = parseConfig(file('deploy/compose/deployment.yaml'), {
    env: { TICKET_KEY: Buffer.alloc(32, 7).toString('base64url'), INTERNAL_TOKEN: 'x'.repeat(24) },
  });
  assert.equal(config.contentServers.length, 3);
  assert.ok(config.reception.tls);
  assert.ok(config.contentServers.every((s) => s.tls && s.publicUrl.startsWith('https://')));
  assert.match(config.reception.store, /^redis:\/\//);
});

const analyze = has('systemd-analyze', ['--version']);
test('the systemd units pass systemd-analyze verify', {
  skip: analyze ? false : 'systemd-analyze is not installed: units not verified',
}, () => {
  // Verified as they would be installed, with this checkout standing in for /opt/rushgate (verify
  // checks that ExecStart's program exists) and the user switched to root (no rushgate user here).
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-units-'));
  try {
    const paths: string[] = [];
    for (const unit of UNITS) {
      const text = file(unit)
        .replaceAll('/usr/bin/node', process.execPath)
        .replaceAll('/opt/rushgate', REPO_ROOT)
        .replace(/^(User|Group)=.*$/gm, '$1=root');
      const name = path.basename(unit).replace('@.service', '@a.service');
      const out = path.join(dir, name);
      writeFileSync(out, text);
      paths.push(out);
    }
    const r = spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8', timeout: 60_000 });
    // verify prints problems of the units it was given on stderr; unrelated system units it loads
    // on the way may complain too, so only lines naming our files count.
    const ours = (r.stderr ?? '').split('\n').filter((l) => l.includes('rushgate-'));
    assert.deepEqual(ours, [], r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const docker = has('docker', ['info']);
test('the Dockerfile builds', {
  skip: docker ? false : 'no Docker daemon answers `docker info`: Dockerfile not built',
  timeout: 900_000,
}, () => {
  const tag = `rushgate-test:${process.pid}`;
  try {
    execFileSync('docker', ['build', '-t', tag, REPO_ROOT], { stdio: 'inherit', timeout: 900_000 });
    const help = execFileSync('docker', ['run', '--rm', tag, '--help'], { encoding: 'utf8' });
    assert.match(help, /reception/);
    const user = execFileSync('docker', ['run', '--rm', '--entrypoint', 'id', tag, '-u'], {
      encoding: 'utf8',
    });
    assert.notEqual(user.trim(), '0', 'runs as a non-root user');
  } finally {
    spawnSync('docker', ['rmi', '-f', tag], { stdio: 'ignore' });
  }
});
