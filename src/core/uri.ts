/** User info in a URI (`scheme://user:password@host`), which must never be stored or logged. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

const WITH_USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#@\s]*)@/;

/** A URI without its user info, and the user info it had (decoded), if any. */
export function splitCredentials(uri: string): { uri: string; credentials: Credentials | null } {
  const m = WITH_USERINFO.exec(uri);
  if (!m) return { uri, credentials: null };
  const info = m[2]!;
  const colon = info.indexOf(':');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    uri: m[1]! + uri.slice(m[0].length),
    credentials: { username: decode(colon < 0 ? info : info.slice(0, colon)), password: decode(colon < 0 ? '' : info.slice(colon + 1)) },
  };
}

/**
 * A copy of a JSON value with the user info taken out of every URI string in it, and what was
 * taken (by the URI without it), so that a config can be stored and sent without credentials.
 */
export function withoutCredentials<T>(value: T, found: Map<string, Credentials> = new Map()): { value: T; found: Map<string, Credentials> } {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const s = splitCredentials(v);
      if (s.credentials) found.set(s.uri, s.credentials);
      return s.uri;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item)]));
    return v;
  };
  return { value: walk(value) as T, found };
}
