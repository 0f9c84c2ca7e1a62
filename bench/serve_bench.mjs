// Throughput and time to first token of `flas serve` at several concurrencies: C client streams, each
// sending R streaming chat requests one after another; all unsteered, or all steered, each stream
// with its own concept. Prints a Markdown table. Needs Node >= 18 (built-in fetch), no packages.
//   node bench/serve_bench.mjs URL [concurrency list, default 1,4,16] [requests per stream, default 4] [max_tokens, default 64]
const [url, levels = '1,4,16', perStream = '4', maxTokens = '64'] = process.argv.slice(2);
if (!url) { console.error('usage: node serve_bench.mjs http://127.0.0.1:PORT [1,4,16] [4] [64]'); process.exit(2); }
const concepts = ['the ocean and sea creatures', 'scientific terms related to research findings', 'music and musical instruments',
                  'cooking and recipes', 'sports and athletic competitions', 'space exploration and astronomy',
                  'legal terminology and court proceedings', 'medical conditions and treatments'];
const prompts = ['How do I rent a car?', 'Write a short poem about rain.', 'What should I cook tonight?', 'Explain gravity simply.'];
const headers = { 'Content-Type': 'application/json', ...(process.env.FLAS_API_KEY ? { Authorization: `Bearer ${process.env.FLAS_API_KEY}` } : {}) };

async function one(stream, i, steered) {
  const body = { messages: [{ role: 'user', content: prompts[(stream + i) % prompts.length] }], max_tokens: Number(maxTokens),
                 temperature: 0.7, seed: stream * 100 + i, stream: true, stream_options: { include_usage: true } };
  if (steered) body.steering = { concept: concepts[stream % concepts.length], flowtime: 4 };
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = '', ttft = null, tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      if (ttft === null && chunk.choices?.[0]?.delta?.content) ttft = performance.now() - t0;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  return { ttft: ttft ?? performance.now() - t0, tokens };
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
console.log('| streams | requests | steering | tokens | wall s | aggregate tok/s | TTFT p50 ms | TTFT p90 ms |');
console.log('|---:|---:|---|---:|---:|---:|---:|---:|');
for (const c of levels.split(',').map(Number)) {
  for (const steered of [false, true]) {
    const results = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: c }, async (_, s) => {
      for (let i = 0; i < Number(perStream); ++i) results.push(await one(s, i, steered));
    }));
    const wall = (performance.now() - t0) / 1000, tokens = results.reduce((a, r) => a + r.tokens, 0), ttfts = results.map((r) => r.ttft);
    console.log(`| ${c} | ${results.length} | ${steered ? `${Math.min(c, concepts.length)} concepts, T = 4` : 'none'} | ${tokens} | ${wall.toFixed(2)} | ` +
                `${(tokens / wall).toFixed(0)} | ${pct(ttfts, 0.5).toFixed(0)} | ${pct(ttfts, 0.9).toFixed(0)} |`);
  }
}
