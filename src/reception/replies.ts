/**
 * How the reception's HTTP apps answer errors: the contract's shape `{"error": {"code",
 * "message"}}` with the registry's status, `Cache-Control: no-store`, and a mapping from
 * fastify's own errors (body too large, not JSON, malformed JSON or URL) to registry codes, so
 * that no framework message or stack ever reaches a client.
 */
import type { FastifyError, FastifyReply } from 'fastify';
import { ERRORS, type ErrorCode, errorBody, RushgateError } from '../errors.js';
import type { Logger } from '../util/log.js';

/** Retry-After of a `store_unavailable` answer: a restarted store is reconnected within ~1 s. */
export const STORE_RETRY_AFTER_SECONDS = 2;

export function sendError(reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  if (code === 'store_unavailable') reply.header('retry-after', String(STORE_RETRY_AFTER_SECONDS));
  return reply
    .code(ERRORS[code].status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send(errorBody(code, message));
}

const FRAMEWORK_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_BAD_URL: 'bad_request',
  FST_ERR_ASYNC_CONSTRAINT: 'bad_request',
};

/** The error handler both apps install. */
export function errorHandler(logger: Logger) {
  return (err: FastifyError, _req: unknown, reply: FastifyReply) => {
    // A registry error thrown below a route (the store away: store_unavailable) is answered as
    // itself, with the registry's message: a driver's message never reaches a client.
    if (err instanceof RushgateError) return sendError(reply, err.code);
    const code = (err.code && FRAMEWORK_CODES[err.code]) || undefined;
    if (code) return sendError(reply, code);
    if (err.statusCode === 413) return sendError(reply, 'body_too_large');
    if (err.statusCode === 415) return sendError(reply, 'unsupported_media_type');
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, 'bad_request');
    }
    logger.error({ err }, 'unexpected error answering a request');
    return sendError(reply, 'internal_error');
  };
}
