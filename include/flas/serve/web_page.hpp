#pragma once
// The page served at `/`: a chat box, a concept box and a flow-time slider; each message is sent twice
// to /v1/chat/completions, unsteered and steered, and both answers stream side by side. Plain HTML and
// JavaScript, no external resources, embedded in the binary.
#include <string_view>

namespace flas::serve {

inline constexpr std::string_view web_page = R"FLASPAGE(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flas serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
h1{font-size:1.3em} label{display:inline-block;margin:.3em 1em .3em 0}
textarea{width:100%;height:4em;font:inherit} input[type=text],input[type=password]{font:inherit;width:18em}
.panes{display:flex;gap:1em;margin-top:1em} .pane{flex:1;border:1px solid #bbb;border-radius:6px;padding:.6em;min-height:8em}
.pane h2{font-size:1em;margin:0 0 .4em 0;color:#555} .answer{white-space:pre-wrap}
button{font:inherit;padding:.3em 1.2em} #error{color:#b00;margin-top:.5em}
</style></head><body>
<h1>flas serve &mdash; steered vs unsteered</h1>
<textarea id="prompt" placeholder="Your message">How do I rent a car?</textarea><br>
<label>Concept <input type="text" id="concept" placeholder="e.g. the ocean"></label>
<label>Flow time T <input type="range" id="flowtime" min="0" max="8" step="0.5" value="4"> <span id="flowtime-value">4</span></label>
<label>Max tokens <input type="number" id="max-tokens" value="64" min="1" max="1024" style="width:5em"></label>
<label>API key <input type="password" id="api-key" placeholder="(if the server has one)"></label>
<button id="send">Send</button>
<div id="error"></div>
<div class="panes">
 <div class="pane"><h2>Unsteered</h2><div class="answer" id="unsteered" data-done="0"></div></div>
 <div class="pane"><h2>Steered: <span id="steered-label"></span></h2><div class="answer" id="steered" data-done="0"></div></div>
</div>
<script>
const $ = (id) => document.getElementById(id);
$('flowtime').oninput = () => { $('flowtime-value').textContent = $('flowtime').value; };
$('api-key').value = localStorage.getItem('flas-api-key') || '';
async function stream(body, out) {
  out.textContent = ''; out.dataset.done = '0';
  const headers = {'Content-Type': 'application/json'};
  const key = $('api-key').value; if (key) headers['Authorization'] = 'Bearer ' + key;
  const res = await fetch('/v1/chat/completions', {method: 'POST', headers, body: JSON.stringify(body)});
  if (!res.ok) { const e = await res.json().catch(() => ({})); throw new Error((e.error && e.error.message) || res.statusText); }
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ')) continue;
      const data = event.slice(6);
      if (data === '[DONE]') { out.dataset.done = '1'; return; }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) out.textContent += delta.content;
    }
  }
  out.dataset.done = '1';
}
$('send').onclick = async () => {
  $('error').textContent = '';
  localStorage.setItem('flas-api-key', $('api-key').value);
  const concept = $('concept').value.trim(), T = parseFloat($('flowtime').value);
  const base = {messages: [{role: 'user', content: $('prompt').value}], max_tokens: parseInt($('max-tokens').value, 10) || 64,
                temperature: 0, stream: true};
  $('steered-label').textContent = concept ? '"' + concept + '", T = ' + T : '(no concept given)';
  const steered = concept ? Object.assign({}, base, {steering: {concept, flowtime: T}}) : base;
  try { await Promise.all([stream(base, $('unsteered')), stream(steered, $('steered'))]); }
  catch (e) { $('error').textContent = String(e.message || e); }
};
</script></body></html>
)FLASPAGE";

}  // namespace flas::serve
