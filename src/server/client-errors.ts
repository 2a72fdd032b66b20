import { type ServerResponse, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { type ErrorCode, errorCatalogue } from '../errors.js'

type ParserError = Error & { code?: string }
type Connection = Duplex & { _httpMessage?: ServerResponse | null }

/** What Node's own refusal is, in the catalogue's words. */
function codeOf(err: ParserError): ErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'GATEHOUSE_ERR_REQUEST_TIMEOUT'
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'GATEHOUSE_ERR_HEADERS_TOO_LARGE'
  return 'GATEHOUSE_ERR_MALFORMED_REQUEST'
}

/**
 * Fastify's `clientErrorHandler`: the answer to a request Node's parser
 * refuses before any route or hook sees it (a malformed request line or
 * header, a header block over `server.maxHeaderSize`, a request slower
 * than `server.requestTimeout`). Fastify's own is a JSON body of another
 * shape (`{"error":"Bad Request","message":"Client Error","statusCode":400}`),
 * the one answer an SPA could not switch on by `error`. The log line names
 * the parser's reason only: the error carries the refused request's bytes
 * (`rawPacket`), a cookie among them. The connection always closes: the
 * parser cannot tell where the next request would start.
 */
export function answerClientError(this: FastifyInstance, err: ParserError, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const code = codeOf(err)
  this.log.debug({ code, parserError: err.code }, 'request refused by the HTTP parser')
  // A request timed out while its answer streams (a slow upload beside a
  // fast download): a second head in the middle of that answer would be
  // read as its body, so the connection just closes, as Node's own does.
  const answering = (socket as Connection)._httpMessage
  if (socket.writable && !answering?.headersSent) {
    const spec = errorCatalogue[code]
    const body = JSON.stringify({ error: spec.error, message: spec.message })
    socket.write(
      `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status]}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        'cache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroy()
}
