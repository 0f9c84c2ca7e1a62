// The page at `/` in headless Chromium (Debian's, driven by puppeteer-core, which downloads no
// browser): type a prompt and a concept, send, and see the unsteered and steered answers appear side
// by side. A screenshot is kept as a test artefact.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { withServer } from './harness.mjs';

const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
if (!chromium) {
  console.log('SKIP: no chromium (apt-get install chromium)');
  process.exit(77);
}
const artefacts = process.env.FLAS_ARTEFACTS || path.resolve('artefacts');
mkdirSync(artefacts, { recursive: true });

await withServer([], async (server) => {
  const profile = mkdtempSync(path.join(tmpdir(), 'flas-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, userDataDir: profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 700 });
    await page.goto(server.url + '/', { waitUntil: 'load' });
    await page.$eval('#prompt', (el) => { el.value = ''; });
    await page.type('#prompt', 'How do I rent a car?');
    await page.type('#concept', 'the ocean and sea creatures');
    await page.$eval('#flowtime', (el) => { el.value = '4'; el.dispatchEvent(new Event('input')); });
    await page.click('#send');
    await page.waitForFunction(() => ['unsteered', 'steered'].every((id) => document.getElementById(id).dataset.done === '1'),
                               { timeout: 60000 });
    const [unsteered, steered, error] = await Promise.all(['#unsteered', '#steered', '#error'].map((s) => page.$eval(s, (el) => el.textContent)));
    assert.equal(error, '');
    assert.ok(unsteered.trim().length > 0, 'an unsteered answer');
    assert.ok(steered.trim().length > 0, 'a steered answer');
    assert.notEqual(steered, unsteered, 'the steered answer differs');
    const shot = path.join(artefacts, 'serve_web_page.png');
    await page.screenshot({ path: shot });
    console.log('screenshot:', shot);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
