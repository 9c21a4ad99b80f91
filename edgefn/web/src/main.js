// The page of `edgefn package --target web`: tokenizes in the browser and runs the ONNX model in
// onnxruntime-web's WASM backend. Every file comes from this folder (edgefn_package.json lists them).
import * as ort from './ort.wasm.min.mjs';
import { Tokenizer } from '@huggingface/tokenizers';
import { cleanText } from './cleaning.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { session: null, seq: 0, cleaning: [] };

async function fetchOk(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

// Gzipped files are inflated here, so any static server sends the small file; one that already inflated
// it (Content-Encoding: gzip for .gz) hands over bytes without the gzip magic, used as they are.
async function fetchBytes(url) {
  const bytes = new Uint8Array(await (await fetchOk(url)).arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(inflated).arrayBuffer());
}

const fetchJson = async (url) => (await fetchOk(url)).json();

// Truncation as edgefn's Python encoder does it (`tokenizers`' enable_truncation): keep the first
// maxLength - (special tokens) content tokens, then the special tokens around them.
export function encode(tokenizer, text, maxLength) {
  const full = tokenizer.encode(text, { return_token_type_ids: true });
  const types = full.token_type_ids ?? full.ids.map(() => 0);
  if (full.ids.length <= maxLength) return { ids: full.ids, types, truncated: false };
  const bare = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const extra = full.ids.length - bare.length;
  let p = 0; // special tokens before the content
  while (p < extra && full.ids[p] !== bare[0]) p += 1;
  const cut = (a) => a.slice(0, p).concat(a.slice(p, p + maxLength - extra), a.slice(p + bare.length));
  return { ids: cut(full.ids), types: cut(types), truncated: true };
}

function softmax(values) {
  const top = Math.max(...values);
  const e = values.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

async function classify(text) {
  const { session, tokenizer, maxLength, id2label, fakeId } = state;
  const t0 = performance.now();
  const enc = encode(tokenizer, cleanText(text, state.cleaning), maxLength);
  const n = enc.ids.length;
  const tensor = (a) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [1, n]);
  const inputs = { input_ids: enc.ids, attention_mask: enc.ids.map(() => 1), token_type_ids: enc.types };
  const feeds = Object.fromEntries(session.inputNames.map((name) => [name, tensor(inputs[name])]));
  const logits = Array.from((await session.run(feeds)).logits.data);
  const ms = performance.now() - t0;
  const k = logits.indexOf(Math.max(...logits));
  return { label: id2label[k] ?? String(k), probFake: softmax(logits)[fakeId], ms, tokens: n, truncated: enc.truncated, logits };
}

function pct(x) {
  return x == null ? 'not measured' : `${(100 * x).toFixed(1)}%`;
}

function describe(pkg, model) {
  const m = pkg.model;
  $('model-name').textContent = `${m.preset} fine-tuned on ${m.data ?? 'unknown data'} (run ${m.run})`;
  $('model-variant').textContent = `${model.variant} (${model.dtype}), ${model.size_mb.toFixed(1)} MB`;
  const inDomain = m.test_accuracy == null ? 'not measured' : `${pct(m.test_accuracy)} on ${m.test_rows} ${m.data} test texts (PyTorch checkpoint)`;
  const warned = (m.warnings ?? []).map((w) => `; warning from fine-tuning: ${w}`).join('');
  $('acc-in').textContent = `${inDomain}; this variant ${pct(model.validation_accuracy)} on ${model.validation_rows} validation texts${warned}`;
  const ood = pkg.out_of_domain ?? [];
  $('cleaning').textContent = state.cleaning.length
    ? `${state.cleaning.join(', ')} (as in training; ?clean=0 turns it off)`
    : 'none';
  $('acc-out').textContent = ood.length
    ? ood.map((o) => `${pct(o.accuracy)} on ${o.rows} ${o.data} texts (${o.model})`).join('; ')
    : 'not measured (run `edgefn eval` on another dataset, then package again)';
}

async function load() {
  const pkg = await fetchJson('edgefn_package.json');
  const wanted = params.get('model') ?? pkg.default_dtype;
  const model = pkg.models.find((m) => m.dtype === wanted);
  if (!model) throw new Error(`no model ${wanted} in this package (${pkg.models.map((m) => m.dtype).join(', ')})`);
  const picker = $('model');
  picker.replaceChildren(...pkg.models.map((m) => new Option(`${m.dtype}: ${m.variant}, ${m.size_mb.toFixed(1)} MB`, m.dtype, false, m === model)));
  const threads = Math.max(1, Number(params.get('threads') ?? 1));
  ort.env.wasm.numThreads = self.crossOriginIsolated ? threads : 1;
  const t0 = performance.now();
  const [config, tokJson, tokConfig, wasm, bytes] = await Promise.all([
    fetchJson('config.json'), fetchJson('tokenizer.json'), fetchJson('tokenizer_config.json'),
    fetchBytes(pkg.wasm), fetchBytes(model.file),
  ]);
  ort.env.wasm.wasmBinary = wasm;
  state.session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  state.tokenizer = new Tokenizer(tokJson, tokConfig);
  state.maxLength = pkg.max_length;
  // The run's training cleaning (URLs, @handles ...) applied to each text, as `edgefn predict` does.
  state.cleaning = params.get('clean') === '0' ? [] : (pkg.cleaning ?? []);
  cleanText('', state.cleaning); // a rule this page does not know stops it here, before any answer
  state.id2label = Object.fromEntries(Object.entries(config.id2label ?? { 0: 'real', 1: 'fake' }).map(([k, v]) => [Number(k), v]));
  state.fakeId = Number(Object.keys(state.id2label).find((k) => state.id2label[k] === 'fake') ?? 1);
  describe(pkg, model);
  $('status').textContent = `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: onnxruntime-web ${ort.env.versions?.web ?? ''} WASM, ${ort.env.wasm.numThreads} thread(s)${threads > 1 && !self.crossOriginIsolated ? ' (more need cross-origin isolation)' : ''}`;
  $('status').dataset.state = 'ready';
  $('status').dataset.threads = String(ort.env.wasm.numThreads);
  $('classify').disabled = false;
}

async function onClassify() {
  const text = $('text').value;
  const out = $('result');
  if (!text.trim()) {
    out.textContent = 'Type or paste a text first.';
    return;
  }
  const r = await classify(text);
  state.seq += 1;
  Object.assign(out.dataset, { seq: state.seq, label: r.label, prob: r.probFake, ms: r.ms, logits: JSON.stringify(r.logits) });
  out.className = r.label;
  out.textContent = `${r.label} (P(fake) ${r.probFake.toFixed(3)}) in ${r.ms.toFixed(1)} ms, ${r.tokens} tokens${r.truncated ? ', truncated' : ''}`;
}

$('classify').addEventListener('click', () => onClassify().catch(showError));
$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !$('classify').disabled) $('classify').click();
});
$('model').addEventListener('change', (e) => {
  params.set('model', e.target.value);
  location.search = params.toString();
});

function showError(e) {
  $('status').textContent = `error: ${e.message ?? e}`;
  $('status').dataset.state = 'error';
}

load().catch(showError);
