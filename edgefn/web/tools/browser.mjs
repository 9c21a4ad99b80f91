// Serve a web package on 127.0.0.1 and drive its page in headless Chromium: paste each text, click Classify,
// read the label, P(fake) and milliseconds the page shows. `node browser.mjs IN.json OUT.json`.
// IN: {folder, chromium, flags, texts, warmup, screenshot_text, runs: [{model, threads, isolate, screenshot}]}
// OUT: {runs: [{results, warmup, ready_ms, threads_used, cross_origin_isolated, requests, external_requests, errors}]}
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [input, output] = process.argv.slice(2);
const job = JSON.parse(readFileSync(input, 'utf8'));
const root = path.resolve(job.folder);
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.onnx': 'application/octet-stream', '.gz': 'application/gzip', '.wasm': 'application/wasm' };

function serve(log, isolate) {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(root, rel);
    let size = -1;
    try { size = file.startsWith(root + path.sep) ? statSync(file).size : -1; } catch { size = -1; }
    log.push({ path: '/' + rel, status: size < 0 ? 404 : 200, bytes: Math.max(size, 0) });
    const headers = isolate ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    if (size < 0) { res.writeHead(404, headers); res.end(); return; }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': size });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function classify(page, text, seq) {
  await page.fill('#text', text);
  await page.click('#classify');
  await page.waitForFunction((n) => Number(document.getElementById('result').dataset.seq) === n, seq, { timeout: 120000 });
  return page.$eval('#result', (el) => ({ label: el.dataset.label, prob_fake: Number(el.dataset.prob), ms: Number(el.dataset.ms), logits: JSON.parse(el.dataset.logits) }));
}

async function drive(browser, spec) {
  const log = [];
  const server = await serve(log, spec.isolate);
  const base = `http://127.0.0.1:${server.address().port}/`;
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const seen = [];
  const errors = [];
  context.on('request', (r) => seen.push(r.url()));
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e.message ?? e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const t0 = Date.now();
  await page.goto(`${base}index.html?model=${spec.model}&threads=${spec.threads}`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 300000 });
  const status = await page.$eval('#status', (el) => ({ state: el.dataset.state, text: el.textContent, threads: Number(el.dataset.threads) }));
  const run = { model: spec.model, threads: spec.threads, status: status.text, ready_ms: Date.now() - t0, warmup: [], results: [], errors };
  if (status.state === 'ready') {
    let seq = 0;
    for (const text of job.texts.slice(0, job.warmup ?? 0)) run.warmup.push(await classify(page, text, ++seq));
    for (const text of job.texts) run.results.push(await classify(page, text, ++seq));
    if (spec.screenshot) {
      await classify(page, job.screenshot_text ?? job.texts[0], ++seq);
      await page.screenshot({ path: spec.screenshot, fullPage: true });
    }
  }
  run.threads_used = status.threads;
  run.cross_origin_isolated = await page.evaluate(() => self.crossOriginIsolated);
  run.requests = log;
  run.external_requests = seen.filter((u) => !u.startsWith(base));
  await context.close();
  await new Promise((resolve) => server.close(resolve));
  return run;
}

const browser = await chromium.launch({
  executablePath: job.chromium,
  headless: true,
  args: job.flags, // edgefn.webbuild.CHROMIUM_FLAGS
});
const version = browser.version();
const runs = [];
try {
  for (const spec of job.runs) runs.push(await drive(browser, spec));
} finally {
  await browser.close();
}
writeFileSync(output, JSON.stringify({ runs, chromium: version }));
