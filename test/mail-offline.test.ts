// The privacy proof: the whole pipeline — IMAP server, model, app — runs inside an empty network
// namespace (only loopback exists there) and completes. The namespace needs root (`unshare -n`);
// CI runs as root. The child (mail-offline-child.ts) also shows that no outside address is reachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dovecotMissing } from './dovecot.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('offline: triage over IMAP with the shipped model completes inside an empty network namespace', () => {
  const probe = spawnSync('unshare', ['-n', 'true'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `cannot create a network namespace (unshare -n: ${probe.stderr || probe.error?.message}); this test needs root, as CI has`);
  const missing = dovecotMissing();
  assert.equal(missing, null, missing ?? '');
  assert.ok(existsSync(join(repo, 'models/nano-mail/config.json')), 'models/nano-mail is missing (nanoseek mail train writes it)');
  const work = mkdtempSync(join(tmpdir(), 'nanoseek-offline-'));
  try {
    const r = spawnSync('unshare', ['-n', '--', process.execPath, join(repo, 'dist/test/mail-offline-child.js'), work, repo], { encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `the namespace run failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { links: string[]; outside: string; status: number; stderr: string };
    assert.deepEqual(out.links, ['lo'], 'the namespace has loopback only');
    assert.match(out.outside, /ENETUNREACH|EHOSTUNREACH|ENETDOWN/);
    assert.equal(out.status, 0, `nanoseek mail triage failed offline: ${out.stderr}`);
    const records = readFileSync(join(work, 'out.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(records.length, 10);
    for (const rec of records) assert.ok(rec.status === 'ok' || rec.status === 'needs_review', `${rec.subject}: ${rec.error}`);
    assert.ok(records.some((rec) => rec.decided_by?.startsWith('model:nano-mail')), 'the model triaged some');
    assert.match(readFileSync(join(work, 'digest.html'), 'utf8'), /10 messages/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
