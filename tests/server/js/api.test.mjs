// The OpenAI API through the official openai client: models, completions and
// chat, streamed and not, usage, finish_reason, seeds, the prefix cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, collectStream, MODEL } from './helpers.mjs';

let server;
let client;
before(async () => {
  server = await startServer(['--max-batch', '8']);
  client = server.client();
});
after(async () => { await server?.stop(); });

test('lists the model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
});

test('completion, not streamed: text, usage, finish_reason length', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'The quick brown fox', max_tokens: 8, seed: 1 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.prompt_tokens, 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
});

test('finish_reason stop at end-of-text (forced with logit_bias)', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 8, logit_bias: { 0: 100 } });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 0);
  assert.equal(r.choices[0].text, '');
});

test('finish_reason length when end-of-text is banned', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 6, logit_bias: { 0: -100 },
                                              seed: 3 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 6);
});

test('completion streamed equals not streamed with the same seed; include_usage chunk', async () => {
  const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 12, seed: 42, temperature: 0.8,
                   logit_bias: { 0: -100 } };
  const whole = await client.completions.create(params);
  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const s = await collectStream(stream, false);
  assert.equal(s.text, whole.choices[0].text);
  assert.equal(s.finish, 'length');
  assert.deepEqual(s.usage, whole.usage);
});

test('the same seed gives the same text; another seed another', async () => {
  const params = { model: MODEL, prompt: 'In a hole in the ground', max_tokens: 16, logit_bias: { 0: -100 } };
  const a = await client.completions.create({ ...params, seed: 7 });
  const b = await client.completions.create({ ...params, seed: 7 });
  const c = await client.completions.create({ ...params, seed: 8 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test('stop strings end the text and are not shown', async () => {
  const free = await client.completions.create({ model: MODEL, prompt: 'A B C', max_tokens: 16, seed: 5,
                                                 logit_bias: { 0: -100 } });
  const text = free.choices[0].text;
  const chars = Array.from(text);  // code points, so the stop string is whole characters
  assert.ok(chars.length > 2, text);
  const stop = chars[2];
  const r = await client.completions.create({ model: MODEL, prompt: 'A B C', max_tokens: 16, seed: 5,
                                              logit_bias: { 0: -100 }, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].text, text.slice(0, text.indexOf(stop)));
});

test('chat, not streamed and streamed', async () => {
  const params = { model: MODEL, messages: [{ role: 'system', content: 'You are terse.' },
                                            { role: 'user', content: 'Say hi.' }],
                   max_tokens: 10, seed: 11 };
  const whole = await client.chat.completions.create(params);
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.equal(typeof whole.choices[0].message.content, 'string');
  assert.ok(['length', 'stop'].includes(whole.choices[0].finish_reason));
  const stream = await client.chat.completions.create({ ...params, stream: true,
                                                       stream_options: { include_usage: true } });
  const s = await collectStream(stream, true);
  assert.equal(s.text, whole.choices[0].message.content);
  assert.equal(s.finish, whole.choices[0].finish_reason);
  assert.equal(s.usage.completion_tokens, whole.usage.completion_tokens);
  assert.equal(s.usage.prompt_tokens, whole.usage.prompt_tokens);
});

test('chat thinking on and off open the reply with the G1 prefix', async () => {
  const messages = [{ role: 'user', content: 'Why?' }];
  const on = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, seed: 1, think: true });
  assert.ok(on.choices[0].message.content.startsWith('<think'), on.choices[0].message.content);
  const off = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, seed: 1,
                                                     reasoning_effort: 'none' });
  assert.ok(off.choices[0].message.content.startsWith('<think></think'), off.choices[0].message.content);
});

test('a second chat turn feeds only its new tokens (prefix cache)', async () => {
  const before = await server.metrics();
  const first = [{ role: 'user', content: 'Tell me about birds.' }];
  const r1 = await client.chat.completions.create({ model: MODEL, messages: first, max_tokens: 12, seed: 2 });
  const reply = r1.choices[0].message.content;
  const second = [...first, { role: 'assistant', content: reply }, { role: 'user', content: 'And fish?' }];
  const r2 = await client.chat.completions.create({ model: MODEL, messages: second, max_tokens: 4, seed: 2 });
  const cached = r2.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached > 0, 'no cached tokens');
  assert.ok(cached < r2.usage.prompt_tokens);
  const after = await server.metrics();
  assert.equal(after.aviary_prefill_tokens_total - before.aviary_prefill_tokens_total,
               r1.usage.prompt_tokens + r2.usage.prompt_tokens - cached);
  assert.ok(after.aviary_prefix_cache_hits_total > before.aviary_prefix_cache_hits_total);
});

test('health and metrics', async () => {
  const h = await fetch(`${server.url}/health`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });
  const m = await server.metrics();
  for (const name of ['aviary_queue_length', 'aviary_batch_size', 'aviary_completion_tokens_total',
                      'aviary_prefix_cache_hits_total', 'aviary_running_sequences'])
    assert.ok(name in m, name);
  assert.ok(m['aviary_http_requests_total{route="/v1/completions",status="200"}'] > 0);
});
