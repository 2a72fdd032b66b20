/**
 * What an IdP says back, with what the call sent cut out. Some IdPs quote
 * the request they refused in `error`, `error_description` or a challenge:
 * the token or code it carried, the client secret, the Basic header that
 * secret went in, a signed client assertion or DPoP proof.
 */
import { formEncode } from './client-auth.js'

/** What one call to an IdP carried that must never be quoted back into a log. */
export interface CallSecrets {
  /** The refresh token, code, verifier or secret the call carried: redacted wherever the IdP echoes it. */
  readonly secrets?: readonly (string | undefined)[]
  /** The client id, which a Basic header joins with the secret before encoding them (RFC 6749 §2.3.1). */
  readonly clientId?: string
}

const REDACTED = '[redacted]'

/**
 * A JWS or JWE in compact serialization (RFC 7515 §7.1, RFC 7516 §7.1): a
 * client assertion (RFC 7523), a DPoP proof (RFC 9449), a token. Its
 * header is base64url JSON, so it starts `eyJ` (`{"`); one cut short after
 * its second part is taken too.
 */
const COMPACT_JOSE = /eyJ[\w-]*(?:\.[\w-]*){1,4}/g

/**
 * `value` with the call's secrets, in every form the IdP may echo them,
 * and any JWS or JWE cut out. Done before the text is shortened: a cut
 * could leave part of one.
 */
export function redactEchoes(value: unknown, call: CallSecrets): string {
  let text = String(value ?? '')
  for (const secret of call.secrets ?? []) {
    if (!secret || secret.length < 8) continue
    text = text.split(secret).join(REDACTED)
    for (const form of echoForms(secret, call.clientId)) text = text.replace(form, REDACTED)
  }
  return text.replace(COMPACT_JOSE, REDACTED)
}

/**
 * The encoded forms in which an IdP may echo a secret it received in a form
 * body or a Basic header: percent-encoded (encodeURIComponent's set,
 * WHATWG application/x-www-form-urlencoded's, or oauth4webapi's, which
 * also escapes `-_.!~*'()`; `+` for a space), with the hex digits in
 * either case (RFC 3986 §2.1); and, with the client id, the base64 of a
 * Basic header's `id:secret`, each encoded so or not at all, its padding
 * optional.
 */
function echoForms(secret: string, clientId: string | undefined): RegExp[] {
  const component = encodeURIComponent(secret)
  const percent = new Set([
    component,
    component.replaceAll('%20', '+'),
    formEncode(secret),
    strictFormEncode(secret),
  ])
  percent.delete(secret)
  const forms = [...percent].map(
    (form) =>
      new RegExp(
        literal(form).replace(
          /%([0-9A-F])([0-9A-F])/g,
          (_, a: string, b: string) => `%[${a}${a.toLowerCase()}][${b}${b.toLowerCase()}]`,
        ),
        'g',
      ),
  )
  if (clientId === undefined) return forms
  const basic = new Set(
    // formEncode is what the gateway sends (client-auth.ts).
    [(s: string) => s, formEncode, strictFormEncode].map((encode) =>
      Buffer.from(`${encode(clientId)}:${encode(secret)}`)
        .toString('base64')
        .replace(/=+$/, ''),
    ),
  )
  return [...forms, ...[...basic].map((form) => new RegExp(`${literal(form)}={0,2}`, 'g'))]
}

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** oauth4webapi's `ClientSecretBasic` encoding: encodeURIComponent, then `-_.!~*'()` escaped too and `+` for a space. */
function strictFormEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%20', '+')
}
