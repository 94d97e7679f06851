// Drives Debian's Chromium through playwright-core for the console tests (tests/console/*.py).
//
// One browser per pytest module: the test sends one JSON command per line on stdin
// ({"id", "action", "args"}) and reads one JSON answer per line on stdout ({"id", "ok", "result"} or
// {"id", "ok": false, "error"}). Actions work through the page as a user does (forms, buttons, keys) and
// answer with what the page shows and holds (window.iotdbConsole), so the tests check data, not pixels.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const [executablePath, base, artifacts] = process.argv.slice(2);
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotdb-console-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
context.setDefaultTimeout(15000);
let page = context.pages()[0] || await context.newPage();
const pageErrors = [];
function watch(p) {
  p.on('pageerror', (error) => pageErrors.push(error.message));
  p.on('requestfailed', (request) => {
    // a request still running when the test navigates away is aborted, which is no fault of the page
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') pageErrors.push(`request failed: ${request.url()}`);
  });
}
watch(page);

// What the live topic view holds (window.iotdbConsole.topics) and shows (its list, messages and counts).
async function liveState() {
  return {
    state: await page.evaluate(() => JSON.parse(JSON.stringify(window.iotdbConsole.topics))),
    items: await page.$$eval('#topics-list li', (items) => items.map((li) => ({
      topic: li.dataset.topic, meta: li.querySelector('.live-meta').textContent,
      payload: li.querySelector('.live-payload').textContent }))),
    error: await page.textContent('#topics-error'),
    status: await page.textContent('#topics-status'),
    shown: await page.textContent('#topics-count'),
    rate: await page.textContent('#topics-rate'),
    dropped: await page.textContent('#topics-dropped'),
  };
}

const consoleData = (key) => page.evaluate((k) => (window.iotdbConsole || {})[k] ?? null, key);

async function go(hash) {
  await page.goto(`${base}/#/${hash}`);
  await page.waitForSelector('#page h1');
}

