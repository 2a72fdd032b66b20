import type { FastifyLoggerOptions } from 'fastify'
import type { PinoLoggerOptions } from 'fastify/types/logger.js'
import type { GatehouseConfig } from '../config/types.js'

/**
 * Pino options. Requests are logged by path only: query strings carry
 * authorization codes, states and logout handles. Headers that carry
 * credentials are redacted wherever they appear.
 */
export function loggerOptions(config: GatehouseConfig): FastifyLoggerOptions & PinoLoggerOptions {
  return {
    level: config.logging.level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
        '*.access_token',
        '*.refresh_token',
        '*.id_token',
        '*.accessToken',
        '*.refreshToken',
        '*.idToken',
        '*.client_secret',
        '*.clientSecret',
        '*.code',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req(request: { method?: string; url?: string }) {
        const url = request.url ?? ''
        const q = url.indexOf('?')
        return { method: request.method, path: q === -1 ? url : url.slice(0, q) }
      },
    },
  }
}
