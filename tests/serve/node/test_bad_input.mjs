// Bad input: each malformed request class gets its documented status and a message naming the field
// or the limit; the server survives all of them and still answers.
import assert from 'node:assert/strict';
import { withServer, postJson, startServer } from './harness.mjs';

const hello = [{ role: 'user', content: 'Hello' }];

await withServer(['--max-batch', '1', '--max-queue', '1', '--max-body-bytes', '4096', '--max-prompt-tokens', '64', '--ctx', '256'],
  async (server) => {
    const chat = `${server.url}/v1/chat/completions`;
    const expect = async (body, status, pattern, url = chat) => {
      const r = await postJson(url, body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} -> ${r.status} ${r.text}`);
      assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `an OpenAI error object: ${r.text}`);
      assert.match(r.json.error.message, pattern);
      return r;
    };
    await expect('{"messages": [', 400, /not valid JSON/);
    await expect('"just a string"', 400, /JSON object/);
    // A number beyond every JSON number type (found by fuzz_serve_request: it was not a 400).
    await expect('{"messages": [], "max_tokens": 184461e4003709551615}', 400, /not valid JSON.*number overflow/);
    await expect({}, 400, /^messages/);
    await expect({ messages: 'hi' }, 400, /^messages/);
    await expect({ messages: [{ role: 'wizard', content: 'x' }] }, 400, /messages\[0\]\.role/);
    await expect({ messages: [{ role: 'user', content: 3 }] }, 400, /messages\[0\]\.content/);
    await expect({ messages: hello, max_tokens: 'many' }, 400, /^max_tokens/);
    await expect({ messages: hello, temperature: -1 }, 400, /^temperature/);
    await expect({ messages: hello, top_p: 2 }, 400, /^top_p/);
    await expect({ messages: hello, stream: 1 }, 400, /^stream/);
    await expect({ messages: hello, n: 3 }, 400, /^n: only n = 1/);
    await expect({ messages: hello, steering: 'ocean' }, 400, /^steering/);
    await expect({ messages: hello, steering: { concept: '' } }, 400, /steering\.concept/);
    await expect({ messages: hello, steering: { concept: 'x', flowtime: 'high' } }, 400, /steering\.flowtime/);
    await expect({ messages: hello, steering: { concept: 'x', steps: -2 } }, 400, /steering\.steps/);
    await expect({ prompt: ['a', 'b'] }, 400, /^prompt/, `${server.url}/v1/completions`);
    // Limits, with the limit in the message.
    await expect({ messages: [{ role: 'user', content: 'word '.repeat(1000) }] }, 413, /4096 bytes/);
    await expect({ messages: [{ role: 'user', content: 'word '.repeat(200) }] }, 400, /limit is 64 tokens/);
    await expect({ messages: hello, max_tokens: 250 }, 400, /context of 256 tokens/);
    const notFound = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', body: '{}' });
    assert.equal(notFound.status, 404);

    // A full queue: one row decoding, one waiting, the next refused with 503 and Retry-After.
    const long = { messages: hello, max_tokens: 180, temperature: 1.5, seed: 3 };
    const running = [postJson(chat, long), postJson(chat, long)];
    await new Promise((r) => setTimeout(r, 50));
    const burst = await Promise.all([1, 2, 3, 4].map(() => postJson(chat, long)));
    const refused = burst.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, 'at least one request refused: ' + burst.map((r) => r.status).join(','));
    for (const r of refused) {
      assert.equal(r.headers.get('retry-after'), '1');
      assert.match(r.json.error.message, /--max-queue/);
    }
    for (const r of [...await Promise.all(running), ...burst]) assert.ok([200, 503].includes(r.status));

    // Still alive and still right.
    const ok = await postJson(chat, { messages: hello, max_tokens: 8, temperature: 0 });
    assert.equal(ok.status, 200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /flas_requests_total\{endpoint="\/v1\/chat\/completions",status="400"\} \d+/);
    assert.match(metrics, /flas_requests_rejected_total [1-9]/);
  });

// A request past its deadline is stopped with 504 (streaming: an error event, then [DONE]).
await withServer(['--timeout', '0.001'], async (server) => {
  const r = await postJson(`${server.url}/v1/chat/completions`, { messages: hello, max_tokens: 50 });
  assert.equal(r.status, 504);
  assert.match(r.json.error.message, /timed out/);
  const s = await postJson(`${server.url}/v1/chat/completions`, { messages: hello, max_tokens: 50, stream: true });
  assert.match(s.text, /timed out/);
  assert.match(s.text, /data: \[DONE\]/);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

// Listening beyond loopback without a key draws a warning at start-up.
{
  const server = await startServer(['--host', '0.0.0.0']);
  try {
    assert.match(server.log, /WARNING: listening on 0\.0\.0\.0.*without an API key/);
  } catch (e) {
    console.error('FAIL:', e);
    process.exitCode = 1;
  } finally {
    await server.stop();
  }
}
