// Overview: rates from the service counters and the engine's state, polled once a second while the page
// is visible. Each chart shows the last two minutes; the current value is also written out as text. The
// engine panel is built once and its figures are updated in place, so a screen reader hears only changes.
import { api, takePrefetched } from './api.js';
import { lineChart } from './charts.js';
import { bytes, el, number } from './format.js';

const WINDOW = 120;
const METRICS = [
  { key: 'publishes', title: 'Publishes / s', counter: 'mqtt_publishes_received', rate: true },
  { key: 'points', title: 'Points written / s', counter: 'points_written', rate: true },
  { key: 'rejected', title: 'Rejected payloads / s', counter: 'mqtt_payloads_rejected', rate: true },
  { key: 'clients', title: 'Connected clients', counter: 'mqtt_connections_current', rate: false },
  { key: 'rest', title: 'REST requests / s', counter: 'rest_requests_total', rate: true },
];

export function render(root) {
  // the shell's early request, or one now; in flight while the charts are built
  let pending = takePrefetched('overview').then((body) => body || api('overview'));
  const cards = METRICS.map((m) => {
    const now = el('p', { class: 'now', id: `now-${m.key}`, 'aria-live': 'off' }, '—');
    const chart = el('div', { class: 'chart', id: `chart-${m.key}`, role: 'img', 'aria-label': `${m.title}, last two minutes` });
    return { metric: m, now, chart, card: el('section', { class: 'card', 'aria-labelledby': `h-${m.key}` },
      el('h2', { id: `h-${m.key}` }, m.title), now, chart) };
  });
  const engine = engineView();
  root.append(el('h1', {}, 'Overview'), el('div', { class: 'grid' }, cards.map((c) => c.card)),
    el('h2', {}, 'Storage engine'), engine.root);

  const charts = cards.map((c) => ({ ...c, plot: lineChart(c.chart, `overview-${c.metric.key}`,
    { series: [{ label: c.metric.title }], height: 120, legend: false, span: WINDOW }) }));
  const times = [];
  const values = Object.fromEntries(METRICS.map((m) => [m.key, []]));
  let previous = null;
  let timer = null;
  let stopped = false;

  async function poll() {
    if (stopped) return;
    try {
      const sample = await (pending || api('overview'));
      pending = null;
      const wall = Date.now() / 1000;
      const counters = { ...sample.counters, mqtt_connections_current: sample.clients };
      if (previous) {
        const dt = Math.max(1e-3, sample.time - previous.time);
        times.push(wall);
        for (const m of METRICS) {
          const value = m.rate ? Math.max(0, ((counters[m.counter] ?? 0) - (previous.counters[m.counter] ?? 0)) / dt)
            : counters[m.counter] ?? 0;
          values[m.key].push(value);
        }
        if (times.length > WINDOW) { times.shift(); for (const m of METRICS) values[m.key].shift(); }
        for (const c of charts) {
          c.plot.set([times.slice(), values[c.metric.key].slice()]);
          const latest = values[c.metric.key].at(-1);
          c.now.textContent = number(latest, c.metric.rate ? 1 : 0);
        }
      }
      root.dataset.totals = JSON.stringify(counters);
      window.iotdbConsole.overview = { counters, engine: sample.engine };
      previous = { time: sample.time, counters };
      engine.update(sample.engine, counters);
    } catch (error) {
      engine.failed(`Cannot read the overview: ${error.message}`);
    }
    if (!stopped) timer = setTimeout(poll, document.hidden ? 5000 : 1000);
  }
  const onResize = () => charts.forEach((c) => c.plot.resize());
  window.addEventListener('resize', onResize);
  poll();
  return () => { stopped = true; clearTimeout(timer); window.removeEventListener('resize', onResize); charts.forEach((c) => c.plot.destroy()); };
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return seconds < 1 ? `${number(seconds * 1000, 1)} ms` : `${number(seconds, 2)} s`;
}

function work(w) {
  const failed = w.failed ? `, ${number(w.failed)} failed` : '';
  const mean = w.done ? `, mean ${duration(w.mean_seconds)}` : '';
  return `${number(w.running)} running, ${number(w.done)} done${failed}${mean}`;
}

