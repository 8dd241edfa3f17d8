// Runs inside an empty network namespace (test/mail-offline.test.ts starts it with `unshare -n`):
// brings up loopback, shows that nothing else is reachable, starts dovecot on 127.0.0.1, fills it
// with corpus messages, and runs the whole app — `nanoseek mail triage` over IMAP with the shipped
// model — as a user would. Prints one JSON line for the parent.
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { corpusEntries, readCorpusMessage } from '../src/mail/index.js';
import { removeDovecotRoot, startDovecot } from './dovecot.js';

const [work, repo] = process.argv.slice(2);

function reach(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 3000 });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('timeout', () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

// The test runner also loads every file of dist/test/: without its arguments this one does nothing.
if (work !== undefined && repo !== undefined) await main();

async function main(): Promise<void> {
  const up = spawnSync('ip', ['link', 'set', 'lo', 'up']);
  if (up.status !== 0) throw new Error(`ip link set lo up: ${up.stderr}`);
  const links = spawnSync('ip', ['-o', 'link']).stdout.toString().trim().split('\n').map((l) => l.split(':')[1].trim());
  const outside = await reach('192.0.2.1', 80); // TEST-NET-1: never routed; in a namespace, no route at all
  const d = await startDovecot();
  try {
    const c = new ImapFlow({ host: '127.0.0.1', port: d.port, secure: false, auth: { user: d.user, pass: d.password }, logger: false });
    await c.connect();
    const all = await corpusEntries();
    for (let i = 0; i < 10; i++) {
      let b = await readCorpusMessage(all[i * 601]);
      if (b.subarray(0, 5).toString('latin1') === 'From ') b = b.subarray(b.indexOf(0x0a) + 1);
      await c.append('INBOX', b);
    }
    await c.logout();
    const run = spawnSync(
      process.execPath,
      [join(repo, 'dist/src/cli/main.js'), 'mail', 'triage', '--source', `imap://alice@127.0.0.1:${d.port}/INBOX`, '--state', join(work, 'state.db'), '--jsonl', join(work, 'out.jsonl'), '--html', join(work, 'digest.html'), '--quiet'],
      { env: { ...process.env, NANOSEEK_IMAP_PASSWORD: d.password }, encoding: 'utf8', timeout: 300_000 },
    );
    process.stdout.write(`${JSON.stringify({ links, outside, status: run.status, stderr: run.stderr.slice(-3000) })}\n`);
  } finally {
    await d.stop();
    removeDovecotRoot(d.root);
  }
}
