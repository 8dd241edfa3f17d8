// The expert commands end to end, as a user runs them on the shipped MoE model: record while
// evaluating and serving (--record-experts, continued across runs), stats with its heatmap page, an
// EPLB plan exported for SGLang and used back here as --placement, the raw counts, the simulator, the
// committed report's command, and expert-parallel runs that answer exactly as the plain ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../src/infer/index.js';
import { cliArgs, startServe } from './serve-fixture.js';

const run = promisify(execFile);

async function nanoseek(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [...cliArgs(), ...args], { maxBuffer: 1 << 24 });
}

async function fails(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(nanoseek(...args), (err: { stderr: string; code: number }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, message);
    return true;
  });
}

test('experts: record while evaluating and serving, stats, plan → SGLang → --placement, export, simulate', { timeout: 180_000 }, async () => {
  const model = join(await packageRoot(), 'models', 'nano-r1zero');
  const dir = await mkdtemp(join(tmpdir(), 'nanoseek-experts-cli-'));
  try {
    const load = join(dir, 'load.json');
    const evalArgs = ['eval', '--model', model, '--task', 'arithmetic', '--digits', '1,1,1,1,1,1', '--open-think', '--n', '0', '--problems', '12', '--max-tokens', '40', '--json'];
    const plain = JSON.parse((await nanoseek(...evalArgs)).stdout) as Record<string, unknown>;
    const ep = await nanoseek(...evalArgs, '--expert-parallel', '2', '--record-experts', load);
    const parallel = JSON.parse(ep.stdout) as Record<string, unknown>;
    for (const k of ['pass@1', 'format_rate', 'mean_response_tokens', 'mean_think_tokens']) assert.equal(parallel[k], plain[k], k);
    assert.match(ep.stderr, /expert parallelism on 2 devices: rows per device \d+\/\d+, \d+\/\d+, \d+\/\d+ \(per MoE layer\)/);
    const first = JSON.parse(await readFile(load, 'utf8')) as { steps: number; tokens: number; layers: number[]; source: string };
    assert.deepEqual(first.layers, [1, 2, 3]);
    assert.equal(first.source, 'eval');
    assert.ok(first.steps > 0 && first.tokens > 12 * 20);

    // Serving records into the same file, continuing it; SIGTERM writes it.
    const serve = await startServe(model, ['--record-experts', load, '--expert-parallel', '2']);
    try {
      const res = await fetch(`${serve.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'What is 2 + 3?' }], max_tokens: 12 }) });
      assert.equal(res.status, 200);
      serve.child.kill('SIGTERM');
      assert.equal(await serve.exited, 0, serve.stderr());
    } finally {
      serve.child.kill('SIGKILL');
    }
    const stderr = serve.stderr();
    assert.match(stderr, /--record-experts: continuing .*load\.json \(\d+ steps/);
    assert.match(stderr, /expert parallelism on 2 devices/);
    const second = JSON.parse(await readFile(load, 'utf8')) as { steps: number; tokens: number };
    assert.ok(second.steps > first.steps && second.tokens > first.tokens, `${first.steps} → ${second.steps} steps`);

    // Stats: text, JSON and the heatmap page.
    const stats = await nanoseek('experts', 'stats', load, '--devices', '2');
    assert.match(stats.stdout, /3 MoE layers × 16 experts, top-4/);
    assert.match(stats.stdout, /heatmaps: .*load\.html/);
    assert.ok(existsSync(join(dir, 'load.html')));
    const statsJson = JSON.parse((await nanoseek('experts', 'stats', load, '--json', '--html', join(dir, 's.html'))).stdout) as { layers: { layer: number; maxOverMean: number }[] };
    assert.deepEqual(statsJson.layers.map((l) => l.layer), [1, 2, 3]);
    assert.ok(statsJson.layers.every((l) => l.maxOverMean >= 1));

    // Plan → our plan file and SGLang's JSON; both run here as placements, answering as the plain path.
    const plan = await nanoseek('experts', 'plan', '--load', load, '--replicas', '20', '--gpus', '2', '--out', join(dir, 'plan.json'), '--sglang', join(dir, 'sglang.json'));
    assert.match(plan.stdout, /EPLB, hierarchical policy: 16 experts → 20 slots on 2 GPUs \(1 node, 10 slots each\)/);
    assert.match(plan.stdout, /layer 1: max\/mean per GPU [\d.]+ \(trivial, same slots\) → [\d.]+; replicated: e\d+×2/);
    assert.match(plan.stdout, /--ep-num-redundant-experts 4/);
    const sg = JSON.parse(await readFile(join(dir, 'sglang.json'), 'utf8')) as { physical_to_logical_map: number[][] };
    assert.deepEqual([sg.physical_to_logical_map.length, sg.physical_to_logical_map[0].length], [4, 20]);
    const gen = ['generate', '--model', model, '--prompt', 'What is 4 + 4 + 1?', '--max-tokens', '24', '--temperature', '0', '--json'];
    const tokens = (s: string) => (JSON.parse(s) as { tokens: number[] }).tokens;
    const reference = tokens((await nanoseek(...gen)).stdout);
    for (const placement of ['plan.json', 'sglang.json']) {
      assert.deepEqual(tokens((await nanoseek(...gen, '--expert-parallel', '2', '--placement', join(dir, placement))).stdout), reference, placement);
    }

    // Raw counts for SGLang, and the simulator from the recording.
    const exported = await nanoseek('experts', 'export', '--load', load, '--out', join(dir, 'counts.json'));
    assert.match(exported.stdout, /logical_count \[\d+ steps, 4 layers, 16 experts\]/);
    const sim = JSON.parse((await nanoseek('experts', 'simulate', '--load', load, '--cluster', 'decode', '--steps', '4', '--json', '--sglang', join(dir, 'ep144.json'))).stdout) as { cluster: string; slotsPerGpu: number; trivial: { stepImbalance: number }; planned: { stepImbalance: number } }[];
    assert.equal(sim[0].cluster, 'decode EP144');
    assert.equal(sim[0].slotsPerGpu, 2);
    const ep144 = JSON.parse(await readFile(join(dir, 'ep144.json'), 'utf8')) as { physical_to_logical_map: number[][] };
    assert.deepEqual([ep144.physical_to_logical_map.length, ep144.physical_to_logical_map[0].length], [61, 288]);

    // The committed report's one command, on a small workload.
    const out = join(dir, 'report');
    await nanoseek('experts', 'report', '--out', out, '--problems', '6', '--max-tokens', '24');
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { runs: { placement: string; identical: boolean }[]; simulations: { cluster: string }[] };
    assert.deepEqual(report.runs.map((r) => r.placement), ['plain', 'trivial', 'trivial-redundant', 'trivial-redundant', 'planned', 'planned']);
    assert.ok(report.runs.every((r) => r.identical));
    assert.deepEqual([...new Set(report.simulations.map((x) => x.cluster))], ['prefill EP32', 'decode EP144']);
    for (const f of ['index.html', 'stats.html', 'deploy.html', 'load.json', 'plan.json', 'sglang-placement.json', 'sglang-logical-count.json', 'deepseek-v3-ep32-placement.json', 'deepseek-v3-ep144-placement.json']) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.match(await readFile(join(out, 'index.html'), 'utf8'), /<p id="verdict">On 2 devices the measured device max ÷ mean is [\d.]+ per step/);

    // Mistakes are named.
    await fails(['experts', 'plan', '--load', load, '--replicas', '21', '--gpus', '2'], /replicas \(21\) must be a multiple of gpus \(2\)/);
    await fails([...gen, '--placement', join(dir, 'plan.json')], /--placement needs --expert-parallel <devices>/);
    await fails([...gen, '--expert-parallel', '3', '--placement', join(dir, 'sglang.json')], /its 20 expert slots per layer do not split evenly over 3 devices/);
    await fails(['experts', 'simulate', '--cluster', 'decode'], /give exactly one of --load <file> and --synthetic <skew>/);
    await fails(['experts', 'stats', join(dir, 'missing.json')], /missing\.json: cannot read \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
