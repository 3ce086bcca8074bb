/**
 * The content server's public face for the rest of the code base (the CLI's `content` and `up`
 * commands, tests, benchmarks): build one with `buildContentServer`, start it, stop it.
 */

export { type Clock, systemClock } from '../util/clock.js';
export { buildContentServer, type ContentServer, type ContentServerOptions, ListenError } from './app.js';
