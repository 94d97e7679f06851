// Small formatting and DOM helpers shared by the pages.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function number(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

// Timestamps come in the server's precision (ms, us or ns); charts and dates use milliseconds.
let precisionDivisor = 1;
export function setPrecision(precision) {
  precisionDivisor = { ms: 1, us: 1e3, ns: 1e6 }[precision] || 1;
}
export function toMillis(stamp) { return stamp / precisionDivisor; }
export function fromMillis(ms) { return Math.round(ms * precisionDivisor); }

export function time(stamp) {
  if (stamp === null || stamp === undefined) return '—';
  const date = new Date(toMillis(stamp));
  return Number.isNaN(date.getTime()) ? String(stamp) : date.toISOString().replace('T', ' ').replace('Z', '');
}

export function announce(message) {
  const status = document.getElementById('status');
  status.textContent = '';
  requestAnimationFrame(() => { status.textContent = message; });
}

export function table(columns, rows, { caption } = {}) {
  const head = el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : undefined }, c.label)));
  const body = rows.map((row) => el('tr', {}, columns.map((c) => {
    const value = c.render ? c.render(row) : row[c.key];
    return el('td', { class: c.class || (c.num ? 'num' : undefined) }, value instanceof Node ? value : String(value ?? '—'));
  })));
  return el('div', { class: 'table-wrap' },
    el('table', {}, caption ? el('caption', { class: 'visually-hidden' }, caption) : null,
      el('thead', {}, head), el('tbody', {}, body)));
}

export function wallTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}
