// The triage pipeline end to end on local sources with a real (small, random) model on the engine:
// every answer is valid JSON in the schema, state makes reruns and interrupted runs resume without
// repeats or losses, corrections become sender rules, a model's links and dates are checked against
// the message, --apply on a Maildir, the outputs, the loopback endpoint, and the network guard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadForInference } from '../src/infer/index.js';
import {
  answerValidator,
  applyPlan,
  corpusEntries,
  decideByRules,
  defaultConfig,
  EmlSource,
  EndpointModel,
  groundAnswer,
  summaryGrounded,
  LocalModel,
  MaildirSource,
  MailState,
  MboxSource,
  openSource,
  parseMailConfig,
  parseMessage,
  parseRecipe,
  planActions,
  readTrainLabels,
  renderDigest,
  runTriage,
  splitMbox,
  triageMessage,
  unescapeMboxMessage,
  weakLabel,
  writeSampleMaildir,
  type TriageModel,
} from '../src/mail/index.js';
import { InferenceServer } from '../src/serve/server.js';
import { fixtureTokenizer, randomModel } from './serve-fixture.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'nanoseek-mail-'));

const SHIPPED = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'nano-mail');

/** The shipped mail model: small and trained for exactly this answer, so a run takes seconds. */
async function shippedModel(): Promise<LocalModel> {
  return new LocalModel(await loadForInference(SHIPPED), defaultConfig().categories);
}

