// Reading (not checking: the backend that receives the token checks it) a JWT's `sub`.

/** The `sub` claim of a JWT, or `undefined` when it cannot be read. */
export function subjectOf(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '='));
    const claims: unknown = JSON.parse(json);
    if (typeof claims === 'object' && claims !== null && 'sub' in claims && typeof claims.sub === 'string') {
      return claims.sub;
    }
  } catch {
    // not a JWT we can read
  }
  return undefined;
}
