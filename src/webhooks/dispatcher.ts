// Webhook delivery, off the hot path: the timeline listener only copies a matching event into a bounded intake; a
// later turn of the event loop stores one delivery per URL, and a worker sends them, a few at a time, with a
// timeout per attempt and backoff between attempts. A slow, failing or absent receiver therefore never delays a
// build's answers, and deliveries survive a restart (they are rows until delivered or out of attempts).
import { randomUUID } from 'node:crypto';
import type { WebhookConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import type { Build } from '../store/builds.ts';
import type { HostEvent, NewEvent } from '../store/events.ts';
import type { Host } from '../store/hosts.ts';
import type { Delivery, WebhookDeliveryStore } from '../store/webhooks.ts';
import {
  backoffMs,
  webhookBody,
  webhookEventOf,
  webhookHeaders,
  webhookPayload,
  webhookTarget,
  type WebhookEvent,
} from './payload.ts';

export interface WebhookLimits {
  /** Deliveries waiting (pending) at most; beyond, new ones are recorded as dropped. */
  maxPending: number;
  /** Events waiting in memory for the next turn at most (a burst beyond is dropped and logged). */
  maxIntake: number;
  /** Attempts in flight at once. */
  concurrency: number;
  /** Attempts per delivery before it is failed. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Finished deliveries kept in the log. */
  keepFinished: number;
}

export const DEFAULT_WEBHOOK_LIMITS: WebhookLimits = {
  maxPending: 10_000,
  maxIntake: 1000,
  concurrency: 4,
  maxAttempts: 8,
  backoffBaseMs: 2000,
  backoffMaxMs: 10 * 60_000,
  keepFinished: 10_000,
};

/** The build events a webhook may owe to another process (one of each per build); stuck is serve's own. */
const FROM_OTHERS: ReadonlySet<string> = new Set(['build.start', 'build.built', 'build.failed', 'build.cancel']);
const MAX_TAKEN = 50_000;
/** Newest events read per host on a build change from elsewhere. */
const OTHERS_LOOKBACK = 50;
const OTHER_PROCESS_SETTLE_MS = 2000;

export interface WebhookDeps {
  hooks: readonly WebhookConfig[];
  store: WebhookDeliveryStore;
  events: {
    subscribe(l: (e: HostEvent) => void): () => void;
    append(e: NewEvent): unknown;
    /** Newest last; flushes this process's queued events first. */
    timeline(mac: Mac, limit: number): Promise<HostEvent[]>;
  };
  /**
   * Build changes from every process and node (core.changes): build events another process of this node wrote
   * (a CLI `hosts build` on the same database) are read from the timeline and delivered here too.
   */
  changes?: { subscribe(l: (c: { kind: string; mac: string }) => void): () => void };
  /** This node's id (config nodeId): only its own events are delivered, so two serving nodes never both send one. */
  node?: string;
  hosts: { get(mac: Mac): Promise<Host | undefined> };
  builds: { byId(id: number): Promise<Build | undefined> };
  log: Logger;
  limits?: Partial<WebhookLimits>;
  now?: () => number;
  fetch?: typeof fetch;
}

class AttemptTimeout extends Error {}

export class WebhookDispatcher {
  private readonly limits: WebhookLimits;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private intake: { event: WebhookEvent; e: HostEvent }[] = [];
  private intakeScheduled = false;
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly abort = new AbortController();
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private unsubscribeChanges?: () => void;
  /** Build events already taken, `mac|buildId|type`: the two paths (timeline listener, change feed) never both deliver one. */
  private readonly taken = new Map<string, true>();
  /** Hosts whose timeline is to be read for events of other processes, and the timers of the second look. */
  private readonly toRead = new Set<string>();
  private readonly rereads = new Set<NodeJS.Timeout>();
  private reading?: Promise<void>;
  private startedAt = 0;
  private stopped = false;
  private pumping = false;
  private pumpAgain = false;
  private draining?: Promise<void>;
  /** Events dropped because the in-memory intake was full, since start. */
  droppedIntake = 0;
  /** Timelines read for other processes' build events, since start (tests wait on it). */
  timelinesRead = 0;

  constructor(private readonly d: WebhookDeps) {
    this.limits = { ...DEFAULT_WEBHOOK_LIMITS, ...d.limits };
    this.now = d.now ?? Date.now;
    this.fetch = d.fetch ?? fetch;
  }

  /** Subscribes to the timeline and sends what was pending before a restart. */
  start(): void {
    if (!this.d.hooks.length) return;
    this.startedAt = this.now();
    this.unsubscribe = this.d.events.subscribe((e) => this.onEvent(e));
    this.unsubscribeChanges = this.d.changes?.subscribe((c) => {
      if (c.kind !== 'build' || !c.mac) return;
      this.readLater(c.mac, 0);
      // Another process writes its events after the build row: look again once they are surely flushed.
      this.readLater(c.mac, OTHER_PROCESS_SETTLE_MS);
    });
    void this.d.store.prune(this.limits.keepFinished).catch(() => undefined);
    this.kick();
  }

  /** Stops taking events, aborts attempts in flight (they stay pending, not counted) and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribeChanges?.();
    for (const t of this.rereads) clearTimeout(t);
    this.rereads.clear();
    clearTimeout(this.timer);
    await this.reading;
    await this.draining;
    this.abort.abort();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Resolves when nothing is in memory or in flight (tests). */
  async idle(): Promise<void> {
    while (this.intake.length || this.inFlight.size || this.draining || this.pumping || this.reading)
      await new Promise((r) => setTimeout(r, 5));
  }

  /** On the timeline's synchronous path: copy, bound, schedule; nothing else. */
  private onEvent(e: HostEvent): void {
    const event = webhookEventOf(e);
    if (!event || this.stopped || !this.d.hooks.some((h) => h.events.includes(event))) return;
    if (!this.take(e)) return;
    if (this.intake.length >= this.limits.maxIntake) {
      if (this.droppedIntake++ % 1000 === 0)
        this.d.log.warn({ event, dropped: this.droppedIntake }, 'webhook intake full: event dropped');
      return;
    }
    this.intake.push({ event, e });
    if (!this.intakeScheduled) {
      this.intakeScheduled = true;
      setImmediate(() => {
        this.intakeScheduled = false;
        this.draining = this.drainIntake().finally(() => (this.draining = undefined));
      });
    }
  }

  /** False when this build event was taken already (by the other path). */
  private take(e: HostEvent): boolean {
    if (e.buildId === undefined || !FROM_OTHERS.has(e.type)) return true;
    const key = `${e.mac}|${e.buildId}|${e.type}`;
    if (this.taken.has(key)) return false;
    this.taken.set(key, true);
    if (this.taken.size > MAX_TAKEN) this.taken.delete(this.taken.keys().next().value!);
    return true;
  }

  private readLater(mac: string, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.rereads.delete(t);
      this.toRead.add(mac);
      this.reading ??= this.readOthers().finally(() => (this.reading = undefined));
    }, ms);
    t.unref();
    this.rereads.add(t);
  }

  /** The build events of other processes of this node, from the timelines of the hosts whose builds changed. */
  private async readOthers(): Promise<void> {
    while (this.toRead.size && !this.stopped) {
      const [mac] = this.toRead;
      this.toRead.delete(mac!);
      try {
        for (const e of await this.d.events.timeline(mac as Mac, OTHERS_LOOKBACK)) {
          // Events of this process went through onEvent when they were appended (and are taken).
          if (e.at < this.startedAt || e.node !== this.d.node || e.buildId === undefined || !FROM_OTHERS.has(e.type))
            continue;
          this.onEvent(e);
        }
      } catch (err) {
        this.d.log.error({ mac, err: (err as Error).message }, 'webhooks: could not read a timeline');
      }
      this.timelinesRead++;
    }
  }

  private async drainIntake(): Promise<void> {
    const batch = this.intake;
    this.intake = [];
    for (const { event, e } of batch) {
      let payload: ReturnType<typeof webhookPayload>;
      try {
        const build = e.buildId === undefined ? undefined : await this.d.builds.byId(e.buildId);
        payload = webhookPayload(event, e, await this.d.hosts.get(e.mac as Mac), build);
      } catch (err) {
        this.d.log.error({ event, err: (err as Error).message }, 'could not read the host or build of a webhook event');
        continue;
      }
      for (const hook of this.d.hooks.filter((h) => h.events.includes(event))) {
        try {
          const full = (await this.d.store.pendingCount()) >= this.limits.maxPending;
          await this.d.store.add({
            uid: randomUUID(),
            url: hook.url,
            event,
            mac: e.mac,
            buildId: e.buildId,
            payload,
            status: full ? 'dropped' : 'pending',
            nextAt: this.now(),
            createdAt: this.now(),
            lastError: full ? `more than ${this.limits.maxPending} deliveries waiting` : undefined,
          });
          if (full) this.d.log.warn({ event, target: webhookTarget(hook.url) }, 'webhook queue full: delivery dropped');
        } catch (err) {
          this.d.log.error({ event, err: (err as Error).message }, 'could not store a webhook delivery');
        }
      }
    }
    this.kick();
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.kick();
      }
    });
  }

  private async pump(): Promise<void> {
    try {
      const room = this.limits.concurrency - this.inFlight.size;
      if (room > 0) {
        const busy = new Set(this.inFlight.keys());
        for (const d of await this.d.store.due(this.now(), room, busy)) {
          if (this.stopped) return;
          const p = this.attempt(d).finally(() => {
            this.inFlight.delete(d.id);
            this.kick();
          });
          this.inFlight.set(d.id, p);
        }
      }
      if (this.inFlight.size >= this.limits.concurrency) return;
      const next = await this.d.store.nextDueAt();
      clearTimeout(this.timer);
      if (next !== undefined && !this.stopped) {
        // Capped so a clock step never parks the worker for long; unref'd so it never holds the process open.
        this.timer = setTimeout(() => this.kick(), Math.min(60_000, Math.max(10, next - this.now())));
        this.timer.unref();
      }
    } catch (err) {
      this.d.log.error({ err: (err as Error).message }, 'webhook worker: store error');
    }
  }

  private async attempt(d: Delivery): Promise<void> {
    const hook = this.d.hooks.find((h) => h.url === d.url);
    const started = this.now();
    const target = webhookTarget(d.url);
    if (!hook) {
      await this.d.store.recordAttempt(d.id, {
        status: 'dropped',
        attempts: d.attempts,
        nextAt: d.nextAt,
        lastAt: started,
        lastError: 'this URL is no longer configured (webhooks: in the config file)',
        lastMs: 0,
      });
      return;
    }
    const timestamp = Math.floor(started / 1000);
    const body = webhookBody(d.uid, timestamp, d.payload);
    let httpStatus: number | undefined;
    let error: string | undefined;
    // Our own controller and timer, held until the attempt ends: Node 20's fetch follows a signal weakly, and an
    // AbortSignal.any() nobody else held was garbage-collected, so its timeout never fired (the attempt then waited
    // for however long the receiver took). The race ends the attempt at the timeout even if the abort is lost.
    const attempt = new AbortController();
    const stop = () => attempt.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new AttemptTimeout());
        attempt.abort();
      }, hook.timeoutMs);
    });
    try {
      const answer = async () => {
        const res = await this.fetch(d.url, {
          method: 'POST',
          headers: webhookHeaders(hook.secret, d.uid, d.event, timestamp, body),
          body,
          redirect: 'manual',
          signal: attempt.signal,
        });
        // The answer's body is not read: a receiver cannot make us hold or buffer anything.
        await res.body?.cancel().catch(() => undefined);
        return res.status;
      };
      httpStatus = await Promise.race([answer(), timedOut]);
      if (httpStatus < 200 || httpStatus > 299) error = `HTTP ${httpStatus}`;
    } catch (err) {
      if (this.abort.signal.aborted) return; // shutting down: stays pending, not counted
      const e = err as Error & { cause?: { code?: string; message?: string } };
      error =
        e instanceof AttemptTimeout
          ? `no answer within ${hook.timeoutMs} ms`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', stop);
    }
    const ms = this.now() - started;
    const attempts = d.attempts + 1;
    const delivered = error === undefined;
    const final = delivered || attempts >= this.limits.maxAttempts;
    const status = delivered ? 'delivered' : final ? 'failed' : 'pending';
    await this.d.store.recordAttempt(d.id, {
      status,
      attempts,
      nextAt: final ? d.nextAt : this.now() + backoffMs(attempts, this.limits.backoffBaseMs, this.limits.backoffMaxMs),
      lastAt: started,
      lastStatus: httpStatus,
      lastError: error,
      lastMs: ms,
    });
    const detail = { event: d.event, target, attempts, ms, ...(error ? { error } : {}) };
    if (delivered) this.d.log.info({ ...detail, delivery: d.uid }, 'webhook delivered');
    else this.d.log.warn({ ...detail, delivery: d.uid, final }, final ? 'webhook failed' : 'webhook attempt failed');
    if (d.mac && (delivered || final || attempts === 1)) {
      this.d.events.append({
        mac: d.mac,
        buildId: d.buildId,
        type: delivered ? 'webhook.delivered' : final ? 'webhook.failed' : 'webhook.retrying',
        status: httpStatus === undefined ? undefined : String(httpStatus),
        detail,
      });
    }
  }
}
