/**
 * PEM put in an environment variable through a `.env` file or a JSON
 * value often arrives with the two characters `\n` where its line breaks
 * were. Node refuses it as "not PEM", which leaves the operator staring at
 * text that looks right; this names the cause. It is not repaired in
 * place: which escapes a value holds is the deployment's to get right, and
 * key material is not rewritten behind its owner's back.
 */
const ESCAPED_BREAK = /-----BEGIN [A-Z0-9 ]+-----\\[nr]/

/** A clause to append to a "not PEM" message, or '' when the text shows no escaped line breaks. */
export function escapedBreaksHint(text: string): string {
  return ESCAPED_BREAK.test(text)
    ? ' (it holds the characters \\n where its line breaks belong: give the variable real line breaks, for example VAR="$(cat file.pem)")'
    : ''
}
