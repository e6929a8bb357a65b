// Cookie header parsing for the web UI. It is the `cookie` package's parser, the one express itself depends
// on (res.cookie writes with it), which replaced a hand-written one: same results, one less parser to keep.
// Auth (src/web/auth.ts) reads the session and login cookies through this.
import { parse } from 'cookie';

/**
 * The cookies of a Cookie header by name. The first pair of a name wins (RFC 6265 5.4: the most specific
 * path comes first); values lose one pair of surrounding quotes and are percent-decoded when that is valid.
 */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof header !== 'string') return out;
  for (const [name, value] of Object.entries(parse(header)))
    if (name !== '' && value !== undefined) out.set(name, value);
  return out;
}
