/**
 * The permission-ticket module's public face (CONTRACT §4): issuing at the reception, verifying
 * at the content servers, the URL that carries a ticket, and the address handling that binds a
 * ticket to a client. Import from here rather than from the individual files.
 */
export { addressInPrefix, isCidr, normalizeAddress, prefixOf } from './address.js';
export { type IssueRequest, type IssueSettings, issueTicket, ticketClaims } from './issue.js';
export {
  type DecryptResult,
  decryptCompact,
  encryptCompact,
  JWE_ALG,
  JWE_ENC,
  MAX_TOKEN_LENGTH,
} from './jwe.js';
export { OPENED_TICKETS_CAPACITY, OpenedTickets } from './opened-tickets.js';
export {
  type KeyRing,
  REFUSAL_CODES,
  type RefusalCode,
  type TicketClaims,
  type TicketKey,
  type TicketPolicy,
} from './types.js';
export { splitTicketPath, TICKET_PREFIX, ticketUrl } from './url.js';
export {
  checkClaims,
  parseClaims,
  type RequestFacts,
  type TicketState,
  type VerifyResult,
  type VerifySettings,
  verifyTicket,
} from './verify.js';
