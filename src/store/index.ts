/**
 * The reception's store, public face: the interface, the backends and `openStore`. Import from
 * here rather than from the individual files.
 */
export { createMemoryStore } from './memory.js';
export { type OpenStoreOptions, openStore } from './open.js';
export { isOutstanding, orderStatusOf } from './rules.js';
export type {
  AppliedEvent,
  Broadcast,
  CreateOrderResult,
  JoinResult,
  LineEntry,
  NewOrder,
  OrderRecord,
  OrderStatus,
  PlaceInLine,
  Purchase,
  PurgeResult,
  ReserveLimits,
  ReserveResult,
  Store,
  TicketRecord,
  TicketStatus,
  TransferEventType,
} from './types.js';
export { OUTSTANDING } from './types.js';
export { isStoreUnavailable } from './unavailable.js';
