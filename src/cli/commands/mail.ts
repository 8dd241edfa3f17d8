// `nanoseek mail …`: triage a mailbox (and --apply the plan), make a sample mailbox from the corpus,
// evaluate against hand labels, train the shipped model; `nanoseek bench mail`: messages per minute.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadForInference, packageRoot } from '../../infer/index.js';
import { DEFAULT_MAIL_MODEL } from '../../mail/config.js';
import type { MailConfig, TriageModel } from '../../mail/index.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { readJsonConfig } from '../run-control.js';
import { benchCommand } from './bench.js';
import { intFlag } from './generate.js';

// The mail app (IMAP client, SQLite, JSON-schema validator …) is loaded only when a mail command
// runs: every other command starts without it, about 25 MB less resident.
const mailLib = () => import('../../mail/index.js');

interface ModelFlags {
  model?: string;
  endpoint?: string;
  endpointModel?: string;
  apiKey?: string;
  think?: boolean;
  noModel?: boolean;
}

function withMailModelFlags(cmd: Command): Command {
  return cmd
    .option('--model <path>', `model for the messages no rule settles: a checkpoint directory or a .gguf file (default: ${DEFAULT_MAIL_MODEL})`)
    .option('--endpoint <url>', 'use an OpenAI-compatible server on this machine instead (e.g. http://127.0.0.1:8080/v1)')
    .option('--endpoint-model <id>', "the endpoint's model name (default: the first it lists)")
    .option('--api-key <key>', 'API key for --endpoint (default: $NANOSEEK_API_KEY)')
    .option('--think', 'let a reasoning model think before its JSON answer (slower; default: its think block is closed at once)')
    .option('--no-model', 'rules only: what no rule settles is marked for review');
}

async function modelFrom(o: ModelFlags, config: MailConfig, log: (l: string) => void): Promise<TriageModel | null> {
  const { EndpointModel, LocalModel } = await mailLib();
  if (o.noModel === true || (o as { model?: unknown }).model === false) return null;
  if (o.endpoint !== undefined) return EndpointModel.connect(o.endpoint, config.categories, { model: o.endpointModel, apiKey: o.apiKey ?? (process.env.NANOSEEK_API_KEY || undefined) });
  const path = o.model ?? join(await packageRoot(), DEFAULT_MAIL_MODEL);
  const ckpt = await loadForInference(path);
  log(`model: ${ckpt.name} (${path})`);
  return new LocalModel(ckpt, config.categories, { think: o.think });
}

interface TriageFlags extends ModelFlags {
  source: string;
  config?: string;
  state: string;
  jsonl?: string;
  html?: string;
  limit?: number;
  concurrency: number;
  apply?: boolean;
  passwordFile?: string;
  passwordEnv: string;
  retryErrors?: boolean;
  quiet?: boolean;
}