const actions = {
  async fresh({ width = 1280, height = 900 } = {}) {
    await page.close();
    await context.clearCookies();
    page = await context.newPage();
    watch(page);
    await page.setViewportSize({ width, height });
    pageErrors.length = 0;
    return true;
  },

  async login({ user, password }) {
    await page.goto(`${base}/`);
    await page.waitForSelector('#login:not([hidden])');
    await page.locator('#login').getByLabel('User').fill(user);
    await page.locator('#login').getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForFunction(() => !document.getElementById('login').hidden
      ? document.getElementById('login-error').textContent !== '' : document.querySelector('#page h1') !== null);
    return {
      loggedIn: await page.isHidden('#login'),
      error: await page.textContent('#login-error'),
      who: await page.textContent('#who-name'),
      nav: await page.$$eval('#nav a:not([hidden])', (links) => links.map((a) => a.textContent)),
    };
  },

  async loadOverview() {
    const started = Date.now();
    await page.goto(`${base}/#/overview`);
    await page.waitForFunction(() => window.iotdbConsole && window.iotdbConsole.overview);
    const ms = Date.now() - started;
    // rates need two samples: wait for the second before anything looks at the charts
    await page.waitForFunction(() => window.iotdbConsole.charts['overview-publishes'].points >= 1);
    return { ms };
  },

  // Waits until the overview's counters reach `publishes` and its publishes chart has drawn `samples` rates, one > 0.
  async overviewUntil({ publishes, samples = 1, timeout = 20000 }) {
    await page.waitForFunction(([wanted, points]) => {
      const o = window.iotdbConsole && window.iotdbConsole.overview;
      const chart = window.iotdbConsole && window.iotdbConsole.charts['overview-publishes'];
      return o && o.counters.mqtt_publishes_received >= wanted && chart && chart.points >= points
        && chart.data[1].some((v) => v > 0);
    }, [publishes, samples], { timeout });
    const charts = await page.evaluate(() => Object.fromEntries(Object.entries(window.iotdbConsole.charts)
      .map(([name, c]) => [name, { points: c.points, values: Array.from(c.data[1] || []) }])));
    return {
      overview: await consoleData('overview'),
      charts,
      shown: {
        publishes: await page.textContent('#now-publishes'),
        clients: await page.textContent('#now-clients'),
        tsfiles: await page.textContent('#tsfiles'),
        diskFree: await page.textContent('#disk-free'),
      },
    };
  },

  // Waits until the overview's engine state has `field` above `above`; returns that state and the panel's texts
  // (each figure by its id), read in the same turn of the page's event loop as the state.
  async engineUntil({ field, above = -Infinity, timeout = 20000 }) {
    await page.waitForFunction(([f, a]) => {
      const o = window.iotdbConsole && window.iotdbConsole.overview;
      return o && o.engine && o.engine[f] > a;
    }, [field, above], { timeout });
    return page.evaluate(() => ({
      engine: window.iotdbConsole.overview.engine,
      shown: Object.fromEntries(Array.from(document.querySelectorAll('#engine dd[id]'), (d) => [d.id, d.textContent])),
      tsfiles: document.getElementById('tsfiles').textContent,
      levels: Array.from(document.querySelectorAll('#tsfile-levels tbody tr'), (r) => Array.from(r.cells, (c) => c.textContent)),
      alert: document.getElementById('engine-alert').hidden ? null : document.getElementById('engine-alert').textContent,
    }));
  },

  async clients({ wait_for } = {}) {
    await go('clients');
    if (wait_for) await page.waitForSelector(`#clients td:text-is("${wait_for}")`);
    return page.$$eval('#clients tbody tr', (rows) => rows.map((r) => Array.from(r.cells, (c) => c.textContent)));
  },

  async disconnect({ client_id }) {
    await page.getByRole('button', { name: `Disconnect ${client_id}` }).click();
    await page.waitForFunction((id) => document.getElementById('clients-message').textContent.includes(id), client_id);
    return page.textContent('#clients-message');
  },

  async tree() {
    await go('explorer');
    await page.waitForSelector('#tree[data-series]');
    return page.$$eval('#tree button[data-path]', (buttons) => buttons.map((b) => b.dataset.path));
  },

  // Opens the device in the tree, clicks the series and returns the plot's data once drawn.
  async plot({ device_label, measurement }) {
    const summary = page.locator('#tree summary', { hasText: device_label }).first();
    await summary.click();
    const button = page.locator('#tree button[data-path]', { hasText: measurement }).first();
    await button.click();
    const wanted = await button.getAttribute('data-path');
    await page.waitForFunction((p) => window.iotdbConsole.plot && window.iotdbConsole.plot.path === p, wanted);
    const meta = await page.textContent(`#tree [data-meta="${wanted}"]`);
    return { plot: await consoleData('plot'), info: await page.textContent('#plot-info'), meta };
  },

  // Keyboard zoom on the focused chart: the next plot covers half the range.
  async zoomIn() {
    const before = await consoleData('plot');
    await page.focus('#plot');
    await page.keyboard.press('+');
    await page.waitForFunction(([first, last]) => {
      const plot = window.iotdbConsole.plot;
      return plot && (plot.first !== first || plot.last !== last);
    }, [before.first, before.last]);
    return consoleData('plot');
  },

  async sql({ sql }) {
    await go('sql');
    await page.getByLabel('Statement').fill(sql);
    const previous = await consoleData('sql');
    await page.getByLabel('Statement').press('Control+Enter');
    await page.waitForFunction((old) => window.iotdbConsole.sql && window.iotdbConsole.sql !== old, previous);
    await page.waitForFunction(() => !document.getElementById('sql-outcome').textContent.includes('Running'));
    return {
      body: await consoleData('sql'),
      outcome: await page.textContent('#sql-outcome'),
      caret: await page.$eval('#sql-caret', (e) => e.textContent).catch(() => null),
      header: await page.$$eval('#sql-table thead th', (cells) => cells.map((c) => c.textContent)),
      rows: await page.$$eval('#sql-table tbody tr', (rows) => rows.map((r) => Array.from(r.cells, (c) => c.textContent))),
      pageLabel: await page.$eval('#sql-page', (e) => e.textContent).catch(() => null),
      chartPoints: await page.evaluate(() => (window.iotdbConsole.charts.sql || { points: 0 }).points),
      chartShown: await page.isVisible('#sql-chart'),
      history: await page.$$eval('#sql-history button', (b) => b.map((x) => x.textContent)),
    };
  },

  async nextPage() {
    await page.getByRole('button', { name: 'Next' }).click();
    return page.textContent('#sql-page');
  },

  async csv() {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
    return fs.readFileSync(await download.path(), 'utf-8');
  },

  async history() {
    await page.reload();
    await page.waitForSelector('#sql-history');
    return page.$$eval('#sql-history button', (b) => b.map((x) => x.textContent));
  },

  async deadLetters({ filter = '', wait_for } = {}) {
    await go('deadletters');
    await page.getByLabel('Filter', { exact: true }).fill(filter);
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    if (wait_for) await page.waitForSelector(`#dl-list td:text-is("${wait_for}")`, { timeout: 15000 });
    return {
      summary: await page.textContent('#dl-summary'),
      rows: await page.$$eval('#dl-list tbody tr', (rows) => rows.map((r) => Array.from(r.cells, (c) => c.textContent))),
    };
  },

  async reingest({ index = 0, payload }) {
    await page.locator('#dl-list tbody tr').nth(index).getByRole('button', { name: /^Fix/ }).click();
    await page.getByRole('textbox', { name: /^Payload \(/ }).fill(payload);
    await page.getByRole('button', { name: 'Re-ingest' }).click();
    await page.waitForFunction(() => document.getElementById('dl-message').textContent !== '');
    return { message: await page.textContent('#dl-message'), cls: await page.getAttribute('#dl-message', 'class') };
  },

  async discard({ index = 0 }) {
    await page.locator('#dl-list tbody tr').nth(index).getByRole('button', { name: /^Fix/ }).click();
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.waitForFunction(() => document.getElementById('dl-message').textContent !== '');
    return page.textContent('#dl-message');
  },

  async users() {
    await go('users');
    await page.waitForSelector('#users-list tbody tr');
    return page.$$eval('#users-list tbody tr', (rows) => rows.map((r) => r.dataset.user));
  },

  async addUser({ name, password }) {
    await page.locator('#page').getByLabel('Name').fill(name);
    await page.locator('#page').getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.waitForSelector(`#users-list tr[data-user="${name}"]`);
    return page.textContent('#users-message');
  },

  async changePassword({ name, password }) {
    await page.getByLabel(`New password for ${name}`).fill(password);
    const before = await page.textContent('#users-message');
    await page.getByRole('button', { name: `Change the password of ${name}` }).click();
    await page.waitForFunction((old) => document.getElementById('users-message').textContent !== old, before);
    return { message: await page.textContent('#users-message'), cls: await page.getAttribute('#users-message', 'class') };
  },

  async deleteUser({ name }) {
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: `Delete ${name}` }).click();
    await page.waitForSelector(`#users-list tr[data-user="${name}"]`, { state: 'detached' });
    return page.textContent('#users-message');
  },

  // The live topic view: fills the filter, clicks Subscribe and answers once the page watches or was refused.
  async liveSubscribe({ filter }) {
    await go('topics');
    await page.getByLabel('Topic filter').fill(filter);
    await page.getByRole('button', { name: /^Subscribe/ }).click();
    await page.waitForFunction(() => ['watching', 'refused', 'ended'].includes(window.iotdbConsole.topics.status));
    return liveState();
  },

  // Waits until the view holds `count` messages (one on `topic`, a rate above 0, or the stream ended, if asked).
  async liveUntil({ count = 0, topic = null, rate = false, status = null, timeout = 20000 }) {
    await page.waitForFunction(([n, t, r, st]) => {
      const s = window.iotdbConsole.topics;
      return s.messages.length >= n && (!t || s.messages.some((m) => m.topic === t)) && (!r || s.rate > 0)
        && (!st || s.status === st);
    }, [count, topic, rate, status], { timeout });
    return liveState();
  },

  async liveButton({ name }) {
    await page.getByRole('button', { name, exact: true }).click();
    return liveState();
  },

  // Keyboard only: Tab from the skip link to the "Live topics" link, Enter; then Tab into the form, type a filter,
  // Enter subscribes; Tab on through the controls (recording each one's name and whether its focus is visible),
  // pressing Space on Pause. Waits for `messages` messages after subscribing (the list is a tab stop once it holds one).
  async liveKeyboard({ filter, tabs = 5, messages = 0 }) {
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      const style = getComputedStyle(e);
      return { tag: e.tagName, id: e.id, name: (e.labels?.[0]?.textContent || e.getAttribute('aria-label') || e.textContent).trim().slice(0, 40),
        visible: e.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    });
    await page.focus('.skip');
    const links = [];
    for (let i = 0; i < 12 && (links.at(-1) || {}).name !== 'Live topics'; i++) {
      await page.keyboard.press('Tab');
      links.push(await focused());
    }
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#page h1')?.textContent === 'Live topics');
    const controls = [await focused()];
    await page.keyboard.press('Tab');
    controls.push(await focused());
    await page.keyboard.press('Control+A');
    await page.keyboard.type(filter);
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => window.iotdbConsole.topics.status === 'watching'
      && window.iotdbConsole.topics.messages.length >= n, messages);
    let pausedBySpace = false;
    for (let i = 0; i < tabs; i++) {
      await page.keyboard.press('Tab');
      const now = await focused();
      controls.push(now);
      if (now.id === 'topics-pause') {
        await page.keyboard.press('Space');
        pausedBySpace = await page.evaluate(() => window.iotdbConsole.topics.paused);
      }
    }
    return { links, controls, pausedBySpace, state: await liveState() };
  },

  async goto({ hash }) {
    await go(hash);
    return page.textContent('#page h1');
  },

  // Keyboard only: from the skip link, Tab walks the navigation in order and Enter opens the last link reached.
  async keyboardNavigation({ tabs = 2 }) {
    await page.focus('.skip');
    const order = [await page.evaluate(() => document.activeElement.textContent.trim())];
    for (let i = 0; i < tabs; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement.textContent.trim()));
    }
    const target = order.at(-1);
    await page.keyboard.press('Enter');
    await page.waitForFunction((title) => document.querySelector('#page h1')?.textContent === title, target);
    return { order, focused: await page.evaluate(() => document.activeElement.tagName + ':' + document.activeElement.textContent) };
  },

  async layout() {
    return page.evaluate(() => ({
      width: window.innerWidth,
      scrollWidth: document.documentElement.scrollWidth,
      unlabelled: Array.from(document.querySelectorAll('input, textarea, select'))
        .filter((e) => !e.labels?.length && !e.getAttribute('aria-label')).map((e) => e.id || e.outerHTML),
    }));
  },

  async screenshot({ name, full = true }) {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, `${name}.png`);
    await page.screenshot({ path: file, fullPage: full });
    return file;
  },

  async errors() { return pageErrors.slice(); },
};

const lines = readline.createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ id: 0, ok: true, result: 'ready' }) + '\n');
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, action, args } = JSON.parse(line);
  let answer;
  try {
    if (!actions[action]) throw new Error(`no action ${action}`);
    answer = { id, ok: true, result: await actions[action](args || {}) };
  } catch (error) {
    answer = { id, ok: false, error: String(error && error.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
