import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { register } from '../src/cli/commands/tokenize.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { MIXED_CORPUS, realTokenizerDir } from './tokenizer-helpers.js';

/** Runs `nanoseek <args>` in-process and returns what it printed on stdout. */
async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  let out = '';
  register(program, { out: (text) => (out += text), err: () => {} });
  await program.parseAsync(['node', 'nanoseek', ...args]);
  return out;
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nanoseek-tokenize-cli-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('nanoseek tokenizer train / tokenize', () => {
  test('trains, writes both files atomically, and tokenizes with the result', async () => {
    const out = join(tmp, 'tok');
    const printed = await run(['tokenizer', 'train', '--corpus', MIXED_CORPUS, '--vocab-size', '400', '--out', out]);
    assert.match(printed, /wrote .*tokenizer\.json \(vocab 400/);
    assert.deepEqual((await readdir(out)).sort(), ['tokenizer.json', 'tokenizer_config.json']);

    const json = JSON.parse(await run(['tokenize', '--tokenizer', out, '--json', 'Hello <think>12</think>']));
    const tok = await loadTokenizer(out);
    assert.deepEqual(json.ids, tok.encode('Hello <think>12</think>'));
    assert.deepEqual(json.pieces, json.ids.map((id: number) => tok.idToToken(id)));
    assert.ok(json.pieces.includes('<think>') && json.pieces.includes('1') && json.pieces.includes('2'));
    assert.notEqual(json.ids[0], tok.special.bos);

    const withBos = JSON.parse(await run(['tokenize', '--tokenizer', out, '--json', '--bos', 'Hello']));
    assert.deepEqual(withBos.ids, [tok.special.bos, ...tok.encode('Hello')]);

    const text = await run(['tokenize', '--tokenizer', join(out, 'tokenizer.json'), 'Hi there']);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.at(-1), `${tok.encode('Hi there').length} tokens`);
    assert.match(lines[0], /^\s*\d+ {2}\S+ {2}"H/);
  });

  test('prints ids and pieces of a real tokenizer', async () => {
    const json = JSON.parse(await run(['tokenize', '--tokenizer', realTokenizerDir('deepseek_v3'), '--json', 'Hello<｜User｜>']));
    assert.deepEqual(json, { ids: [19923, 128803], pieces: ['Hello', '<｜User｜>'] });
  });

  test('bad input is reported with the file and the problem', async () => {
    await assert.rejects(run(['tokenize', '--tokenizer', join(tmp, 'nope'), 'x']), /nope: no such file or directory/);
    await assert.rejects(
      run(['tokenizer', 'train', '--corpus', join(tmp, 'missing.txt'), '--vocab-size', '300', '--out', tmp]),
      /missing\.txt: no such file/,
    );
    await assert.rejects(run(['tokenizer', 'train', '--corpus', MIXED_CORPUS, '--vocab-size', 'lots', '--out', tmp]), /--vocab-size: expected a positive integer/);
  });
});
