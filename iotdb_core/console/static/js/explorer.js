// Data explorer: the series tree (databases, devices, series with type and encoding; a device's counts
// and first/last times load when it is opened), and a plot of the chosen series that the server
// downsamples to at most one window per pixel column (an exact GROUP BY answered as columns: timestamps,
// counts, min, max, mean). Drag on the chart to zoom; the buttons (or the arrow, + and - keys on the chart)
// pan and zoom from the keyboard.
import { api } from './api.js';
import { lineChart, toSeconds } from './charts.js';
import { announce, el, fromMillis, number, time } from './format.js';

export function render(root) {
  const tree = el('nav', { class: 'tree', id: 'tree', 'aria-label': 'Series' }, el('p', { class: 'muted' }, 'Loading…'));
  const title = el('h2', { id: 'plot-title' }, 'Choose a series');
  const info = el('p', { id: 'plot-info', class: 'muted', role: 'status' });
  const chartBox = el('div', { class: 'chart', id: 'plot', tabindex: '0', role: 'img',
    'aria-label': 'Plot of the chosen series; arrow keys pan, + and - zoom' });
  const startInput = el('input', { id: 'range-start', type: 'datetime-local', step: '0.001' });
  const endInput = el('input', { id: 'range-end', type: 'datetime-local', step: '0.001' });
  const buttons = {
    apply: el('button', { type: 'button', id: 'range-apply' }, 'Show range'),
    all: el('button', { type: 'button', class: 'secondary', id: 'range-all' }, 'Whole series'),
    left: el('button', { type: 'button', class: 'secondary', 'aria-label': 'Pan left' }, '◀'),
    right: el('button', { type: 'button', class: 'secondary', 'aria-label': 'Pan right' }, '▶'),
    zoomIn: el('button', { type: 'button', class: 'secondary', 'aria-label': 'Zoom in' }, '+'),
    zoomOut: el('button', { type: 'button', class: 'secondary', 'aria-label': 'Zoom out' }, '−'),
  };
  const toolbar = el('div', { class: 'toolbar' },
    el('div', {}, el('label', { for: 'range-start' }, 'From (UTC)'), startInput),
    el('div', {}, el('label', { for: 'range-end' }, 'To (UTC)'), endInput),
    buttons.apply, buttons.all, buttons.left, buttons.right, buttons.zoomIn, buttons.zoomOut);
  root.append(el('h1', {}, 'Data explorer'),
    el('div', { class: 'explorer' }, tree, el('section', { 'aria-labelledby': 'plot-title' }, title, toolbar, info, chartBox)));

  let chart = null;
  let current = null; // { path, type, start, end } in server timestamps
  let loading = 0;

  function setChart(windowed) {
    if (chart) chart.destroy();
    chartBox.replaceChildren();
    const series = windowed
      ? [{ label: 'min', band: 'lower', stroke: '#7aa7e0', width: 1 }, { label: 'max', band: 'upper', stroke: '#7aa7e0', width: 1 },
        { label: 'mean', stroke: '#0a58ca', width: 1.5 }]
      : [{ label: 'value' }];
    chart = lineChart(chartBox, 'explorer', { series, height: 320, onZoom: (min, max) => {
      show(current.path, fromMillis(min * 1000), fromMillis(max * 1000));
    } });
  }

  async function show(path, start, end) {
    const ticket = ++loading;
    info.textContent = 'Loading…';
    const points = Math.min(4000, Math.max(100, Math.floor(chartBox.getBoundingClientRect().width)));
    const began = performance.now();
    try {
      const body = await api('plot', { query: { path, start, end, points } });
      if (ticket !== loading) return;
      current = { path, type: body.type, start: start ?? body.first, end: end ?? body.last };
      const windowed = body.mode === 'windows';
      setChart(windowed);
      const x = toSeconds(body.timestamps);
      chart.set(windowed ? [x, body.min, body.max, body.mean] : [x, body.values]);
      const drawn = performance.now() - began;
      title.textContent = path;
      info.textContent = `${number(body.count)} points from ${time(body.first)} to ${time(body.last)}; `
        + (windowed ? `${number(body.timestamps.length)} windows of ${number(body.interval)} (min, max, mean; exact)` : 'every point drawn')
        + ` — server ${body.server_ms} ms, drawn in ${Math.round(drawn)} ms`;
      window.iotdbConsole.plot = { path, mode: body.mode, count: body.count, first: body.first, last: body.last,
        points: body.timestamps.length, timestamps: body.timestamps, values: windowed ? body.mean : body.values,
        min: body.min, max: body.max, counts: body.counts, interval: body.interval, drawnMs: drawn };
      chartBox.dataset.path = path;
      if (current.start !== null && current.start !== undefined) startInput.value = toLocal(current.start);
      if (current.end !== null && current.end !== undefined) endInput.value = toLocal(current.end);
      for (const b of tree.querySelectorAll('button[data-path]')) b.setAttribute('aria-pressed', String(b.dataset.path === path));
      announce(`Plotted ${path}`);
    } catch (error) {
      if (ticket === loading) info.textContent = `Cannot plot ${path}: ${error.message}`;
    }
  }

  function span() { return Math.max(1, current.end - current.start); }
  function pan(direction) { if (current) { const d = Math.round(span() / 4) * direction; show(current.path, current.start + d, current.end + d); } }
  function zoom(factor) {
    if (!current) return;
    const middle = (current.start + current.end) / 2, half = span() * factor / 2;
    show(current.path, Math.round(middle - half), Math.round(middle + half));
  }
  buttons.left.onclick = () => pan(-1);
  buttons.right.onclick = () => pan(1);
  buttons.zoomIn.onclick = () => zoom(0.5);
  buttons.zoomOut.onclick = () => zoom(2);
  buttons.all.onclick = () => current && show(current.path);
  buttons.apply.onclick = () => current && show(current.path, fromLocal(startInput.value), fromLocal(endInput.value));
  chartBox.addEventListener('keydown', (event) => {
    const actions = { ArrowLeft: () => pan(-1), ArrowRight: () => pan(1), '+': () => zoom(0.5), '=': () => zoom(0.5), '-': () => zoom(2) };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  });

  async function openDevice(device, list) {
    if (list.dataset.loaded) return;
    list.dataset.loaded = '1';
    try {
      const { series } = await api('device', { query: { path: device } });
      for (const entry of series) {
        const meta = list.querySelector(`[data-meta="${CSS.escape(entry.path)}"]`);
        if (meta) meta.textContent += ` · ${number(entry.count)} points · ${time(entry.first)} → ${time(entry.last)}`;
      }
    } catch (error) {
      list.append(el('li', { class: 'error' }, error.message));
    }
  }

  api('tree').then(({ databases, devices, series }) => {
    tree.dataset.series = String(series.length);
    if (!series.length) { tree.replaceChildren(el('p', { class: 'muted' }, 'No series yet.')); return; }
    const byDevice = new Map(devices.map((d) => [d, []]));
    for (const s of series) { if (!byDevice.has(s.device)) byDevice.set(s.device, []); byDevice.get(s.device).push(s); }
    const top = el('ul', { role: 'list' });
    for (const database of databases) {
      const deviceItems = [...byDevice.entries()].filter(([, list]) => list.length && list[0].database === database)
        .map(([device, list]) => {
          const items = el('ul', {}, list.map((s) => el('li', {},
            el('button', { type: 'button', 'data-path': s.path, 'aria-pressed': 'false', onclick: () => show(s.path) }, s.measurement),
            el('span', { class: 'meta', 'data-meta': s.path }, `${s.type} · ${s.encoding}`))));
          const details = el('details', {}, el('summary', {}, device.slice(database.length + 1) || device), items);
          details.addEventListener('toggle', () => details.open && openDevice(device, items));
          return el('li', {}, details);
        });
      top.append(el('li', {}, el('details', { open: true }, el('summary', {}, database), el('ul', {}, deviceItems))));
    }
    tree.replaceChildren(top);
    const wanted = new URLSearchParams(location.hash.split('?')[1] || '').get('path');
    if (wanted) show(wanted);
  }, (error) => tree.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message)));

  const onResize = () => chart && chart.resize();
  window.addEventListener('resize', onResize);
  return () => { window.removeEventListener('resize', onResize); if (chart) chart.destroy(); };
}

// datetime-local inputs hold UTC here, to match the times shown elsewhere.
function toLocal(stamp) { return time(stamp).replace(' ', 'T'); }
function fromLocal(value) {
  if (!value) return undefined;
  const ms = Date.parse(value + 'Z');
  return Number.isNaN(ms) ? undefined : fromMillis(ms);
}
