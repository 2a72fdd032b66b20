/** RFC 9110 §5.6.2 token characters, one or more. */
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+"
/** A parameter's value: a token, or a quoted string of token characters, any of them escaped (RFC 6455 §9.1). */
const VALUE = `(?:${TOKEN}|"(?:[!#$%&'*+\\-.^_\`|~0-9A-Za-z]|\\\\[!#$%&'*+\\-.^_\`|~0-9A-Za-z])+")`
const EXTENSION = `${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}(?:=${VALUE})?)*`
/**
 * RFC 6455 §9.1's `Sec-WebSocket-Extensions` grammar, as `ws` reads it: no
 * whitespace around `=`, none but spaces and tabs elsewhere. Linear: no
 * two adjacent parts share a character.
 */
const EXTENSION_LIST = new RegExp(`^${EXTENSION}(?:[ \\t]*,[ \\t]*${EXTENSION})*$`)

/** RFC 7692 §7.1.2: a window of 2^8 to 2^15 bytes. */
const windowBits = (value: string | true): boolean => {
  const bits = +value
  return Number.isInteger(bits) && bits >= 8 && bits <= 15
}

/** RFC 7692 §7.1: what each permessage-deflate parameter may hold, in an offer to a server. */
const PARAMETERS: Readonly<Record<string, (value: string | true) => boolean>> = {
  server_no_context_takeover: (value) => value === true,
  client_no_context_takeover: (value) => value === true,
  server_max_window_bits: (value) => value !== true && windowBits(value),
  client_max_window_bits: (value) => value === true || windowBits(value),
}

/**
 * Whether a browser's `Sec-WebSocket-Extensions` is one `ws` takes on a
 * route that negotiates permessage-deflate: well formed, and each
 * permessage-deflate offer naming only the parameters of RFC 7692 §7.1,
 * each once, with a value it allows (§7: an offer with other parameters,
 * or a parameter twice, must be declined). `ws` refuses any other with a
 * 400 of its own once the upstream's handshake is done, so it is checked
 * before the upstream is dialled.
 */
export function acceptableDeflateOffer(header: string): boolean {
  if (!EXTENSION_LIST.test(header)) return false
  for (const extension of header.split(',')) {
    const [name, ...parameters] = extension.split(';').map(trimOws)
    if (name !== 'permessage-deflate') continue
    const seen = new Set<string>()
    for (const parameter of parameters) {
      const equals = parameter.indexOf('=')
      const key = equals === -1 ? parameter : parameter.slice(0, equals)
      const value = equals === -1 ? true : unquote(parameter.slice(equals + 1))
      if (seen.has(key)) return false
      seen.add(key)
      const allowed = PARAMETERS[key]
      if (allowed === undefined || !allowed(value)) return false
    }
  }
  return true
}

/** RFC 9110 §5.6.3: optional whitespace is spaces and tabs, nothing else (not a no-break space). */
export function trimOws(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '')
}

function unquote(value: string): string {
  return value.startsWith('"') ? value.slice(1, -1).replace(/\\/g, '') : value
}