async function triageCommand(o: TriageFlags): Promise<void> {
  const err = (l: string): void => void process.stderr.write(`${l}\n`);
  const { applyPlan, describeStep, loadMailConfig, MailState, openSource, parseImapUri, planActions, progressLine, renderDigest, runTriage, tableHeader, tableRow } = await mailLib();
  const config = await loadMailConfig(o.config);
  const imap = { passwordFile: o.passwordFile, passwordEnv: o.passwordEnv };
  const source = openSource(o.source, imap);
  const allowHosts = source.kind === 'imap' ? [parseImapUri(o.source).host] : [];
  const model = await modelFrom(o, config, err);
  const state = new MailState(o.state);
  const tty = process.stderr.isTTY === true;
  const abort = new AbortController();
  const onSignal = (): void => {
    err('\ninterrupted: finishing the messages in flight; run again to resume');
    abort.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (!o.quiet) process.stdout.write(`${tableHeader()}\n`);
  let summary;
  try {
    summary = await runTriage({
      source,
      state,
      config,
      model,
      concurrency: o.concurrency,
      limit: o.limit,
      retryErrors: o.retryErrors,
      signal: abort.signal,
      allowHosts,
      onList: (folder, total, fresh) => err(`${source.uri} ${folder}: ${total} messages, ${fresh} new`),
      onRecord: (rec, p) => {
        if (tty) process.stderr.write('\r\x1b[K');
        if (!o.quiet) process.stdout.write(`${tableRow(rec)}\n`);
        if (tty) process.stderr.write(progressLine(p));
        else if (p.done % 25 === 0 || p.done === p.total) err(progressLine(p));
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await model?.close();
  }
  if (tty) process.stderr.write('\n');
  const records = state.records(source.uri);
  if (o.jsonl !== undefined) await writeFileAtomic(o.jsonl, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
  if (o.html !== undefined) await writeFileAtomic(o.html, renderDigest(records, config.categories, `Mail digest: ${source.uri}`));
  const s = summary;
  err(
    `${s.found} messages: ${s.skipped} triaged before, ${s.ok} triaged now, ${s.needsReview} need review, ${s.errors} errors, ${s.pending} left for the next run ` +
      `(${s.seconds.toFixed(1)} s${s.ok + s.needsReview + s.errors > 0 ? `, ${(((s.ok + s.needsReview + s.errors) / s.seconds) * 60).toFixed(1)} msg/min` : ''})`,
  );
  const plan = planActions(records, config, state);
  if (plan.length > 0) {
    err(`${o.apply ? 'applying' : 'plan (dry run; --apply to do it)'}: ${plan.length} steps`);
    for (const step of plan.slice(0, o.apply ? 0 : 50)) err(`  ${describeStep(step)}`);
    if (!o.apply && plan.length > 50) err(`  … and ${plan.length - 50} more`);
    if (o.apply) {
      const r = await applyPlan(plan, openSource(o.source, { ...imap, writable: true }), state, o.quiet ? undefined : (l) => err(`  ${l}`));
      err(`applied ${r.done} of ${plan.length} steps${r.failed.length ? `; ${r.failed.length} failed (they stay in the plan for the next run)` : ''}`);
      if (r.failed.length > 0) process.exitCode = 1;
    }
  }
  state.close();
  if (s.stoppedBy !== null) {
    err(`stopped early: ${s.stoppedBy}`);
    process.exitCode = 1;
  }
}

export function register(program: Command): void {
  const mail = program.command('mail').description('private email triage on this machine: sort, summarise and list a mailbox');

  withMailModelFlags(mail.command('triage').description('triage the new messages of a mailbox; read-only unless --apply'))
    .requiredOption('--source <spec>', 'maildir:<dir>, mbox:<file>, eml:<dir or file>, or imap[s]://user@host[:port]/Folder[,Folder]')
    .option('--config <json>', 'categories, your rules, folders and keywords for --apply (see README)')
    .option('--state <db>', 'the SQLite state database (what was triaged, corrections)', 'nanoseek-mail.db')
    .option('--jsonl <file>', 'write every record of this source as JSON lines')
    .option('--html <file>', 'write the HTML digest of this source')
    .option('--limit <n>', 'triage at most n new messages', intFlag('--limit'))
    .option('--concurrency <n>', 'messages in flight at once', intFlag('--concurrency'), 4)
    .option('--apply', 'carry out the plan: move messages into the category folders, set keywords (never deletes or sends)')
    .option('--password-file <file>', 'IMAP password: the first line of this file')
    .option('--password-env <name>', 'IMAP password: this environment variable', 'NANOSEEK_IMAP_PASSWORD')
    .option('--retry-errors', 'triage messages that failed before again')
    .option('--quiet', 'no table, only the summary')
    .action(triageCommand);

  mail
    .command('sample')
    .description('write a sample Maildir of SpamAssassin corpus messages to try the app on')
    .requiredOption('--out <dir>', 'the Maildir to create')
    .option('--count <n>', 'messages', intFlag('--count'), 40)
    .action(async (o: { out: string; count: number }) => {
      const { writeSampleMaildir } = await mailLib();
      const n = await writeSampleMaildir(o.out, o.count);
      process.stdout.write(`wrote ${n} messages to ${o.out}; now: nanoseek mail triage --source maildir:${o.out}\n`);
    });

  mail
    .command('demo')
    .description('one command to see it work: a sample Maildir from the corpus, triaged by the shipped model, with a digest')
    .option('--out <dir>', 'where the sample mailbox, state and digest go', 'mail-demo')
    .option('--count <n>', 'messages in the sample mailbox', intFlag('--count'), 40)
    .action(async (o: { out: string; count: number }) => {
      const box = join(o.out, 'Maildir');
      const { writeSampleMaildir } = await mailLib();
      if (!existsSync(box)) process.stderr.write(`wrote ${await writeSampleMaildir(box, o.count)} corpus messages to ${box}\n`);
      await triageCommand({ source: `maildir:${box}`, state: join(o.out, 'state.db'), jsonl: join(o.out, 'triage.jsonl'), html: join(o.out, 'digest.html'), concurrency: 4, passwordEnv: 'NANOSEEK_IMAP_PASSWORD' });
      process.stderr.write(`digest: ${join(o.out, 'digest.html')}; records: ${join(o.out, 'triage.jsonl')}; browse and correct: nanoseek serve --mail-state ${join(o.out, 'state.db')} (then open http://127.0.0.1:8080/mail)\n`);
    });

  withMailModelFlags(mail.command('eval').description('accuracy per category, confusion matrix, spam precision/recall against hand labels'))
    .option('--labels <jsonl>', 'hand labels: {"id": corpus id | "path": file, "category": …} per line', 'data/mail/eval-labels.jsonl')
    .option('--config <json>', 'categories and rules')
    .option('--baseline', 'also train and score the naive Bayes baseline on the corpus minus the labelled messages')
    .option('--recipe <json>', "the model's recipe: the baseline gets its training data and prompt length", 'configs/mail-nano.json')
    .option('--out <dir>', 'write eval.json and README.md (the report) there')
    .option('--json', 'print the result as JSON')
    .action(async (o: ModelFlags & { labels: string; config?: string; baseline?: boolean; recipe: string; out?: string; json?: boolean }) => {
      const { evaluateTriage, loadMailConfig, LocalModel, parseRecipe, readLabels, renderEvalMarkdown } = await mailLib();
      const config = await loadMailConfig(o.config);
      const labels = await readLabels(o.labels, config.categories);
      const model = await modelFrom(o, config, (l) => process.stderr.write(`${l}\n`));
      const tokenizer = model instanceof LocalModel ? (await loadForInference(o.model ?? join(await packageRoot(), DEFAULT_MAIL_MODEL))).tokenizer : undefined;
      const result = await evaluateTriage(labels, {
        config,
        model,
        baseline: o.baseline,
        tokenizer,
        recipe: o.baseline ? parseRecipe((await readJsonConfig(o.recipe)).json, o.recipe) : undefined,
        onProgress: (d, n) => process.stderr.write(d === n ? '\n' : d % 20 === 0 ? `${d}/${n}\r` : ''),
      });
      await model?.close();
      const md = renderEvalMarkdown(result, config.categories, `nanoseek mail on ${labels.length} hand-labelled messages`);
      if (o.out !== undefined) {
        await writeFileAtomic(join(o.out, 'eval.json'), `${JSON.stringify({ ...result, pairs: result.pairs }, null, 2)}\n`);
        await writeFileAtomic(join(o.out, 'README.md'), md);
      }
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : md);
    });

  mail
    .command('train')
    .description('train the shipped mail model by its recipe (configs/mail-nano.json) and export it')
    .option('--config <json>', 'the recipe', 'configs/mail-nano.json')
    .option('--out <dir>', 'run directory (resumable)', 'runs/mail')
    .option('--export <dir>', 'write nano-mail here', 'models')
    .action(async (o: { config: string; out: string; export: string }) => {
      const { parseRecipe, runMailRecipe } = await mailLib();
      const recipe = parseRecipe((await readJsonConfig(o.config)).json, o.config);
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const t0 = Date.now();
      const dest = await runMailRecipe(recipe, { out: resolve(o.out), exportDir: resolve(o.export), signal: abort.signal, log: (l) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${l}\n`) });
      process.stdout.write(`${dest} is ready; score it: nanoseek mail eval --model ${dest} --baseline --out docs/mail\n`);
    });

  benchCommand(program)
    .command('mail')
    .description('messages per minute end to end (parse, rules, model, state) on a sample Maildir from the corpus')
    .option('--model <path>', `checkpoint directory or .gguf (default: ${DEFAULT_MAIL_MODEL})`)
    .option('--r1-distill', "measure a random-weight DeepSeek-R1-Distill-Qwen-1.5B stand-in in Q4_K_M instead: its own answers, then the shipped model's answers replayed token by token (try --messages 8)")
    .option('--replay', "also time the model emitting the shipped model's answers token by token (implied by --r1-distill)")
    .option('--messages <n>', 'messages in the sample mailbox', intFlag('--messages'), 60)
    .option('--concurrency <n>', 'messages in flight', intFlag('--concurrency'), 4)
    .option('--json', 'one JSON document')
    .action(async (o: { model?: string; r1Distill?: boolean; replay?: boolean; messages: number; concurrency: number; json?: boolean }) => {
      const model = o.r1Distill ? 'r1-distill' : (o.model ?? join(await packageRoot(), DEFAULT_MAIL_MODEL));
      const { benchMail, formatMailBench } = await import('../../../bench/mail.js');
      const r = await benchMail({ model, messages: o.messages, concurrency: o.concurrency, replay: o.replay });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatMailBench(r)}\n`);
    });
}
