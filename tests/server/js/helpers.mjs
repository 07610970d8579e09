// Starting `aviary serve` for the tests: binary from $AVIARY_BIN, reference
// data from $AVIARY_SHARED (default ../shared beside the checkout).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
export const shared = process.env.AVIARY_SHARED || path.resolve(repo, '../shared');
export const bin = process.env.AVIARY_BIN || path.resolve(repo, 'build/release/aviary');
export const modelPath = path.join(shared, 'refdata/v7_world_L2_C64_V65536_bf16/model.pth');
export const vocabPath = path.join(shared, 'vocab/rwkv_vocab_v20230424.txt');
export const MODEL = 'tiny-world';

// Starts a server on a free port; resolves once it prints its listening line.
export async function startServer(extraArgs = []) {
  const args = ['serve', '-m', modelPath, '--vocab', vocabPath, '--port', '0', '--model-name', MODEL, '-t', '2',
                ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${stderr}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${stderr}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    url,
    stderr: () => stderr,
    client: (apiKey = 'none') => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 60000 }),
    // AddressSanitizer keeps freed memory in quarantine, so RSS says nothing there.
    sanitized: () => readFileSync(`/proc/${proc.pid}/maps`, 'utf8').includes('libasan'),
    rssKiB: () => Number(readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]),
    metrics: async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const values = {};
      for (const line of text.split('\n')) {
        const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
        if (m) values[m[1]] = Number(m[2]);
      }
      return values;
    },
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve(proc.exitCode);
      proc.on('exit', (code, signal) => resolve(code ?? signal));
      proc.kill('SIGTERM');
    }),
  };
}

// POSTs JSON (or a raw string) and returns { status, body }.
export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text };
}

// Reads a streamed completion with the openai client: the text and the last chunks.
export async function collectStream(stream, chat) {
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += chat ? (c.delta?.content ?? '') : c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
