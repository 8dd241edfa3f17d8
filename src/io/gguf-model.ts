// GGUF files as models: llama.cpp's architectures (qwen2, llama, deepseek2), metadata keys,
// tensor names and layouts mapped onto nanoseek's configs and Hugging Face tensors, both ways.
import { open } from 'node:fs/promises';
import type { ModelFile } from './model-file.js';

/** Whether the file starts with the GGUF magic. */
export async function isGgufFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46;
  } finally {
    await fh.close();
  }
}

export async function openGgufModel(path: string): Promise<ModelFile> {
  throw new Error(`${path}: GGUF models are not supported yet`);
}
