// Error answers over raw HTTP (OpenAI's error JSON, the right status), API
// keys, the queue limit and a client that disconnects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, sleep, MODEL } from './helpers.mjs';

let server;
before(async () => { server = await startServer(['--max-prompt-tokens', '50', '--max-batch', '1', '--max-queue', '0']); });
after(async () => { await server?.stop(); });

function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.body.error.message, 'string');
  assert.equal(typeof r.body.error.type, 'string');
  if (param !== undefined) assert.equal(r.body.error.param, param);
}

test('malformed JSON is a 400', async () => {
  assertError(await post(`${server.url}/v1/completions`, '{"prompt": "x",'), 400);
  assertError(await post(`${server.url}/v1/chat/completions`, 'not json'), 400);
});

test('wrong types are a 400 naming the parameter', async () => {
  assertError(await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: '5' }), 400,
              'max_tokens');
  assertError(await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'x', temperature: 'hot' }), 400,
              'temperature');
  assertError(await post(`${server.url}/v1/chat/completions`, { model: MODEL, messages: 'hi' }), 400, 'messages');
  assertError(await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'x', n: 3 }), 400, 'n');
});

test('an unknown model is a 404', async () => {
  const r = await post(`${server.url}/v1/completions`, { model: 'gpt-4', prompt: 'x' });
  assertError(r, 404, 'model');
  assert.equal(r.body.error.code, 'model_not_found');
});

test('a prompt over the limit is a 400', async () => {
  const r = await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'word '.repeat(200) });
  assertError(r, 400, 'prompt');
  assert.equal(r.body.error.code, 'context_length_exceeded');
});

test('a full server answers 429; a client that disconnects stops its generation', async () => {
  const before = await server.metrics();
  const abort = new AbortController();
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'Go on forever', max_tokens: 1000000, stream: true,
                           logit_bias: { 0: -100 } }),
    signal: abort.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read();  // the stream is running: the one place in the batch is taken
  const busy = await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 1 });
  assertError(busy, 429);
  abort.abort();
  let m = await server.metrics();
  for (let i = 0; i < 100 && m.aviary_generations_cancelled_total <= before.aviary_generations_cancelled_total; ++i) {
    await sleep(100);
    m = await server.metrics();
  }
  assert.equal(m.aviary_generations_cancelled_total, before.aviary_generations_cancelled_total + 1);
  assert.equal(m.aviary_running_sequences, 0);
  assert.ok(m.aviary_completion_tokens_total - before.aviary_completion_tokens_total < 1000000);
  // The place is free again.
  const ok = await post(`${server.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 1 });
  assert.equal(ok.status, 200, ok.text);
});

test('API keys: 401 without or with a wrong key, and no work done', async () => {
  const secured = await startServer(['--api-key', 'sekret']);
  try {
    const body = { model: MODEL, prompt: 'x', max_tokens: 2 };
    const none = await post(`${secured.url}/v1/completions`, body);
    assertError(none, 401);
    assert.equal(none.body.error.type, 'authentication_error');
    assertError(await post(`${secured.url}/v1/completions`, body, { Authorization: 'Bearer wrong' }), 401);
    assertError(await post(`${secured.url}/v1/chat/completions`, 'not even json'), 401);
    assert.equal((await fetch(`${secured.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${secured.url}/health`)).status, 200);
    const good = await secured.client('sekret').completions.create(body);
    assert.equal(good.object, 'text_completion');
    const m = await (await fetch(`${secured.url}/metrics`, { headers: { Authorization: 'Bearer sekret' } })).text();
    // Only the authorised request reached the model.
    assert.match(m, /aviary_prompt_tokens_total 1\n/);
  } finally {
    await secured.stop();
  }
});

test('SIGTERM stops the server cleanly', async () => {
  const s = await startServer([]);
  assert.equal(await s.stop(), 0);
});
