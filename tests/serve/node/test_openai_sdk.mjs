// The official OpenAI Node SDK drives chat and completions, streaming and not, with the steering
// extension as an extra body field, against a real `flas serve` that requires an API key.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { withServer } from './harness.mjs';

const key = 'test-key-' + Math.random().toString(36).slice(2);
const prompt = 'How do I rent a car?';
const steering = { concept: 'the ocean and sea creatures', flowtime: 4.0 };

// The SDK runs on Node's own fetch (undici), an option it documents: its default on Node, node-fetch 2,
// raises a false 'Premature close' when its keep-alive agent hands the socket of a finished chunked
// response to the next request (node-fetch issues #1576 and #1767; seen once in CI, Node 18).
const fetch = globalThis.fetch;

await withServer(['--max-batch', '4'], async (server) => {
  const client = new OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0, fetch });

  // Who may use it: the key is required everywhere but /health.
  const intruder = new OpenAI({ apiKey: 'wrong', baseURL: `${server.url}/v1`, maxRetries: 0, fetch });
  await assert.rejects(intruder.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
                       (e) => e.status === 401 && /API key/.test(e.message));
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  assert.equal((await fetch(`${server.url}/metrics`)).status, 401);

  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  const model = models.data[0].id;
  assert.equal(model, 'tiny-gemma2-chat');

  // Chat, not streaming: unsteered and steered (greedy).
  const plain = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 40, temperature: 0 });
  const text = plain.choices[0].message.content;
  assert.ok(text.length > 0, 'an answer');
  assert.equal(plain.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(plain.choices[0].finish_reason));
  assert.ok(plain.usage.prompt_tokens > 5 && plain.usage.completion_tokens > 0);
  assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);
  const steered = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 40,
                                                         temperature: 0, steering });
  assert.notEqual(steered.choices[0].message.content, text, 'steering changes the answer');
  assert.equal(steered.steering.concept, steering.concept);
  assert.equal(steered.steering.steps, 3, "steps default to the flow's");
  const zero = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 40,
                                                      temperature: 0, steering: { ...steering, flowtime: 0 } });
  assert.equal(zero.choices[0].message.content, text, 'T = 0 is the unsteered model');

  // Chat, streaming: the deltas add up to the non-streaming answer; usage arrives last when asked.
  for (const [req, whole] of [[{}, plain], [{ steering }, steered]]) {
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 40,
                                                          temperature: 0, stream: true, stream_options: { include_usage: true }, ...req });
    let streamed = '', chunks = 0, usage = null, finish = null;
    for await (const chunk of stream) {
      ++chunks;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta?.content) streamed += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(streamed, whole.choices[0].message.content);
    assert.ok(chunks > 3, 'streamed in several chunks');
    assert.ok(['stop', 'length'].includes(finish));
    assert.deepEqual(usage, whole.usage);
  }

  // Completions, streaming and not, agree; a stop sequence ends the text before it.
  const raw = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 24, temperature: 0 });
  assert.equal(raw.object, 'text_completion');
  const rawText = raw.choices[0].text;
  assert.ok(rawText.length > 0);
  let rawStreamed = '';
  for await (const chunk of await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 24,
                                                                temperature: 0, stream: true, steering: null }))
    rawStreamed += chunk.choices[0]?.text ?? '';
  assert.equal(rawStreamed, rawText);
  const cut = rawText.trim().split(/\s+/)[1];  // the answer's second word
  if (cut) {
    const stopped = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 24, temperature: 0, stop: [cut] });
    assert.equal(stopped.choices[0].finish_reason, 'stop');
    assert.ok(!stopped.choices[0].text.includes(cut));
    assert.ok(rawText.startsWith(stopped.choices[0].text));
  }
  const steeredRaw = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 24, temperature: 0,
                                                       steering: { concept: 'scientific terms related to research findings', flowtime: 4, steps: 2 } });
  assert.ok(steeredRaw.choices[0].text.length > 0);

  // Seeded sampling is reproducible.
  const sample = () => client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 30,
                                                         temperature: 0.9, top_p: 0.95, seed: 1234 });
  assert.equal((await sample()).choices[0].message.content, (await sample()).choices[0].message.content);

  // Refusals come back as the SDK's typed errors.
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], steering: { flowtime: 2 } }),
                       (e) => e.status === 400 && /steering\.concept/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], n: 2 }),
                       (e) => e.status === 400 && /\bn\b/.test(e.message));
}, { FLAS_API_KEY: key });
