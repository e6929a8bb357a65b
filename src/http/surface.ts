// What every HTTP response gets before any route: nosniff, the Host check of the UI and API (a page
// on another site that rebinds its DNS name to this server's address must not reach them), and, when
// TLS is on, the redirect of the UI and API to HTTPS plus HSTS. The boot paths are exempt from the
// Host check and the redirect: firmware and Anaconda fetch them by IP, over plain HTTP only.
import type { NextFunction, Request, Response } from 'express';
import type { TLSSocket } from 'node:tls';

export interface SurfaceOptions {
  /** Host names (or IPs) the UI and API answer for, lower case, without port. Empty or undefined: any. */
  allowedHosts?: readonly string[];
  /** When set, TLS is on: UI/API requests over plain HTTP are redirected to this HTTPS port. */
  httpsPort?: number;
}

/** Paths firmware, iPXE, GRUB and Anaconda fetch: answered whatever the Host header, and over plain HTTP. */
export const BOOT_PATH = /^\/(ks|built|failed|events|tftp|images|boot)(\/|$)/;
/** Probes (load balancers, systemd, doctor) that carry no data: answered whatever the Host header too. */
const PROBE_PATH = /^\/(healthz|readyz)$/;

/** The host part of a Host header, lower case: "[::1]:8080" -> "::1", "Name.example:80" -> "name.example". */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 1 ? h.slice(1, end) : undefined;
  }
  const i = h.lastIndexOf(':');
  const host = i >= 0 && h.indexOf(':') === i ? h.slice(0, i) : h;
  return /^[a-z0-9.:_-]{1,253}$/.test(host) ? host.replace(/\.$/, '') : undefined;
}

/** The default list: the public URL's host, plus the loopback names so a local `npm start` works. */
export function defaultAllowedHosts(publicUrl: string, extra: readonly string[] = []): string[] {
  const out = new Set<string>(['localhost', '127.0.0.1', '::1']);
  try {
    out.add(new URL(publicUrl).hostname.replace(/^\[|\]$/g, '').toLowerCase());
  } catch {
    /* loadConfig checked it */
  }
  for (const h of extra) out.add(h.toLowerCase());
  return [...out];
}

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);

export function surfaceGuard(o: SurfaceOptions) {
  const allowed =
    o.allowedHosts && o.allowedHosts.length ? new Set(o.allowedHosts.map((h) => h.toLowerCase())) : undefined;
  return (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const encrypted = Boolean((req.socket as TLSSocket).encrypted);
    // RFC 6797 7.2: HSTS only over a secure transport. No includeSubDomains: other hosts of the domain are not ours.
    if (encrypted) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    if (BOOT_PATH.test(req.path) || PROBE_PATH.test(req.path)) return next();
    const host = hostOfHeader(req.headers.host);
    if (allowed && (!host || !allowed.has(host))) {
      res
        .status(421)
        .type('text/plain; charset=utf-8')
        .send(
          `rackboot: the Host "${printable(req.headers.host ?? '')}" is not a name this server's UI and API answer for ` +
            `(${[...allowed].join(', ')}); open it under one of those, or add the name with --allowed-hosts (config allowedHosts)\n`,
        );
      return;
    }
    if (o.httpsPort !== undefined && !encrypted && req.path !== '/metrics') {
      if (!host) {
        res
          .status(400)
          .type('text/plain; charset=utf-8')
          .send('rackboot: send a Host header (the UI and API are on HTTPS)\n');
        return;
      }
      const target = `https://${host.includes(':') ? `[${host}]` : host}${o.httpsPort === 443 ? '' : `:${o.httpsPort}`}${req.originalUrl}`;
      // 308 keeps the method and body, so an API POST sent to http:// is not silently turned into a GET.
      res.redirect(308, target);
      return;
    }
    next();
  };
}
