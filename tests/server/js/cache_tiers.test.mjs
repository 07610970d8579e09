// The prefix cache's lower tiers through real server processes: the disk tier
// still hits after a restart, and two servers sharing one Redis continue each
// other's conversations. Each case runs turn 1 on one process and turn 2 on
// another, whose memory tier is off, so a hit can only come from disk/Redis.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer, MODEL } from './helpers.mjs';

const REDIS = '/usr/bin/redis-server';
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startRedis() {
  const port = await freePort();
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
                     { stdio: 'ignore' });
  cleanups.push(() => new Promise((r) => { if (proc.exitCode !== null) return r(); proc.on('exit', r); proc.kill(); }));
  for (let i = 0; i < 100; ++i) {  // wait until it accepts connections (bounded: 10 s)
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); r(true); });
      c.on('error', () => r(false));
    });
    if (ok) return `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start');
}

// Turn 1 on `first`, turn 2 on `second`: returns turn 2's usage and the
// difference of `second`'s metrics.
async function twoTurns(first, second, topic) {
  const msgs = [{ role: 'user', content: `Tell me about ${topic}.` }];
  const r1 = await first.client().chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 10, seed: 7 });
  const next = [...msgs, { role: 'assistant', content: r1.choices[0].message.content },
                { role: 'user', content: 'And then?' }];
  const before = await second.metrics();
  const r2 = await second.client().chat.completions.create({ model: MODEL, messages: next, max_tokens: 4, seed: 7 });
  const afterM = await second.metrics();
  return { usage: r2.usage, prefilled: afterM.aviary_prefill_tokens_total - before.aviary_prefill_tokens_total,
           hits: afterM.aviary_prefix_cache_hits_total - before.aviary_prefix_cache_hits_total };
}

function expectOnlyNewTokensFed({ usage, prefilled, hits }) {
  const cached = usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached > 0, 'turn 2 found no cached prefix');
  assert.equal(prefilled, usage.prompt_tokens - cached, 'turn 2 fed more than its new tokens');
  assert.equal(hits, 1);
}

test('the disk tier still hits after a server restart', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aviary-cache-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const flags = ['--cache-dir', dir, '--cache-memory', '0'];
  const a = await startServer(flags);
  const msgs = [{ role: 'user', content: 'Tell me about rivers.' }];
  const r1 = await a.client().chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 10, seed: 7 });
  await a.stop();
  const b = await startServer(flags);  // a new process: nothing in memory
  cleanups.push(() => b.stop());
  const next = [...msgs, { role: 'assistant', content: r1.choices[0].message.content },
                { role: 'user', content: 'And then?' }];
  const before = await b.metrics();
  const r2 = await b.client().chat.completions.create({ model: MODEL, messages: next, max_tokens: 4, seed: 7 });
  const afterM = await b.metrics();
  expectOnlyNewTokensFed({ usage: r2.usage,
                           prefilled: afterM.aviary_prefill_tokens_total - before.aviary_prefill_tokens_total,
                           hits: afterM.aviary_prefix_cache_hits_total - before.aviary_prefix_cache_hits_total });
});

test('two servers sharing one Redis continue each other\'s conversations',
     { skip: !existsSync(REDIS) && !process.env.CI && 'redis-server is not installed' }, async () => {
  const url = await startRedis();
  const flags = ['--redis', url, '--cache-memory', '0'];
  const a = await startServer(flags);
  const b = await startServer(flags);
  cleanups.push(() => a.stop(), () => b.stop());
  expectOnlyNewTokensFed(await twoTurns(a, b, 'mountains'));
  expectOnlyNewTokensFed(await twoTurns(b, a, 'forests'));
});
