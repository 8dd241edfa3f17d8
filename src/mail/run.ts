// A triage run over a source: list what is new (not in the state database), triage it a few messages
// at a time, commit each record as it is made, and stop cleanly on a signal, a lost connection or a
// blocked network connection, so that the next run resumes where this one stopped. Every message seen
// is accounted for: triaged, needing review, errored, or left for the next run.
import type { MailConfig } from './config.js';
import { NetworkGuard } from './guard.js';
import type { TriageModel } from './model.js';
import { SourceError, type MailSource, type MessageRef } from './sources/index.js';
import type { MailState } from './state.js';
import { triageMessage, type TriageRecord } from './triage.js';

export interface RunProgress {
  /** Messages this run has to do, and has done. */
  total: number;
  done: number;
  elapsedS: number;
}

export interface RunOptions {
  source: MailSource;
  state: MailState;
  config: MailConfig;
  model: TriageModel | null;
  /** Messages in flight at once (default 4; the engine batches their decoding). */
  concurrency?: number;
  /** Triage at most this many new messages (default all). */
  limit?: number;
  retryErrors?: boolean;
  signal?: AbortSignal;
  /** Watch sockets (default true); `allowHosts` adds hosts besides loopback (the IMAP server). */
  guard?: boolean;
  allowHosts?: string[];
  maxCalls?: number;
  /** Answer tokens per model call (default 160). */
  answerTokens?: number;
  /** Send every message to the model, rules set aside (benchmarks). */
  noRules?: boolean;
  onRecord?: (rec: TriageRecord, progress: RunProgress) => void;
  onList?: (folder: string, total: number, fresh: number) => void;
}

export interface RunSummary {
  /** Messages found in the source. */
  found: number;
  /** Already triaged in an earlier run. */
  skipped: number;
  ok: number;
  needsReview: number;
  errors: number;
  /** New messages not reached (stopped early or over --limit): the next run does them. */
  pending: number;
  seconds: number;
  /** Why the run stopped early, if it did. */
  stoppedBy: string | null;
  records: TriageRecord[];
}

export async function runTriage(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const summary: RunSummary = { found: 0, skipped: 0, ok: 0, needsReview: 0, errors: 0, pending: 0, seconds: 0, stoppedBy: null, records: [] };
  const stop = new AbortController();
  const onAbort = (): void => {
    const r = o.signal?.reason;
    stop.abort(r instanceof Error && r.name !== 'AbortError' ? r : new Error('interrupted'));
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const guard = o.guard === false ? null : await new NetworkGuard(o.allowHosts ?? [], (err) => stop.abort(err)).start();
  try {
    await o.source.open();
    const todo: MessageRef[] = [];
    for (const folder of await o.source.folders()) {
      const refs = await o.source.list(folder);
      const seen = o.state.seen(o.source.uri, folder, o.retryErrors);
      const fresh = refs.filter((r) => !seen.has(r.key));
      summary.found += refs.length;
      summary.skipped += refs.length - fresh.length;
      o.onList?.(folder, refs.length, fresh.length);
      todo.push(...fresh);
    }
    const work = o.limit === undefined ? todo : todo.slice(0, o.limit);
    summary.pending = todo.length - work.length;
    const senders = o.state.senders();
    const progress: RunProgress = { total: work.length, done: 0, elapsedS: 0 };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < work.length && !stop.signal.aborted) {
        const ref = work[next++];
        let rec: TriageRecord;
        try {
          const bytes = await o.source.read(ref);
          if (stop.signal.aborted) {
            summary.pending++;
            return;
          }
          rec = await triageMessage({ ...ref, bytes }, o.source.uri, { config: o.config, model: o.model, senders, maxCalls: o.maxCalls, noRules: o.noRules, answerTokens: o.answerTokens });
        } catch (err) {
          if (err instanceof SourceError) {
            // The source itself failed (a dropped connection): stop; this message and the rest wait.
            summary.pending++;
            if (!stop.signal.aborted) stop.abort(err);
            return;
          }
          throw err;
        }
        if (guard?.violation) {
          summary.pending++; // a run that tried to reach the network keeps nothing of that message
          return;
        }
        o.state.put(rec);
        summary.records.push(rec);
        if (rec.status === 'ok') summary.ok++;
        else if (rec.status === 'needs_review') summary.needsReview++;
        else summary.errors++;
        progress.done++;
        progress.elapsedS = (performance.now() - t0) / 1000;
        o.onRecord?.(rec, progress);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
    summary.pending += work.length - Math.min(next, work.length);
    if (stop.signal.aborted) summary.stoppedBy = (stop.signal.reason as Error)?.message ?? 'stopped';
    if (guard?.violation) summary.stoppedBy = guard.violation.message;
  } finally {
    guard?.stop();
    o.signal?.removeEventListener('abort', onAbort);
    await o.source.close().catch(() => {});
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}
