// The README's five-minute tour, walked as a newcomer would on a fresh clone: every command of its
// code block, as written, in a copy of what a clone holds after `npm install` (the tracked files,
// the compiled dist/ and build/, node_modules). Only the server's port changes (to a free one), and the two
// interactive steps get their keys: a question typed into `chat`, Ctrl-C during the training run.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../src/infer/index.js';

const root = await packageRoot();

/** The tour's commands: the first indented code block after its heading, comments dropped. */
function tourCommands(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf('### A five-minute tour');
  assert.ok(at >= 0, 'README.md has a five-minute tour');
  const block = /\n\n((?: {4}.*\n)+)/.exec(readme.slice(at));
  assert.ok(block, 'the tour has a code block');
  return block[1].trimEnd().split('\n').map((l) => l.slice(4).replace(/\s{2,}# .*$/, '').trim());
}

/** A fresh clone after `npm install`: git's files (committed or not, never ignored), dist/, build/, node_modules. */
function freshClone(): string | null {
  let files: string[];
  try {
    files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-clone-'));
  for (const f of files) {
    if (f === 'node_modules' || f.startsWith('node_modules/') || !existsSync(join(root, f))) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(root, f), join(dir, f));
  }
  // What `npm install` builds: the compiled CLI and the WebAssembly kernels.
  for (const part of ['dist/src', 'dist/bench', 'build']) cpSync(join(root, part), join(dir, part), { recursive: true });
  symlinkSync(realpathSync(join(root, 'node_modules')), join(dir, 'node_modules'));
  return dir;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** npm must never reach for the network here; a newcomer's copy has everything. */
const env = { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

interface Running {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/**
 * Runs one tour line through the shell, in its own process group (as a terminal does); `direct`
 * runs a line without quotes as its own process instead, so that its pid is the command's (npm's).
 */
function shell(line: string, cwd: string, direct = false): Running {
  const [file, ...args] = direct ? line.split(/\s+/) : ['sh', '-c', line];
  const child = spawn(file, args, { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const r = { child, output: () => out, exit };
  started.push(r);
  return r;
}

async function until(what: string, ok: () => boolean, r: Running, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (r.child.exitCode !== null) await r.exit;
    if (r.child.exitCode !== null || Date.now() > end) assert.fail(`${what}: not seen; output:\n${r.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function toEnd(line: string, cwd: string, input = ''): Promise<string> {
  const r = shell(line, cwd);
  r.child.stdin!.end(input);
  const code = await r.exit;
  assert.equal(code, 0, `${line}\n${r.output()}`);
  return r.output();
}

const sum = (q: string) => q.replace(/^What is |\?$/g, '').split('+').reduce((s, x) => s + Number(x), 0);

let clone: string | null = null;
const started: Running[] = [];
after(() => {
  // Whatever a failed step left running goes with its process group.
  for (const r of started) if (r.child.exitCode === null) try { process.kill(-r.child.pid!, 'SIGKILL'); } catch { /* gone */ }
  if (clone !== null) rmSync(clone, { recursive: true, force: true });
});

test('the README\'s five-minute tour works as written on a fresh clone', { timeout: 300_000 }, async (t) => {
  const commands = tourCommands();
  assert.deepEqual(commands.map((c) => c.split(' ').slice(0, 3).join(' ')), [
    'npm start', 'curl -s http://127.0.0.1:8080/v1/chat/completions', 'npx nanoseek chat',
    'npx nanoseek train', 'npx nanoseek train', 'npx nanoseek plot', 'npx nanoseek eval',
  ], 'the tour this test knows how to walk');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  assert.match(readme, /`npx nanoseek …` runs this package's own command/, 'the Quick start says how to reach the command');
  clone = freshClone();
  if (clone === null) {
    t.skip('not a git checkout: no way to tell what a fresh clone holds');
    return;
  }
  const [serve, ask, chat, train, resume, plot, evaluate] = commands;

  // 1. npm start, on a free port; ask it with the README's curl line.
  const port = await freePort();
  const server = shell(`${serve} -- --port ${port}`, clone, true);
  await until('the server listening', () => server.output().includes(`http://127.0.0.1:${port}`), server);
  const reply = JSON.parse(await toEnd(ask.replace('127.0.0.1:8080', `127.0.0.1:${port}`), clone));
  const question = JSON.parse(/-d '(.*)'$/.exec(ask)![1]).messages[0].content as string;
  assert.equal(reply.choices[0].message.content, String(sum(question)), JSON.stringify(reply));
  assert.match(reply.choices[0].message.reasoning_content, /= \d+/);
  // Stopping npm start by the npm process's id stops the server too (npm passes the signal on to
  // the server it execs, which finishes and exits).
  process.kill(server.child.pid!, 'SIGTERM');
  await server.exit;
  assert.match(server.output(), /SIGTERM: no new requests[\s\S]*server stopped/);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), 'the server is gone');

  // 2. chat: the banner says what to ask; one of its examples, typed in, gets the right answer.
  const card = JSON.parse(readFileSync(join(clone, 'models', 'nano-r1zero', 'model_card.json'), 'utf8'));
  const typed = card.examples[2] as string;
  const talk = await toEnd(chat, clone, `${typed}\n/exit\n`);
  assert.ok(talk.includes(card.description) && talk.includes(`Try: ${card.examples[0]}`), talk);
  assert.match(talk, new RegExp(`</think>\\n\\n${sum(typed)}\\n`));

  // 3. A 30-step training run, Ctrl-C after a few steps, then --resume to the end.
  const run = shell(train, clone);
  await until('step 3', () => /^step 3\/30 /m.test(run.output()), run, 120_000);
  process.kill(-run.child.pid!, 'SIGINT');
  await run.exit;
  assert.match(run.output(), /--steps 30: warmup 3 /);
  assert.match(run.output(), /stopped at step \d+; runs\/tour\/checkpoint-\d+/);
  const resumed = await toEnd(resume, clone);
  assert.match(resumed, /resuming runs\/tour from checkpoint-\d+/);
  assert.match(resumed, /done at step 30, validation loss \d/);

  // 4. plot: a curve, not two points.
  assert.match(await toEnd(plot, clone), /wrote runs\/tour\/metrics\.html/);
  assert.equal(readFileSync(join(clone, 'runs', 'tour', 'metrics.jsonl'), 'utf8').trim().split('\n').length, 30);
  assert.ok(existsSync(join(clone, 'runs', 'tour', 'metrics.html')));

  // 5. eval of the shipped model, in its own prompt format: about 90%.
  const scores = await toEnd(evaluate, clone);
  const pass = Number(/pass@1 \(greedy\)\s+([\d.]+)%/.exec(scores)?.[1]);
  assert.ok(pass >= 80, scores);
  assert.match(scores, /r1-zero \+ <think> prompt \(from the model card\)/);
});
