// nanoseek mail against a real IMAP server (dovecot, started here on 127.0.0.1): a read-only run
// leaves the mailbox byte-identical, a rerun triages only new mail, a wrong password and a server that
// goes away mid-run stop cleanly and resumably with every message accounted for, and --apply's moves
// and keywords are checked on the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { connect, createServer, type Socket } from 'node:net';
import { applyPlan, corpusEntries, ImapSource, parseMailConfig, MailState, planActions, readCorpusMessage, runTriage, type MailConfig } from '../src/mail/index.js';
import { dovecotMissing, removeDovecotRoot, startDovecot, type Dovecot } from './dovecot.js';

const missing = dovecotMissing();

async function client(d: Dovecot): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: d.port, secure: false, auth: { user: d.user, pass: d.password }, logger: false });
  await c.connect();
  return c;
}

/** Appends `n` corpus messages (spam and ham) to INBOX. */
async function seed(d: Dovecot, n: number, offset = 0): Promise<void> {
  const all = await corpusEntries();
  const c = await client(d);
  for (let i = 0; i < n; i++) {
    const e = all[(offset + i) * 97 % all.length];
    let bytes = await readCorpusMessage(e);
    if (bytes.subarray(0, 5).toString('latin1') === 'From ') bytes = bytes.subarray(bytes.indexOf(0x0a) + 1);
    await c.append('INBOX', bytes);
  }
  await c.logout();
}

function uri(d: Dovecot, folder = 'INBOX'): string {
  return `imap://${d.user}@127.0.0.1:${d.port}/${folder}`;
}

// Rules only (no model): what the server sees does not depend on a model, and the run is fast.
const config: MailConfig = parseMailConfig({ rules: [{ name: 'all', subject: '.', category: 'newsletter' }] });