test('sources: Maildir (new/cur, subfolders), mbox (From_ lines, >From unescaped), .eml folders; bad specs named', async () => {
  const dir = tmp();
  try {
    const md = join(dir, 'Maildir');
    for (const sub of ['new', 'cur', 'tmp', '.Lists.Work/cur']) mkdirSync(join(md, sub), { recursive: true });
    writeFileSync(join(md, 'new', '100.a.host'), 'Subject: one\n\nbody');
    writeFileSync(join(md, 'cur', '101.b.host:2,S'), 'Subject: two\n\nbody');
    writeFileSync(join(md, 'tmp', '102.c.host'), 'Subject: half-delivered\n\nbody');
    writeFileSync(join(md, '.Lists.Work', 'cur', '103.d.host:2,'), 'Subject: three\n\nbody');
    const m = new MaildirSource(md);
    await m.open();
    assert.deepEqual(await m.folders(), ['INBOX', 'Lists/Work']);
    assert.deepEqual((await m.list('INBOX')).map((r) => r.key), ['100.a.host', '101.b.host']);
    assert.deepEqual((await m.list('Lists/Work')).map((r) => r.key), ['103.d.host']);
    // mbox: a body line "From " was escaped as ">From " when written; ">>From " stays one level escaped.
    const mbox = join(dir, 'box.mbox');
    writeFileSync(mbox, 'From a@b Sat Jan  1 00:00:00 2000\nSubject: first\n\n>From the start\n>>From quoted\n\nFrom c@d Sat Jan  1 00:00:01 2000\nSubject: second\n\nbody\n');
    const mb = new MboxSource(mbox);
    await mb.open();
    const refs = await mb.list('INBOX');
    assert.equal(refs.length, 2);
    const first = Buffer.from(await mb.read(refs[0])).toString('latin1');
    assert.equal(first, 'Subject: first\n\nFrom the start\n>From quoted\n\n');
    assert.equal(splitMbox(Buffer.from('no from line here')).length, 0);
    assert.equal(Buffer.from(unescapeMboxMessage(Buffer.from('From x\nA\n>From y\n'))).toString(), 'A\nFrom y\n');
    const emlDir = join(dir, 'eml');
    mkdirSync(join(emlDir, 'sub'), { recursive: true });
    writeFileSync(join(emlDir, 'b.eml'), 'Subject: b\n\nx');
    writeFileSync(join(emlDir, 'sub', 'a.eml'), 'Subject: a\n\nx');
    writeFileSync(join(emlDir, 'notes.txt'), 'not mail');
    const eml = new EmlSource(emlDir);
    await eml.open();
    assert.deepEqual((await eml.list('INBOX')).map((r) => r.key), ['b.eml', 'sub/a.eml']);
    assert.throws(() => openSource('pop3://x'), /expected maildir:<dir>, mbox:<file>, eml:<dir or file>, or imap/);
    assert.throws(() => openSource('imap://alice:pw@host/INBOX'), /password must not be in the URI/);
    await assert.rejects(new MaildirSource(join(dir, 'nope')).open(), /maildir:.*nope: no such directory/);
    await assert.rejects(new MaildirSource(emlDir).open(), /not a Maildir/);
    await assert.rejects(new MboxSource(join(emlDir, 'notes.txt')).open(), /not an mbox file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: rules and folders checked, errors name the file and field', () => {
  assert.throws(() => parseMailConfig({ rules: [{ from: '(', category: 'spam' }] }, 'my.json'), /my\.json: rules\[0\]\.from = "\(": not a valid regular expression/);
  assert.throws(() => parseMailConfig({ rules: [{ from: 'x', category: 'later' }] }, 'my.json'), /rules\[0\]\.category = "later": must be one of the categories/);
  assert.throws(() => parseMailConfig({ rules: [{ category: 'spam' }] }, 'my.json'), /a rule needs at least one condition/);
  assert.throws(() => parseMailConfig({ folders: { nope: 'X' } }, 'my.json'), /folders\.nope/);
  assert.throws(() => parseMailConfig({ colour: 'red' }, 'my.json'), /colour = "red": unknown field/);
  const c = parseMailConfig({ categories: ['work', 'other', 'spam'], rules: [{ list_id: 'exmh', category: 'work' }] });
  assert.deepEqual(c.folders, { spam: 'Junk' }, 'default folders of dropped categories are dropped');
});

test('pipeline: the shipped model answers every message in the schema; a rerun and an interrupted run resume exactly', async () => {
  const dir = tmp();
  const model = await shippedModel();
  try {
    const md = join(dir, 'Maildir');
    await writeSampleMaildir(md, 24);
    const state = new MailState(join(dir, 'state.db'));
    const config = defaultConfig();
    const validate = answerValidator(config.categories);
    // Interrupted after 7 messages (Ctrl-C): what is done is kept, nothing is half-recorded.
    const abort = new AbortController();
    const part = await runTriage({ source: new MaildirSource(md), state, config, model, concurrency: 2, signal: abort.signal, onRecord: (_, p) => p.done === 7 && abort.abort() });
    assert.equal(part.stoppedBy, 'interrupted');
    assert.ok(part.ok + part.needsReview >= 7);
    assert.equal(part.ok + part.needsReview + part.errors + part.pending, 24, 'every message is accounted for');
    const rest = await runTriage({ source: new MaildirSource(md), state, config, model, concurrency: 2 });
    assert.equal(rest.skipped, part.ok + part.needsReview + part.errors);
    assert.equal(rest.ok + rest.needsReview + rest.errors, 24 - rest.skipped);
    const records = state.records();
    assert.equal(records.length, 24);
    assert.equal(new Set(records.map((r) => r.key)).size, 24, 'no message twice');
    const byModel = records.filter((r) => r.decided_by?.startsWith('model:'));
    assert.ok(byModel.length > 0);
    for (const r of byModel) {
      assert.equal(r.status, 'ok');
      assert.equal(validate({ category: r.category, priority: r.priority, summary: r.summary, actions: r.actions, links: r.links }), null);
      assert.ok(r.model_calls >= 1 && r.model_calls <= 2);
    }
    const again = await runTriage({ source: new MaildirSource(md), state, config, model });
    assert.deepEqual([again.found, again.skipped, again.ok], [24, 24, 0]);
    // Outputs: the digest groups by category and links each original.
    const html = renderDigest(records, config.categories);
    assert.match(html, /<h2>(FYI|newsletter|spam|urgent|needs reply|promotional|notification|personal) <span class="count">/);
    assert.ok(html.includes(`file://${encodeURI(md).replace(/%2F/gi, '/')}`) || html.includes('file:///'));
    assert.ok(!/<script/i.test(html));
    state.close();
  } finally {
    await model.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rules: the user's rules, corrected senders and header rules decide before any model", async () => {
  const config = parseMailConfig({ rules: [{ name: 'boss', from: '@boss\\.example$', category: 'urgent' }] });
  const msg = (h: string) => parseMessage(Buffer.from(`${h}\nSubject: s\n\nbody`));
  assert.deepEqual(decideByRules(await msg('From: Big <ceo@boss.example>'), config), { category: 'urgent', priority: 1, rule: 'config:boss' });
  assert.deepEqual(decideByRules(await msg('From: x@y.z'), config, new Map([['x@y.z', 'newsletter']])), { category: 'newsletter', priority: 4, rule: 'sender:x@y.z' });
  assert.equal(decideByRules(await msg('From: x@y.z\nAuto-Submitted: auto-generated'), config)?.category, 'notification');
  assert.equal(decideByRules(await msg('From: x@y.z\nAuto-Submitted: no'), config), null);
  assert.equal(decideByRules(await msg('From: x@y.z\nList-Id: <l.x>\nIn-Reply-To: <a@b>'), config)?.category, 'FYI');
  assert.equal(decideByRules(await msg('From: x@y.z\nList-Id: <l.x>'), config), null);
});

test("grounding: a link the model makes up is dropped, dates must be real days, relative deadlines resolve", async () => {
  const m = await parseMessage(Buffer.from('From: a@b.c\nDate: Tue, 03 Sep 2002 10:00:00 +0000\nSubject: s\n\nPlease review http://real.example/doc by Friday.'));
  const g = groundAnswer(
    {
      category: 'needs reply',
      priority: 2,
      summary: ' Review the doc. ',
      actions: [
        { task: 'review the doc by Friday', due: null },
        { task: 'x', due: '2002-02-30' },
      ],
      links: ['http://real.example/doc.', 'http://evil.example/phish'],
    },
    m,
  );
  assert.deepEqual(g.links, ['http://real.example/doc']);
  assert.deepEqual(g.actions, [
    { task: 'review the doc by Friday', due: '2002-09-06' },
    { task: 'x', due: null },
  ]);
  assert.equal(g.summary, 'Review the doc.');
  assert.equal(g.problem, undefined);
  // A summary of some other message gives way to the subject; a paraphrase or another script stays.
  const other = groundAnswer({ category: 'FYI', priority: 4, summary: 'Selling Wedded Bliss (was: Ouch)', actions: [], links: [] }, m);
  assert.equal(other.summary, 's');
  assert.match(other.problem!, /not about this message/);
  assert.ok(summaryGrounded('Alice asks for a review of the document by Friday', m));
  const ja = await parseMessage(Buffer.from('From: a@b.c\nSubject: =?UTF-8?B?5Lya6K2w44Gu5LqI5a6a?=\nContent-Type: text/plain; charset=utf-8\n\n明日の会議は十時からです。'));
  assert.ok(summaryGrounded('明日の会議は十時から', ja));
});

test('a model that fails or answers badly marks the message for review after at most 2 calls; the run goes on', async () => {
  let calls = 0;
  const bad: TriageModel = {
    name: 'bad',
    fits: () => true,
    complete: async () => {
      calls++;
      if (calls % 3 === 0) throw new Error('boom');
      return { text: calls % 3 === 1 ? '{"category": "later"}' : 'not json', reasoning: '', finishReason: 'stop', promptTokens: 1, completionTokens: 1 };
    },
    close: async () => {},
  };
  const rec = await triageMessage({ folder: 'INBOX', key: 'k', location: '/x', bytes: Buffer.from('From: a@b.c\nSubject: s\n\nhello') }, 'test', { config: defaultConfig(), model: bad });
  assert.equal(rec.status, 'needs_review');
  assert.equal(rec.model_calls, 2);
  assert.match(rec.error!, /not JSON/);
  assert.equal(rec.category, null);
});

test('corrections are stored and decide that sender next time; --apply on a Maildir moves files, never deletes', async () => {
  const dir = tmp();
  try {
    const md = join(dir, 'Maildir');
    await writeSampleMaildir(md, 6);
    const state = new MailState(join(dir, 'state.db'));
    const config = parseMailConfig({ rules: [{ name: 'all', subject: '.', category: 'FYI' }], folders: { newsletter: 'News' } });
    await runTriage({ source: new MaildirSource(md), state, config, model: null });
    const target = state.records()[0];
    const fixed = state.correct(target.source, target.folder, target.key, 'newsletter');
    assert.equal(fixed.category, 'newsletter');
    assert.equal(fixed.decided_by, 'correction');
    assert.deepEqual(state.senders().get(target.from.address), 'newsletter');
    assert.equal(state.corrections().length, 1);
    // The plan moves only the corrected message (FYI has no folder here); applying it moves the file.
    const plan = planActions(state.records(), config, state);
    assert.equal(plan.length, 1);
    const before = readdirSync(join(md, 'new')).length;
    const r = await applyPlan(plan, new MaildirSource(md), state);
    assert.equal(r.done, 1);
    assert.equal(readdirSync(join(md, 'new')).length, before - 1);
    assert.equal(readdirSync(join(md, '.News', 'new')).length, 1);
    assert.equal(planActions(state.records(), config, state).length, 0);
    // Nothing was deleted: every message file still exists somewhere.
    const files = [...readdirSync(join(md, 'new')), ...readdirSync(join(md, '.News', 'new'))];
    assert.equal(files.length, 6);
    state.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('endpoint mode: an OpenAI-compatible server on loopback answers in the schema; other hosts are refused', async () => {
  const tok = await fixtureTokenizer();
  const server = new InferenceServer({ model: randomModel(tok, 4), tokenizer: tok, modelId: 'nano-random' });
  const { port } = await server.listen(0);
  try {
    await assert.rejects(EndpointModel.connect('http://192.0.2.1:8080/v1', defaultConfig().categories), /must be on this machine/);
    const model = await EndpointModel.connect(`http://127.0.0.1:${port}/v1`, defaultConfig().categories);
    assert.equal(model.name, `nano-random at http://127.0.0.1:${port}/v1`);
    const rec = await triageMessage({ folder: 'INBOX', key: 'k', location: '/x', bytes: Buffer.from('From: a@b.c\nSubject: lunch?\n\nAre you free for lunch tomorrow?') }, 'test', { config: defaultConfig(), model, answerTokens: 40 });
    // The random model's answer may run out of tokens, but never leaves the schema.
    if (rec.status === 'ok') assert.ok(defaultConfig().categories.includes(rec.category!));
    else assert.match(rec.error!, /did not finish/);
  } finally {
    await server.close();
  }
});

test('the network guard stops a run that opens a socket beyond loopback, before it connects', async () => {
  const dir = tmp();
  try {
    const md = join(dir, 'Maildir');
    await writeSampleMaildir(md, 4);
    const state = new MailState(join(dir, 'state.db'));
    const leaky: TriageModel = {
      name: 'leaky',
      fits: () => true,
      complete: async () => {
        const req = request('http://192.0.2.1:9/steal');
        req.on('error', () => {});
        req.end();
        await new Promise((r) => setTimeout(r, 50));
        return { text: '{}', reasoning: '', finishReason: 'stop', promptTokens: 0, completionTokens: 0 };
      },
      close: async () => {},
    };
    const s = await runTriage({ source: new MaildirSource(md), state, config: parseMailConfig({}), model: leaky, concurrency: 1, noRules: true });
    assert.match(s.stoppedBy ?? '', /blocked a connection to 192\.0\.2\.1:9/);
    assert.equal(state.records().length, 0, 'nothing of the run that leaked is kept');
    assert.equal(s.pending, 4);
    state.close();
    assert.ok(!existsSync(join(dir, 'leak')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  void readFileSync;
});

test('weak labels of the training corpus: spam is the corpus label; list discussion, newsletters, bulk and delivery reports by headers', async () => {
  const label = async (head: string, body = 'Hello there.', spam = false): Promise<string> => weakLabel(await parseMessage(Buffer.from(`${head}\n\n${body}\n`)), spam);
  const list = 'List-Id: Talk <talk.example.org>\nList-Post: <mailto:talk@example.org>\nFrom: ann@example.org';
  assert.equal(await label(`${list}\nSubject: [talk] a question`), 'FYI');
  assert.equal(await label(`${list}\nSubject: [talk] cheap pills`, 'Buy now', true), 'spam', 'the corpus label wins');
  // A list nobody may post to, or a publisher's address on a list, is a newsletter; a reply on any list is discussion.
  assert.equal(await label('List-Id: News <news.example.org>\nList-Post: NO\nFrom: editor@example.org\nSubject: This week'), 'newsletter');
  assert.equal(await label('List-Subscribe: <mailto:subscribe-x@example.org>\nFrom: subscriptions@example.org\nSubject: [Gnome Daily] Tips'), 'newsletter');
  assert.equal(await label('List-Id: News <news.example.org>\nList-Post: NO\nFrom: bob@example.org\nSubject: Re: This week\nIn-Reply-To: <a@b>'), 'FYI');
  // Bulk senders without list headers: Precedence, a per-recipient (VERP) address, opt-out text.
  assert.equal(await label('Precedence: bulk\nFrom: shop@example.com\nSubject: 20% off: summer sale'), 'promotional');
  assert.equal(await label('From: 2.20367.04-dn9zgucxf.1@mail4.example.com\nSubject: Your Daily Strip'), 'newsletter');
  assert.equal(await label('From: kevin+dated+1027554588.4a2cc4@example.ie\nSubject: dinner', 'See you at 8.'), 'personal', 'a +detail sub-address is not a machine');
  assert.equal(await label('From: shop@example.com\nSubject: New arrivals', 'To unsubscribe click here.'), 'newsletter');
  assert.equal(await label('From: MAILER-DAEMON@example.org\nSubject: Returned mail'), 'notification');
  assert.equal(await label('From: ann@example.org\nSubject: [Spambayes] test sets'), 'FYI', "a list's subject tag");
  assert.equal(await label('From: ann@example.org\nSubject: lunch', 'Are you free on Friday?'), 'needs reply');
});

test('mail recipe: oversampling names corpus groups; unknown fields and bad values are named', () => {
  const base = { labels: 'l.jsonl', vocab_size: 4096, prompt_tokens: 351, seed: 0, pretrain: {}, sft: {} };
  assert.deepEqual(parseRecipe({ ...base }, 'r.json').oversample, {});
  assert.deepEqual(parseRecipe({ ...base, oversample: { 'hard-ham-1': 3 } }, 'r.json').oversample, { 'hard-ham-1': 3 });
  assert.throws(() => parseRecipe({ ...base, oversample: { 'hard-ham-9': 3 } }, 'r.json'), /r\.json: oversample = .*corpus groups/);
  assert.throws(() => parseRecipe({ ...base, oversample: { 'hard-ham-1': 0 } }, 'r.json'), /oversample/);
  assert.throws(() => parseRecipe({ ...base, epochs: 2 }, 'r.json'), /r\.json: epochs: unknown field/);
  assert.throws(() => parseRecipe({ ...base, train_labels: 3 }, 'r.json'), /r\.json: train_labels = 3: must be the path/);
  assert.throws(() => parseRecipe({ ...base, train_labels: '' }, 'r.json'), /r\.json: train_labels = "": must be the path/);
});

test('mail recipe: hand labels of training messages name corpus messages outside the evaluation set', async () => {
  const dir = tmp();
  const file = join(dir, 'train.jsonl');
  const [a, b, c] = (await corpusEntries()).filter((e) => e.group === 'hard-ham-1').map((e) => e.id);
  const evalIds = new Set([b]);
  const write = (...lines: object[]): void => writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  assert.equal((await readTrainLabels({}, evalIds)).size, 0, 'no train_labels: weak labels only');
  write({ id: a, category: 'promotional' }, { id: c, category: 'notification', why: 'a receipt' });
  assert.deepEqual([...(await readTrainLabels({ train_labels: file }, evalIds))], [[a, 'promotional'], [c, 'notification']]);
  write({ id: b, category: 'promotional' });
  await assert.rejects(readTrainLabels({ train_labels: file }, evalIds), new RegExp(`train\\.jsonl: ${b.replace('.', '\\.')} is also an evaluation message`));
  write({ id: 'hard-ham-1/99999.x', category: 'promotional' });
  await assert.rejects(readTrainLabels({ train_labels: file }, evalIds), /train\.jsonl: hard-ham-1\/99999\.x is not a message of the SpamAssassin corpus/);
  write({ path: '/tmp/a.eml', category: 'promotional' });
  await assert.rejects(readTrainLabels({ train_labels: file }, evalIds), /name corpus messages by "id"/);
  write({ id: a, category: 'ads' });
  await assert.rejects(readTrainLabels({ train_labels: file }, evalIds), /train\.jsonl:1: "category" must be one of/);
  rmSync(dir, { recursive: true, force: true });
});
