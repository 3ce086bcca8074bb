/**
 * `npm run bench`: every benchmark of the project, one after the other, each printing its own
 * figures measured side by side with a reference in the same run (ratios, not absolute numbers,
 * because this machine is shared and noisy). `npm run bench -- tickets` runs only the named ones.
 */
import { runAttackedRushBench } from './attacked-rush.js';
import { runContentBench } from './content.js';
import { runLineBench } from './line.js';
import { runLineHttpBench } from './line-http.js';
import { runReceptionBench } from './reception.js';
import { runRehearsalBench } from './rehearsal.js';
import { runStoreBench } from './store.js';
import { runTailLoadBench } from './tail-load.js';
import { runTicketBench } from './tickets.js';

const benches: Record<string, () => Promise<unknown>> = {
  tickets: runTicketBench,
  content: runContentBench,
  reception: runReceptionBench,
  'tail-load': runTailLoadBench,
  store: runStoreBench,
  line: runLineBench,
  'line-http': runLineHttpBench,
  rehearsal: runRehearsalBench,
  attacked: runAttackedRushBench,
};

const wanted = process.argv.slice(2);
let failed = false;
for (const [name, run] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`\n=== ${name} ===`);
  try {
    await run();
  } catch (err) {
    failed = true;
    console.error(`${name} bench failed:`, err);
  }
}
process.exitCode = failed ? 1 : 0;
