// Progress of long copies: a bar redrawn in place on a terminal, a plain line every 10 % otherwise
// (logs and CI keep a readable record instead of a screen of carriage returns).
export interface ProgressSink {
  /** True when `write` goes to a terminal that understands \r. */
  isTTY: boolean;
  /** Raw text, no newline added. */
  write(s: string): void;
}

export interface Phase {
  update(done: number): void;
  finish(): void;
}
export interface Progress {
  phase(label: string, total: number): Phase;
}

export const noProgress: Progress = {
  phase: () => ({
    update() {
      /* nothing */
    },
    finish() {
      /* nothing */
    },
  }),
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024,
    i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The bar line for a terminal: pure, so it is tested without one. */
export function barLine(label: string, done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)}`;
}

export function createProgress(sink: ProgressSink, now: () => number = Date.now): Progress {
  return {
    phase(label, total) {
      let lastDraw = 0,
        lastDecile = -1,
        finished = false,
        last = 0;
      const draw = (done: number, force: boolean) => {
        last = done;
        if (sink.isTTY) {
          const t = now();
          if (!force && t - lastDraw < 100) return;
          lastDraw = t;
          sink.write(`\r${barLine(label, done, total)}\x1b[K`);
        } else {
          const decile = total > 0 ? Math.floor(Math.min(1, done / total) * 10) : 10;
          if (decile === lastDecile && !force) return;
          if (force && decile === lastDecile) return;
          lastDecile = decile;
          sink.write(`${label}: ${decile * 10}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
        }
      };
      draw(0, true);
      return {
        update(done) {
          if (!finished) draw(done, false);
        },
        finish() {
          if (finished) return;
          finished = true;
          draw(Math.max(last, total), true);
          if (sink.isTTY) sink.write('\n');
        },
      };
    },
  };
}
