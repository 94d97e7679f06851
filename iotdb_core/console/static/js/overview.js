// Overview: rates from the service counters and the engine's state, polled once a second while the page
// is visible. Each chart shows the last two minutes; the current value is also written out as text.
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
  const engine = el('div', { id: 'engine' }, el('p', { class: 'muted' }, 'Loading…'));
  root.append(el('h1', {}, 'Overview'), el('div', { class: 'grid' }, cards.map((c) => c.card)),
    el('h2', {}, 'Storage engine'), engine);

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
      engine.replaceChildren(engineView(sample.engine, counters));
    } catch (error) {
      engine.replaceChildren(el('p', { class: 'error', role: 'alert' }, `Cannot read the overview: ${error.message}`));
    }
    if (!stopped) timer = setTimeout(poll, document.hidden ? 5000 : 1000);
  }
  const onResize = () => charts.forEach((c) => c.plot.resize());
  window.addEventListener('resize', onResize);
  poll();
  return () => { stopped = true; clearTimeout(timer); window.removeEventListener('resize', onResize); charts.forEach((c) => c.plot.destroy()); };
}

function engineView(state, counters) {
  const totals = el('dl', { class: 'kv' },
    el('dt', {}, 'TsFiles'), el('dd', { id: 'tsfiles' }, `${number(state.tsfiles)} (${bytes(state.tsfile_bytes)})`),
    el('dt', {}, 'WAL'), el('dd', { id: 'wal' }, `${number(state.wal_segments)} segment(s), ${bytes(state.wal_bytes)}`),
    el('dt', {}, 'Data directory'), el('dd', {}, `${state.data_dir} (${bytes(state.data_dir_bytes)})`),
    el('dt', {}, 'Disk free'), el('dd', { id: 'disk-free' }, `${bytes(state.disk_free)} of ${bytes(state.disk_total)}`),
    el('dt', {}, 'Points written (MQTT)'), el('dd', { id: 'total-points' }, number(counters.points_written)),
    el('dt', {}, 'Payloads rejected'), el('dd', { id: 'total-rejected' }, number(counters.mqtt_payloads_rejected)));
  const levels = state.tsfile_levels.length
    ? el('table', {}, el('caption', { class: 'visually-hidden' }, 'TsFiles per level'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Level'), el('th', { scope: 'col', class: 'num' }, 'Files'),
        el('th', { scope: 'col', class: 'num' }, 'Bytes'))),
      el('tbody', {}, state.tsfile_levels.map((l) => el('tr', {}, el('td', {}, `L${l.level}`),
        el('td', { class: 'num' }, number(l.files)), el('td', { class: 'num' }, bytes(l.bytes))))))
    : el('p', { class: 'muted' }, 'No TsFile yet: the data is in memtables and the WAL.');
  return el('div', { class: 'grid' }, el('section', { class: 'card' }, totals), el('section', { class: 'card' }, levels));
}
