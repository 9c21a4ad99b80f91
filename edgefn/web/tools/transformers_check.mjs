// Load a web package the way a Transformers.js user would, offline: `node transformers_check.mjs IN.json OUT.json`.
// IN: {folder, dtype, texts}; OUT: {results: [{label, prob_fake}], version}. One text per call (no padding).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { env, pipeline } from '@huggingface/transformers';

const [input, output] = process.argv.slice(2);
const job = JSON.parse(readFileSync(input, 'utf8'));
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;
env.localModelPath = path.dirname(path.resolve(job.folder)) + path.sep;
const classify = await pipeline('text-classification', path.basename(path.resolve(job.folder)), { dtype: job.dtype });
const results = [];
for (const text of job.texts) {
  const scores = await classify(text, { top_k: null });
  const fake = scores.find((s) => s.label === 'fake');
  results.push({ label: scores[0].label, prob_fake: fake ? fake.score : null });
}
writeFileSync(output, JSON.stringify({ results, version: env.version }));
