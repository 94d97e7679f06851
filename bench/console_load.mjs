// Browser half of bench/console_bench.py: Debian's Chromium (playwright-core from tests/console) loads the
// console and reports JSON on stdout.
//   node bench/console_load.mjs <chromium> <base-url> <mode> [arg] [repeat]
// mode "load": <arg> repetitions of a cold-cache first load of the overview (navigation start to the first
//   overview answer drawn), with the bytes transferred (Resource Timing transferSize, HTML included).
// mode "plot": <arg> is a series path; the explorer plots it <repeat> (default 5) times, timing request + draw.
// mode "poll": keeps the overview open for <arg> seconds (the server's polling cost is measured outside).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/console/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const [executablePath, base, mode, arg, repeat = '5'] = process.argv.slice(2);
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotdb-console-bench-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, headless: true, viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const page = context.pages()[0] || await context.newPage();
const cdp = await context.newCDPSession(page);
await page.goto(base + '/');
await page.evaluate(async () => {
  const r = await fetch('/console/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: 'root', password: 'root' }) });
  if (!r.ok) throw new Error('log-in failed');
});
const out = {};
if (mode === 'load') {
  out.loads = [];
  for (let i = 0; i < Number(arg); i++) {
    await cdp.send('Network.clearBrowserCache');
    await page.goto('about:blank');
    const started = Date.now();
    await page.goto(base + '/#/overview');
    await page.waitForFunction(() => window.iotdbConsole && window.iotdbConsole.overview);
    const wall = Date.now() - started;
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const resources = performance.getEntriesByType('resource');
      const mark = performance.now();
      return {
        ms: mark, // navigation start to the overview's data on the page
        bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
        requests: 1 + resources.length,
      };
    });
    out.loads.push({ ...timing, wall });
  }
} else if (mode === 'plot') {
  out.plots = [];
  for (let i = 0; i < Number(repeat); i++) {
    await page.goto('about:blank');
    await page.goto(`${base}/#/explorer?path=${encodeURIComponent(arg)}`);
    await page.waitForFunction(() => window.iotdbConsole && window.iotdbConsole.plot, null, { timeout: 60000 });
    out.plots.push(await page.evaluate(() => {
      const p = window.iotdbConsole.plot;
      return { drawnMs: p.drawnMs, count: p.count, points: p.points, mode: p.mode,
        counted: p.counts.reduce((sum, c) => sum + c, 0) };
    }));
  }
} else if (mode === 'poll') {
  await page.goto('about:blank');
  await page.goto(base + '/#/overview');
  await page.waitForFunction(() => window.iotdbConsole && window.iotdbConsole.overview);
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  await page.waitForTimeout(Number(arg) * 1000);
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
process.stdout.write(JSON.stringify(out) + '\n');