test('IMAP: read-only runs leave the mailbox byte-identical; a rerun triages only new mail', { skip: missing ?? false }, async () => {
  const d = await startDovecot();
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-mail-imap-'));
  process.env.NANOSEEK_TEST_IMAP_PW = d.password;
  try {
    await seed(d, 12);
    const before = d.snapshot();
    assert.equal([...before.keys()].filter((k) => k.startsWith('new/') || k.startsWith('cur/')).length, 12);
    const state = new MailState(join(dir, 'state.db'));
    const run = () => runTriage({ source: new ImapSource(uri(d), { passwordEnv: 'NANOSEEK_TEST_IMAP_PW' }), state, config, model: null, allowHosts: ['127.0.0.1'] });
    const first = await run();
    assert.equal(first.found, 12);
    assert.equal(first.ok, 12);
    assert.equal(first.stoppedBy, null);
    assert.deepEqual(d.snapshot(), before, 'a read-only run changed the mailbox (flags or contents)');
    // The UID URL leads back to the message; keys carry UIDVALIDITY.
    assert.match(first.records[0].location, /^imap:\/\/alice@127\.0\.0\.1:\d+\/INBOX;UIDVALIDITY=\d+\/;UID=\d+$/);
    await seed(d, 3, 100);
    const second = await run();
    assert.deepEqual([second.found, second.skipped, second.ok], [15, 12, 3]);
    assert.equal(state.records().length, 15);
    state.close();
  } finally {
    await d.stop();
    removeDovecotRoot(d.root);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TCP relay to the server whose connections can be cut: a network that drops mid-run. */
async function relay(port: number): Promise<{ port: number; cut(): void; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test('IMAP: a wrong password is a clear error; a connection that drops mid-run stops resumably', { skip: missing ?? false }, async () => {
  const d = await startDovecot();
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-mail-imap-'));
  const r = await relay(d.port);
  try {
    await seed(d, 30);
    const state = new MailState(join(dir, 'state.db'));
    process.env.NANOSEEK_TEST_IMAP_PW = 'wrong';
    await assert.rejects(
      runTriage({ source: new ImapSource(uri(d), { passwordEnv: 'NANOSEEK_TEST_IMAP_PW' }), state, config, model: null }),
      /login failed for alice \(wrong user or password\)/,
    );
    delete process.env.NANOSEEK_TEST_IMAP_PW;
    await assert.rejects(runTriage({ source: new ImapSource(uri(d), { passwordEnv: 'NANOSEEK_TEST_IMAP_PW' }), state, config, model: null }), /no IMAP password: set NANOSEEK_TEST_IMAP_PW/);
    process.env.NANOSEEK_TEST_IMAP_PW = d.password;
    // The connection drops after the 8th message: the run ends early, saying why, and keeps what it did.
    let seen = 0;
    const cut = await runTriage({
      source: new ImapSource(`imap://alice@127.0.0.1:${r.port}/INBOX`, { passwordEnv: 'NANOSEEK_TEST_IMAP_PW', timeoutS: 5 }),
      state,
      config,
      model: null,
      concurrency: 1,
      onRecord: () => {
        if (++seen === 8) r.cut();
      },
    });
    assert.ok(cut.stoppedBy !== null, 'the run should report why it stopped');
    assert.match(cut.stoppedBy!, /run again to resume/);
    assert.ok(cut.ok >= 8 && cut.ok < 30, `${cut.ok} triaged`);
    assert.equal(cut.ok + cut.needsReview + cut.errors + cut.pending, cut.found - cut.skipped, 'every message is accounted for');
    // The rerun does the rest and nothing twice.
    const rest = await runTriage({ source: new ImapSource(`imap://alice@127.0.0.1:${r.port}/INBOX`, { passwordEnv: 'NANOSEEK_TEST_IMAP_PW' }), state, config, model: null });
    assert.equal(rest.stoppedBy, null);
    assert.equal(rest.skipped, cut.ok);
    assert.equal(rest.ok, 30 - cut.ok);
    assert.equal(state.records().length, 30);
    state.close();
  } finally {
    r.close();
    await d.stop();
    removeDovecotRoot(d.root);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('IMAP --apply: messages are moved into their category folders and get keywords; nothing is deleted', { skip: missing ?? false }, async () => {
  const d = await startDovecot();
  const dir = mkdtempSync(join(tmpdir(), 'nanoseek-mail-imap-'));
  process.env.NANOSEEK_TEST_IMAP_PW = d.password;
  try {
    await seed(d, 10);
    const applyConfig = parseMailConfig({
      rules: [
        { name: 'spammy', subject: '[$!]|free|money|save', category: 'spam' },
        { name: 'rest', subject: '.', category: 'FYI' },
      ],
      folders: { spam: 'Junk', FYI: 'Triage/FYI' },
      keywords: { spam: ['$Junk'], FYI: ['nanoseek_fyi'] },
    });
    const state = new MailState(join(dir, 'state.db'));
    const s = await runTriage({ source: new ImapSource(uri(d), { passwordEnv: 'NANOSEEK_TEST_IMAP_PW' }), state, config: applyConfig, model: null });
    const spam = s.records.filter((r) => r.category === 'spam').length;
    assert.ok(spam > 0 && spam < 10, `${spam} spam`);
    const plan = planActions(state.records(), applyConfig, state);
    assert.equal(plan.length, 20);
    const r = await applyPlan(plan, new ImapSource(uri(d), { passwordEnv: 'NANOSEEK_TEST_IMAP_PW', writable: true }), state);
    assert.deepEqual(r.failed, []);
    assert.equal(r.done, 20);
    assert.equal(planActions(state.records(), applyConfig, state).length, 0, 'a rerun repeats nothing');
    const c = await client(d);
    const count = async (box: string) => {
      const st = await c.status(box, { messages: true });
      return st === false ? -1 : st.messages;
    };
    assert.equal(await count('INBOX'), 0);
    assert.equal(await count('Junk'), spam);
    assert.equal(await count('Triage/FYI'), 10 - spam);
    await c.mailboxOpen('Junk');
    for await (const m of c.fetch('1:*', { flags: true })) assert.ok(m.flags?.has('$Junk'), 'keyword set');
    await c.logout();
    state.close();
  } finally {
    await d.stop();
    removeDovecotRoot(d.root);
    rmSync(dir, { recursive: true, force: true });
  }
});
