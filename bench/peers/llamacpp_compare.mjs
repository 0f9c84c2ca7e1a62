// Pairs llama-bench's JSON (llama-NAME.json) with bench_gemma2's (flas-NAME.json) from one folder and
// prints a Markdown table: each work item, llama.cpp's and flas's speed, their ratio, and flas's floor
// measured in the same run. Used by llamacpp_bench.sh.
//   node llamacpp_compare.mjs FOLDER
import { readFileSync, readdirSync } from 'node:fs';

const dir = process.argv[2];
const rows = [];
for (const file of readdirSync(dir).filter((f) => f.startsWith('llama-')).sort()) {
  const name = file.slice('llama-'.length, -'.json'.length);            // tiny_bf16, 2b_f32, ...
  const [model, dt] = name.split('_');
  const llama = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  const flas = JSON.parse(readFileSync(`${dir}/flas-${name}.json`, 'utf8')).benchmarks;
  const find = (n) => flas.find((b) => b.name === n || b.name === `${n}/iterations:${b.iterations}` || b.name.startsWith(`${n}/iterations`));
  const what = model === 'tiny' ? 'bundled chat model' : 'Gemma-2-2B shapes';
  for (const l of llama) {
    if (l.n_prompt > 0 && l.n_depth > 0) continue;  // prefill at depth: llama-bench makes it, flas does not measure it
    if (l.n_prompt > 0) {
      const pairs = [[`BM_${model}_prefill128_${dt}`, 'prefill 128, exact']];
      if (model === '2b' && dt === 'bf16') pairs.push([`BM_2b_prefill128_bf16_fast`, 'prefill 128, bf16 activations']);
      for (const [bench, label] of pairs) {
        const f = find(bench);
        if (!f) continue;
        const floor = f.floor_ms ? `${f.floor_ms.toFixed(1)} ms (${(100 * f.of_peak).toFixed(0)}% of peak)` : '';
        rows.push([what, dt, label, `${l.avg_ts.toFixed(1)} tok/s`, `${f['tok/s'].toFixed(1)} tok/s`, f['tok/s'] / l.avg_ts, floor]);
      }
    } else {
      const f = find(`BM_${model}_decode_${dt}/${l.n_depth}`);
      if (!f) continue;
      const floor = f.read_floor_ms ? `read ${f.read_floor_ms.toFixed(1)} ms/token (decode ${f['decode/read_floor'].toFixed(2)}x)` : '';
      rows.push([what, dt, `decode at depth ${l.n_depth}`, `${l.avg_ts.toFixed(1)} tok/s`, `${f['tok/s'].toFixed(1)} tok/s`, f['tok/s'] / l.avg_ts, floor]);
    }
  }
}
console.log('| model | weights | work | llama.cpp | flas | flas / llama.cpp | flas floor, same run |');
console.log('|---|---|---|---:|---:|---:|---|');
for (const [m, dt, w, l, f, r, floor] of rows) console.log(`| ${m} | ${dt} | ${w} | ${l} | ${f} | **${r.toFixed(2)}** | ${floor} |`);
