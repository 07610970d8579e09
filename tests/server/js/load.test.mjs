// Load: 32 concurrent streaming clients send 200 seeded requests (completions
// and chats); every one succeeds, each output equals the same request run
// alone, and the server's memory returns to its baseline afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, collectStream, sleep, MODEL } from './helpers.mjs';

const CLIENTS = 32;
const REQUESTS = 200;
const topics = ['the sea', 'a city at night', 'mountains', 'a small robot', 'tea', 'winter', 'a library', 'trains'];

function request(i) {
  const common = { model: MODEL, seed: 1000 + i, max_tokens: 8 + (i % 13), temperature: 0.9, top_p: 0.9,
                   logit_bias: { 0: -100 } };
  if (i % 4 === 3)
    return { chat: true, params: { ...common, messages: [{ role: 'user', content: `Write about ${topics[i % 8]}.` }] } };
  return { chat: false, params: { ...common, prompt: `Request ${i}: a story about ${topics[i % 8]}.` } };
}

async function run(client, i) {
  const { chat, params } = request(i);
  const api = chat ? client.chat.completions : client.completions;
  const stream = await api.create({ ...params, stream: true, stream_options: { include_usage: true } });
  return collectStream(stream, chat);
}

let server;
before(async () => { server = await startServer(['--max-batch', '32', '--max-queue', '256']); });
after(async () => { await server?.stop(); });

test('32 concurrent streaming clients: all succeed, same outputs as one at a time, memory back to baseline',
     { timeout: 120000 }, async () => {
  const client = server.client();
  for (let i = 0; i < 8; ++i) await run(client, i);  // warm up (allocator, caches)
  await sleep(300);
  const baseline = server.rssKiB();

  const concurrent = new Array(REQUESTS);
  let next = 0;
  const failures = [];
  const worker = async () => {
    while (next < REQUESTS) {
      const i = next++;
      try { concurrent[i] = await run(client, i); } catch (e) { failures.push(`${i}: ${e.message}`); }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  assert.deepEqual(failures, []);
  const m = await server.metrics();
  assert.ok(m.aviary_batch_size_max > 1, 'requests never shared a batch');

  for (let i = 0; i < REQUESTS; ++i) {
    const alone = await run(client, i);
    assert.equal(concurrent[i].text, alone.text, `request ${i}`);
    assert.equal(concurrent[i].usage.completion_tokens, alone.usage.completion_tokens, `request ${i}`);
    assert.equal(concurrent[i].finish, alone.finish, `request ${i}`);
  }

  await sleep(500);
  const after = server.rssKiB();
  if (!server.sanitized())
    assert.ok(after < baseline + 32 * 1024, `RSS ${after} KiB after vs ${baseline} KiB before`);
  const idle = await server.metrics();
  assert.equal(idle.aviary_running_sequences, 0);
  assert.equal(idle.aviary_queue_length, 0);
  // A clean exit; under the sanitizers this is also LeakSanitizer's verdict.
  assert.equal(await server.stop(), 0, server.stderr());
});
