// Console progress for long jobs. On a terminal: one status line (bar, step, loss, tokens/s, ETA)
// redrawn in place, with log lines printed above it. Elsewhere (a file, CI): only the log lines, so
// logs stay greppable and free of carriage returns.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Steps the job will have done when finished. */
  total: number;
  /** Steps already done (a resumed run), so the ETA counts only what is left. */
  start?: number;
  stream?: ProgressStream;
  /** Default: the stream's isTTY. */
  tty?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  readonly tty: boolean;
  private readonly stream: ProgressStream;
  private readonly total: number;
  private readonly started = performance.now();
  private readonly startStep: number;
  private step: number;
  private status = '';

  constructor(opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.total = opts.total;
    this.startStep = opts.start ?? 0;
    this.step = this.startStep;
  }

  /** Seconds left, from the average pace since this progress started (evaluations and saves included). */
  eta(): number {
    const done = this.step - this.startStep;
    if (done <= 0) return NaN;
    return (((performance.now() - this.started) / 1000) * (this.total - this.step)) / done;
  }

  /** Records that `step` is done; redraws the status line on a terminal. */
  update(step: number, fields: { loss?: number; tokensPerS?: number } = {}): void {
    this.step = step;
    if (!this.tty) return;
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - 60));
    const filled = Math.round((width * Math.min(step, this.total)) / this.total);
    const parts = [`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`, `${step}/${this.total}`];
    // This step's loss (noisy); the log lines above print means over several steps, labelled.
    if (fields.loss !== undefined) parts.push(`step loss ${fields.loss.toFixed(4)}`);
    if (fields.tokensPerS !== undefined) parts.push(`${Math.round(fields.tokensPerS)} tok/s`);
    parts.push(`eta ${formatDuration(this.eta())}`);
    this.status = parts.join('  ');
    this.stream.write(`\r\x1b[2K${this.status}`);
  }

  /** Prints a whole line (above the status line on a terminal). */
  log(line: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${line}\n${this.status}`);
    else this.stream.write(`${line}\n`);
  }

  /** Leaves the terminal on a fresh line. */
  done(): void {
    if (this.tty && this.status !== '') this.stream.write('\n');
    this.status = '';
  }
}
