/**
 * Health of one content server as the reception sees it (part of the load condition monitor 132,
 * the seed's Sa31), as a pure state machine with hysteresis: a server goes down after
 * `failuresBeforeDown` failures in a row and comes back only after two good reports in a row, so
 * one lost packet does not flap it and one lucky answer does not bring a sick server back. A
 * server that comes back ramps in: its usable capacity grows from a quarter to all of it over
 * `rampMs`, so it is not flooded with a whole rush while it warms up. A failed ticket notice (or
 * a burst of failed transfers) counts at once and also makes the server `suspect` — no new
 * tickets — until its next good report, so a rush does not keep trying a server that just failed.
 */

export type HealthStatus = 'unknown' | 'up' | 'down';

export interface HealthState {
  status: HealthStatus;
  /** Failures in a row. */
  failures: number;
  /** Good reports in a row while down. */
  successes: number;
  suspect: boolean;
  /** Whether it was ever up: only a server that was up and went down must earn its way back. */
  everUp: boolean;
  /** When the server last came back from down; its capacity ramps in from then. */
  rampFrom?: number;
  lastError?: string;
  /** When the status last changed. */
  since: number;
}

export interface HealthRules {
  failuresBeforeDown: number;
  /** Good reports in a row that bring a down server back. */
  successesBeforeUp: number;
  rampMs: number;
}

export const SUCCESSES_BEFORE_UP = 2;
const RAMP_START = 0.25;

export function initialHealth(now: number): HealthState {
  return { status: 'unknown', failures: 0, successes: 0, suspect: false, everUp: false, since: now };
}

/**
 * A good load report. A server that was never up comes up at once, with all its capacity (a
 * deployment starting: the reception often polls before the content servers listen); one that
 * was up and went down needs two good reports in a row and then ramps in.
 */
export function onGoodReport(state: HealthState, now: number, rules: HealthRules): HealthState {
  const next: HealthState = { ...state, failures: 0, suspect: false };
  delete next.lastError;
  if (!state.everUp) return { ...next, status: 'up', successes: 0, everUp: true, since: now };
  if (state.status === 'down') {
    const successes = state.successes + 1;
    if (successes < rules.successesBeforeUp) return { ...next, successes };
    return { ...next, status: 'up', successes: 0, rampFrom: now, since: now };
  }
  return next;
}

/** A failed poll, notice or transfer burst. `suspect` failures take the server out at once. */
export function onFailure(
  state: HealthState,
  now: number,
  rules: HealthRules,
  reason: string,
  suspect = false,
): HealthState {
  const failures = state.failures + 1;
  const next: HealthState = {
    ...state,
    failures,
    successes: 0,
    lastError: reason,
    suspect: state.suspect || suspect,
  };
  if (state.status !== 'down' && failures >= rules.failuresBeforeDown) {
    return { ...next, status: 'down', since: now };
  }
  return next;
}

/** Whether the server may be given new tickets at all (draining is checked separately). */
export function isUsable(state: HealthState): boolean {
  return state.status === 'up' && !state.suspect;
}

/** The capacity usable now: all of it, or a growing share while ramping in after a comeback. */
export function effectiveCapacity(
  capacity: number,
  state: HealthState,
  now: number,
  rules: HealthRules,
): number {
  if (state.rampFrom === undefined || rules.rampMs <= 0) return capacity;
  const progress = (now - state.rampFrom) / rules.rampMs;
  if (progress >= 1) return capacity;
  const share = RAMP_START + (1 - RAMP_START) * Math.max(0, progress);
  return Math.max(1, Math.floor(capacity * share));
}
