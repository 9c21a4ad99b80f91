// Run ONNX files in onnxruntime-web's WASM backend under Node, with the same ort.wasm.min.mjs and .wasm the
// page ships, on token ids computed by edgefn's Python encoder: `node wasm_check.mjs IN.json OUT.json`.
// IN: {models: {name: path}, inputs: [{ids, types}], threads}; OUT: {name: {logits, ms} | {error}, versions}.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const job = JSON.parse(readFileSync(input, 'utf8'));
const dist = new URL('../node_modules/onnxruntime-web/dist/', import.meta.url);
const ort = await import(new URL('ort.wasm.min.mjs', dist).href);
ort.env.wasm.numThreads = job.threads ?? 1;
ort.env.wasm.wasmBinary = readFileSync(new URL('ort-wasm-simd-threaded.wasm', dist));

async function runModel(path) {
  const session = await ort.InferenceSession.create(readFileSync(path), { executionProviders: ['wasm'] });
  const logits = [];
  const ms = [];
  for (const { ids, types } of job.inputs) {
    const tensor = (a) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [1, ids.length]);
    const feeds = { input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)), token_type_ids: tensor(types) };
    const t0 = performance.now();
    const out = await session.run(Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]])));
    ms.push(performance.now() - t0);
    logits.push(Array.from(out.logits.data, Number));
  }
  await session.release();
  return { logits, ms };
}

const result = { versions: { 'onnxruntime-web': ort.env.versions?.web ?? null, node: process.versions.node } };
for (const [name, path] of Object.entries(job.models)) {
  try {
    result[name] = await runModel(path);
  } catch (e) {
    result[name] = { error: String(e?.message ?? e).split('\n')[0] };
  }
}
writeFileSync(output, JSON.stringify(result));