// The panel's cards, each with its figures: [id, label, text of (state, counters)].
const CARDS = [
  ['Writes', [
    ['engine-state', 'State', (s) => (s.writable ? 'Writable' : `Read-only: ${s.read_only_reason}`)],
    ['memtable', 'Memtables', (s) => `${bytes(s.memtable_bytes)}, ${number(s.memtable_points)} points`],
    ['memtable-sealed', 'Sealed', (s) => `${number(s.sealed_memtables)} (budget ${bytes(s.memtable_budget)})`],
    ['wal', 'WAL', (s) => `${number(s.wal_segments)} segment(s), ${bytes(s.wal_bytes)}`],
  ]],
  ['Background work', [
    ['flushes', 'Flushes', (s) => work(s.flushes)],
    ['compactions', 'Compactions', (s) => work(s.compactions)],
  ]],
  ['Disk', [
    ['disk-free', 'Free', (s) => `${bytes(s.disk_free)} of ${bytes(s.disk_total)}`],
    ['data-dir-bytes', 'Data directory', (s) => bytes(s.data_dir_bytes)],
    ['data-dir', 'Path', (s) => s.data_dir],
  ]],
  ['Since start', [
    ['total-points', 'Points written (MQTT)', (_s, c) => number(c.points_written)],
    ['total-rejected', 'Payloads rejected', (_s, c) => number(c.mqtt_payloads_rejected)],
  ]],
];
const FIGURES = CARDS.flatMap(([, figures]) => figures);

function engineView() {
  const alert = el('p', { id: 'engine-alert', class: 'error', role: 'alert', hidden: true });
  const values = Object.fromEntries(FIGURES.map(([id]) => [id, el('dd', { id }, '—')]));
  const card = (title, ...content) => el('section', { class: 'card' }, el('h3', {}, title), ...content);
  const tsfiles = el('p', { id: 'tsfiles' }, '—');
  const levels = el('div', { id: 'tsfile-levels' });
  const root = el('div', { id: 'engine' }, alert, el('div', { class: 'grid' },
    CARDS.slice(0, 2).map(([title, figures]) => card(title, kv(figures, values))),
    card('TsFiles', tsfiles, levels),
    CARDS.slice(2).map(([title, figures]) => card(title, kv(figures, values)))));
  let shownLevels = null;
  const say = (node, text) => { if (node.textContent !== text) node.textContent = text; };

  function update(state, counters) {
    if (!state) {
      alert.hidden = true;
      say(tsfiles, 'This storage backend reports no engine state.');
      return;
    }
    for (const [id, , text] of FIGURES) say(values[id], text(state, counters));
    values['engine-state'].className = state.writable ? 'ok' : 'error';
    alert.hidden = state.writable;
    say(alert, state.writable ? '' : `Writes are refused: ${state.read_only_reason}`);
    say(tsfiles, `${number(state.tsfiles)} file(s), ${bytes(state.tsfile_bytes)}`);
    const key = JSON.stringify(state.tsfile_levels);
    if (key !== shownLevels) {
      shownLevels = key;
      levels.replaceChildren(levelTable(state.tsfile_levels));
    }
  }
  function failed(message) {
    alert.hidden = false;
    say(alert, message);
  }
  return { root, update, failed };
}

function kv(figures, values) {
  return el('dl', { class: 'kv' }, figures.flatMap(([id, label]) => [el('dt', {}, label), values[id]]));
}

function levelTable(levels) {
  if (!levels.length) return el('p', { class: 'muted' }, 'No TsFile yet: the data is in memtables and the WAL.');
  return el('table', {}, el('caption', { class: 'visually-hidden' }, 'TsFiles per level'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Level'), el('th', { scope: 'col', class: 'num' }, 'Files'),
      el('th', { scope: 'col', class: 'num' }, 'Bytes'))),
    el('tbody', {}, levels.map((l) => el('tr', {}, el('td', {}, `L${l.level}`),
      el('td', { class: 'num' }, number(l.files)), el('td', { class: 'num' }, bytes(l.bytes))))));
}
