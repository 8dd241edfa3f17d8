// --apply: what triage decided, done on the mailbox. First a plan (shown in every run, dry or not),
// then, with --apply, each step: move into the category's folder (IMAP MOVE; Maildir rename) and set
// its keywords. Only the configured folders and keywords are ever used — nothing in a message can
// add an action — and nothing is deleted or sent. Steps done are recorded, so a rerun repeats none.
import type { MailConfig } from './config.js';
import type { MailSource, MessageRef } from './sources/index.js';
import type { MailState } from './state.js';
import type { TriageRecord } from './triage.js';

export interface PlanStep {
  record: TriageRecord;
  action: 'move' | 'flag';
  /** Folder for a move, keywords for a flag. */
  target: string | string[];
}

/** The steps for records triaged "ok" that have not been applied yet. */
export function planActions(records: readonly TriageRecord[], config: MailConfig, state: MailState): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const r of records) {
    if (r.status !== 'ok' || r.category === null) continue;
    const keywords = config.keywords[r.category];
    if (keywords !== undefined && keywords.length > 0 && !state.wasApplied(r.source, r.folder, r.key, 'flag')) steps.push({ record: r, action: 'flag', target: keywords });
    const folder = config.folders[r.category];
    if (folder !== undefined && folder !== r.folder && !state.wasApplied(r.source, r.folder, r.key, 'move')) steps.push({ record: r, action: 'move', target: folder });
  }
  // Flags before moves: after a move the message has another key in another folder.
  return steps.sort((a, b) => (a.action === b.action ? 0 : a.action === 'flag' ? -1 : 1));
}

export function describeStep(s: PlanStep): string {
  const what = s.action === 'move' ? `move to ${s.target as string}` : `add keywords ${(s.target as string[]).join(' ')}`;
  return `${what.padEnd(34)} ${s.record.category?.padEnd(12)} ${s.record.subject.slice(0, 60)}`;
}

export interface ApplyResult {
  done: number;
  failed: { step: PlanStep; error: string }[];
}

/** Carries out the plan on a source opened for writing. */
export async function applyPlan(steps: readonly PlanStep[], source: MailSource, state: MailState, log: (line: string) => void = () => {}): Promise<ApplyResult> {
  if (source.move === undefined || source.flag === undefined) throw new Error(`${source.uri}: this kind of source cannot be changed (${source.kind}); --apply works on IMAP and Maildir`);
  const result: ApplyResult = { done: 0, failed: [] };
  await source.open();
  try {
    const listed = new Set<string>();
    for (const s of steps) {
      const r = s.record;
      if (!listed.has(r.folder)) {
        await source.list(r.folder); // a Maildir source learns file names, an IMAP one the UIDVALIDITY
        listed.add(r.folder);
      }
      const ref: MessageRef = { folder: r.folder, key: r.key, location: r.location };
      try {
        if (s.action === 'move') await source.move(ref, s.target as string);
        else await source.flag(ref, s.target as string[]);
        state.markApplied(r.source, r.folder, r.key, s.action);
        result.done++;
        log(`done: ${describeStep(s)}`);
      } catch (err) {
        result.failed.push({ step: s, error: (err as Error).message });
        log(`failed: ${describeStep(s)}: ${(err as Error).message}`);
      }
    }
  } finally {
    await source.close();
  }
  return result;
}
