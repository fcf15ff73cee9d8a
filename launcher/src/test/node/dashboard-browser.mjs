// Opens a k2 node's dashboard in headless Chromium (Debian's, driven by playwright-core) during a run and prints
// one JSON line of what it saw: two readings of the live figures some seconds apart, the heatmap's cells, the
// members and stages, page errors, and any request that left the node's origin. Usage: node dashboard-browser.mjs URL [SCREENSHOT.png]
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const executablePath = process.env.K2_CHROMIUM || '/usr/bin/chromium';
const origin = new URL(url).origin;
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1050 } });
  const errors = [];
  const offsite = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', r => { if (!r.url().startsWith(origin)) offsite.push(r.url()); });
  await page.goto(url);
  const read = () => page.evaluate(() => ({
    updates: +document.getElementById('updates').textContent,
    live: document.getElementById('live').textContent,
    toolCalls: document.querySelector('#tile-tool-calls .v')?.textContent,
    episodes: document.querySelector('#tile-episodes .v')?.textContent,
    version: document.querySelector('#tile-ps-version .v')?.textContent,
    members: [...document.querySelectorAll('#members tbody tr')].map(tr => tr.textContent),
    stages: [...document.querySelectorAll('#stages .stage')].map(d => d.dataset.stage),
    cells: document.querySelectorAll('#heatmap td.cell').length,
    cellsWithValue: [...document.querySelectorAll('#heatmap td.cell')].filter(td => td.textContent !== '–').length,
  }));
  await page.waitForFunction(() => +document.getElementById('updates').textContent >= 2, null, { timeout: 60000 });
  const first = await read();
  // live: the figures move while the run runs (wait for it, at most two minutes)
  await page.waitForFunction(f => {
    const t = document.querySelector('#tile-tool-calls .v')?.textContent;
    const v = document.querySelector('#tile-ps-version .v')?.textContent;
    return +document.getElementById('updates').textContent > f.updates && (t !== f.toolCalls || v !== f.version);
  }, first, { timeout: 120000, polling: 250 });
  const second = await read();
  if (screenshot) {
    // a moment with the heatmap measured makes the better picture; wait a little for it, but do not require it
    await page.waitForFunction(() => [...document.querySelectorAll('#heatmap td.cell')].some(td => td.textContent !== '–'), null, { timeout: 90000 })
      .catch(() => {});
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  console.log(JSON.stringify({ first, second, errors, offsite }));
} finally {
  await browser.close();
}
