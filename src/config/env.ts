/**
 * Replaces `${VAR}` and `${VAR:-default}` from the environment. Returns the
 * names that were missing (no value and no default) instead of guessing.
 */
export function interpolate(
  text: string,
  env: NodeJS.ProcessEnv,
): { readonly value: string; readonly missing: readonly string[] } {
  const missing: string[] = []
  const value = text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_match, name: string, fallback?: string) => {
      const found = env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      missing.push(name)
      return ''
    },
  )
  return { value, missing }
}
