/**
 * The claims a session keeps, in two shapes, for the memory figures:
 * `id-token` is what the dev IdP puts in an ID token beyond the protocol
 * claims; `userinfo` is a full profile merged from userinfo, about what
 * Google or Entra ID return for `openid profile email`.
 */
export type ClaimsShape = 'id-token' | 'userinfo'

export function claimsOf(shape: ClaimsShape, sub: string, i: number): Record<string, unknown> {
  const base = { sub, name: `User ${i}`, email: `user${i}@example.com`, email_verified: true }
  if (shape === 'id-token') return base
  return {
    ...base,
    iss: 'https://accounts.example.com',
    given_name: 'User',
    family_name: `Number ${i}`,
    preferred_username: `user${i}@example.com`,
    picture: `https://lh3.googleusercontent.com/a/ACg8ocK${String(i).padStart(8, '0')}dW5pcXVlLXBpY3R1cmUtaWQ=s96-c`,
    locale: 'en-GB',
  }
}
