#!/usr/bin/env node
// Builds the native backend (native/, an N-API addon) with node-gyp against this Node's headers.
// Optional by design: where it cannot build (no C++ compiler, another platform) the install still
// succeeds and nanoseek runs on the WASM backend. NANOSEEK_NO_NATIVE=1 skips the build (to try that
// path on a machine that could build it).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'native');
const out = join(dir, 'build', 'Release', 'nanoseek.node');

if (process.env.NANOSEEK_NO_NATIVE === '1') {
  rmSync(join(dir, 'build'), { recursive: true, force: true });
  console.log('build-native: skipped (NANOSEEK_NO_NATIVE=1); nanoseek will run on the WASM backend');
  process.exit(0);
}

// npm puts its bundled node-gyp on PATH for scripts; run directly, find it beside npm.
const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const [cmd, args] = existsSync(bundled) ? [process.execPath, [bundled]] : ['node-gyp', []];
// Build against the headers installed with this Node (never download them: installs are offline).
const prefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const t0 = Date.now();
const r = spawnSync(cmd, [...args, 'rebuild', '--directory', dir, '--loglevel', 'warn', ...(nodedir ? ['--nodedir', nodedir] : [])], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
});
if (r.status === 0 && existsSync(out)) {
  console.log(`build-native: built ${out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} else {
  const why = r.error ? r.error.message : `${(r.stderr || r.stdout || '').trim().split('\n').slice(-8).join('\n')}`;
  console.log(`build-native: the native backend could not be built; nanoseek will run on the WASM backend.\n${why}`);
}
