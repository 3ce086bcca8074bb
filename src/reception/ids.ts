/**
 * Random ids for orders, tickets and queue-token nonces: 128 bits each, base64url (22
 * characters), unguessable — an order id alone lets one ask for a fresh ticket. Random bytes are
 * drawn in blocks, one call per 256 ids: on a rush's hot path one `randomBytes` call per id costs
 * more than everything else an order does in memory. The pool is read forward only, so no bytes
 * are ever handed out twice.
 */
import { randomBytes } from 'node:crypto';

const ID_BYTES = 16;
const POOL_BYTES = ID_BYTES * 256;

export function idSource(): () => string {
  let pool = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + ID_BYTES > pool.length) {
      pool = randomBytes(POOL_BYTES);
      offset = 0;
    }
    offset += ID_BYTES;
    return pool.toString('base64url', offset - ID_BYTES, offset);
  };
}
