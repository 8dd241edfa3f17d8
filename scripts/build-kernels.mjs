#!/usr/bin/env node
// Compiles the AssemblyScript kernels (src/kernels/asm) to build/: one module with relaxed SIMD
// (fused multiply-add) and one with plain SIMD for engines without it. Both import the shared memory
// and carry no runtime, data segments or stack, so nothing of theirs lives in memory at all.
import asc from 'assemblyscript/asc';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const variants = [
  { name: 'relaxed', features: ['simd', 'threads', 'relaxed-simd'] },
  { name: 'simd', features: ['simd', 'threads'] },
];

await mkdir(`${root}build`, { recursive: true });
for (const v of variants) {
  const args = [
    'src/kernels/asm/kernels.ts',
    '--outFile', `build/kernels-${v.name}.wasm`,
    '-O3', '--noAssert', '--runtime', 'stub',
    '--importMemory', '--noExportMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
    ...v.features.flatMap((f) => ['--enable', f]),
  ];
  const { error, stderr } = await asc.main(args, { stdout: process.stdout, stderr: process.stderr, baseDir: root });
  if (error) {
    process.stderr.write(`build-kernels: ${v.name}: ${error.message}\n${stderr.toString()}`);
    process.exit(1);
  }
}
