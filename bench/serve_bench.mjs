// Throughput and time to first token of `flas serve` at several concurrencies: C client streams, each
// sending R streaming chat requests one after another; all unsteered, or all steered, each stream
// with its own concept. Prints a Markdown table. Needs Node >= 18 (built-in fetch), no packages.
// STEERED=0 leaves the steered rows out (a server without the steering extension, e.g. llama-server).
//   node bench/serve_bench.mjs URL [concurrency list, default 1,4,16] [requests per stream, default 4] [max_tokens, default 64]
const [url, levels = '1,4,16', perStream = '4', maxTokens = '64'] = process.argv.slice(2);
if (!url) { console.error('usage: node serve_bench.mjs http://127.0.0.1:PORT [1,4,16] [4] [64]'); process.exit(2); }
const concepts = ['the ocean and sea creatures', 'scientific terms related to research findings', 'music and musical instruments',
                  'cooking and recipes', 'sports and athletic competitions', 'space exploration and astronomy',
                  'legal terminology and court proceedings', 'medical conditions and treatments'];
const prompts = ['How do I rent a car?', 'Write a short poem about rain.', 'What should I cook tonight?', 'Explain gravity simply.'];
const headers = { 'Content-Type': 'application/json', ...(process.env.FLAS_API_KEY ? { Authorization: `Bearer ${process.env.FLAS_API_KEY}` } : {}) };

let retried = 0;
async function one(stream, i, steered) {
  const body = { messages: [{ role: 'user', content: prompts[(stream + i) % prompts.length] }], max_tokens: Number(maxTokens),
                 temperature: 0.7, seed: stream * 100 + i, stream: true, stream_options: { include_usage: true } };
  if (steered) body.steering = { concept: concepts[stream % concepts.length], flowtime: 4 };
  const t0 = performance.now();
  // A kept-alive connection the server closes just as a request goes out fails before any reply
  // (llama-server does this under load); such a request is sent again on a new connection.
  let res;
  for (let attempt = 0; ; ++attempt) {
    try {
      res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) });
      break;
    } catch (e) {
      if (attempt >= 2 || e.cause?.code !== 'UND_ERR_SOCKET') throw e;
      ++retried;
    }
  }
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = '', ttft = null, tokens = null, contentChunks = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.choices?.[0]?.delta?.content) {
        if (ttft === null) ttft = performance.now() - t0;
        ++contentChunks;
      }
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  // Servers that send no usage in a stream send one chunk per token.
  return { ttft: ttft ?? performance.now() - t0, tokens: tokens ?? contentChunks };
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
console.log('| streams | requests | steering | tokens | wall s | aggregate tok/s | TTFT p50 ms | TTFT p90 ms |');
console.log('|---:|---:|---|---:|---:|---:|---:|---:|');
for (const c of levels.split(',').map(Number)) {
  for (const steered of process.env.STEERED === '0' ? [false] : [false, true]) {
    const results = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: c }, async (_, s) => {
      for (let i = 0; i < Number(perStream); ++i) results.push(await one(s, i, steered));
    }));
    const wall = (performance.now() - t0) / 1000, tokens = results.reduce((a, r) => a + r.tokens, 0), ttfts = results.map((r) => r.ttft);
    if (retried) console.error(`(${retried} request(s) sent again after the server closed a kept-alive connection)`), retried = 0;
    console.log(`| ${c} | ${results.length} | ${steered ? `${Math.min(c, concepts.length)} concepts, T = 4` : 'none'} | ${tokens} | ${wall.toFixed(2)} | ` +
                `${(tokens / wall).toFixed(0)} | ${pct(ttfts, 0.5).toFixed(0)} | ${pct(ttfts, 0.9).toFixed(0)} |`);
  }
}
