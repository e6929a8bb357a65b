// Webhook payloads and signatures. Pure: which timeline events are webhook events, the JSON a receiver gets, and
// the HMAC-SHA256 signature over the exact body bytes. The body carries the same timestamp as the
// X-Rackboot-Timestamp header, so the signature covers it: a receiver that refuses old timestamps and delivery ids
// it has seen cannot be fed a replay.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { HostEvent } from '../store/events.ts';
import type { Build } from '../store/builds.ts';
import type { Host } from '../store/hosts.ts';

export const WEBHOOK_EVENTS = [
  'build.started',
  'build.built',
  'build.failed',
  'build.stuck',
  'build.cancelled',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Timeline event types (src/provision.ts; stuck from the rollout's stage limits) and the webhook event of each. */
const FROM_TIMELINE: Record<string, WebhookEvent> = {
  'build.start': 'build.started',
  'build.built': 'build.built',
  'build.failed': 'build.failed',
  'build.cancel': 'build.cancelled',
  'build.stuck': 'build.stuck',
  stuck: 'build.stuck',
};

export function webhookEventOf(e: Pick<HostEvent, 'type'>): WebhookEvent | undefined {
  return Object.hasOwn(FROM_TIMELINE, e.type) ? FROM_TIMELINE[e.type] : undefined;
}

/** Lines of the failure tail sent, and the longest line. */
export const TAIL_LINES = 40;
const TAIL_LINE_MAX = 500;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function tailOf(e: HostEvent, build: Build | undefined): string[] | undefined {
  const syslog = e.detail?.syslogTail;
  const lines = Array.isArray(syslog)
    ? syslog.map(String)
    : build?.failureLog
      ? build.failureLog.split('\n').filter((l) => l.trim())
      : undefined;
  return lines?.slice(-TAIL_LINES).map((l) => (l.length > TAIL_LINE_MAX ? `${l.slice(0, TAIL_LINE_MAX)}...` : l));
}

/** What a delivery carries besides its id and timestamp (stored with the delivery, so a retry sends the same). */
export function webhookPayload(
  event: WebhookEvent,
  e: HostEvent,
  host: Host | undefined,
  build: Build | undefined,
): Record<string, unknown> {
  const finished = build?.finishedAt;
  return {
    event,
    at: iso(e.at),
    host: {
      mac: e.mac,
      hostname: host?.hostname,
      profile: host?.profile,
      rack: host?.rack,
      position: host?.position,
      ip: host?.ip,
    },
    build: build && {
      id: build.id,
      status: build.status,
      createdAt: iso(build.createdAt),
      kickstartFetchedAt: iso(build.ksFetchedAt),
      finishedAt: iso(finished),
      expiresAt: iso(build.expiresAt),
      seconds: finished === undefined ? undefined : Math.round((finished - build.createdAt) / 1000),
    },
    ...(event === 'build.failed' ? { failureTail: tailOf(e, build) ?? [] } : {}),
    ...(event === 'build.stuck' && e.detail ? { stuck: e.detail } : {}),
    ...(e.status && event !== 'build.built' && event !== 'build.failed' ? { status: e.status } : {}),
  };
}

/** The body of one attempt: the stored payload with the delivery id and this attempt's timestamp. */
export function webhookBody(id: string, timestamp: number, payload: Record<string, unknown>): string {
  return JSON.stringify({ id, timestamp, ...payload });
}

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A receiver's check (also what the tests and the README example use): constant-time compare. */
export function verifySignature(secret: string, body: string, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signBody(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export function webhookHeaders(
  secret: string,
  id: string,
  event: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'rackboot-webhook/1',
    'x-rackboot-event': event,
    'x-rackboot-delivery': id,
    'x-rackboot-timestamp': String(timestamp),
    'x-rackboot-signature': signBody(secret, body),
  };
}

/** How a webhook URL is shown in logs, the timeline and the delivery log: its origin only (paths often hold tokens). */
export function webhookTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** Backoff after the nth failed attempt: 2^(n-1) x base, at most maxMs. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
