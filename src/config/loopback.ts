/**
 * The hosts plain http is allowed for: loopback, where nothing crosses a
 * network (the issuer, `server.publicUrl`, a FAPI 2.0 route, the IdP's
 * endpoints).
 */
export const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/
