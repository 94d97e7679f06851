// SQL: an editor (Ctrl+Enter runs), the last statements in localStorage, results as a paged table and,
// when they have a time column and numbers, as a chart; CSV download of the result; a parse error is
// shown under the line it points at.
import { api } from './api.js';
import { lineChart, toSeconds } from './charts.js';
import { announce, el, number, time } from './format.js';

const HISTORY_KEY = 'iotdb-console-sql-history';
const HISTORY_SIZE = 50;
const PAGE_ROWS = 100;

function history() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

export function render(root) {
  const editor = el('textarea', { id: 'sql-text', class: 'sql', spellcheck: 'false', 'aria-describedby': 'sql-help' },
    'SHOW TIMESERIES');
  const run = el('button', { type: 'submit', id: 'sql-run' }, 'Run');
  const download = el('button', { type: 'button', id: 'sql-csv', class: 'secondary', disabled: true }, 'Download CSV');
  const outcome = el('div', { id: 'sql-outcome', role: 'status' });
  const results = el('div', { id: 'sql-results' });
  const chartBox = el('div', { class: 'chart', id: 'sql-chart', hidden: true, role: 'img', 'aria-label': 'Chart of the result' });
  const historyList = el('ol', { class: 'history', id: 'sql-history' });
  const form = el('form', {}, el('label', { for: 'sql-text' }, 'Statement'), editor,
    el('p', { id: 'sql-help', class: 'muted' }, 'Ctrl+Enter runs the statement. Queries return at most 10,000 rows.'),
    el('div', { class: 'toolbar' }, run, download));
  root.append(el('h1', {}, 'SQL'), form, outcome, chartBox, results, el('h2', {}, 'History'), historyList);

  let result = null;
  let chart = null;

  function showHistory() {
    historyList.replaceChildren(...history().map((sql) => el('li', {},
      el('button', { type: 'button', onclick: () => { editor.value = sql; editor.focus(); } }, sql))));
  }
  function remember(sql) {
    const items = [sql, ...history().filter((s) => s !== sql)].slice(0, HISTORY_SIZE);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(items));
    showHistory();
  }

  function columnsOf(body) {
    const names = body.expressions || body.column_names || [];
    return body.timestamps ? ['Time', ...names] : names;
  }
  function rowsOf(body) {
    const count = body.values.length ? body.values[0].length : (body.timestamps ? body.timestamps.length : 0);
    const rows = [];
    for (let i = 0; i < count; i++) {
      const row = body.values.map((column) => column[i]);
      rows.push(body.timestamps ? [body.timestamps[i], ...row] : row);
    }
    return rows;
  }

  function showPage(pageNo) {
    const { columns, rows } = result;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
    const slice = rows.slice(pageNo * PAGE_ROWS, (pageNo + 1) * PAGE_ROWS);
    const timeFirst = columns[0] === 'Time';
    const head = el('tr', {}, columns.map((c) => el('th', { scope: 'col' }, c)));
    const body = slice.map((row) => el('tr', {}, row.map((v, i) => el('td', {}, i === 0 && timeFirst ? time(v) : v === null ? 'null' : String(v)))));
    const nav = el('div', { class: 'toolbar', role: 'navigation', 'aria-label': 'Result pages' },
      el('button', { type: 'button', class: 'secondary', disabled: pageNo === 0, onclick: () => showPage(pageNo - 1) }, 'Previous'),
      el('span', { id: 'sql-page' }, `Page ${pageNo + 1} of ${pages} (${number(rows.length)} rows)`),
      el('button', { type: 'button', class: 'secondary', disabled: pageNo >= pages - 1, onclick: () => showPage(pageNo + 1) }, 'Next'));
    results.replaceChildren(nav, el('div', { class: 'table-wrap' },
      el('table', { id: 'sql-table' }, el('caption', { class: 'visually-hidden' }, 'Result'), el('thead', {}, head), el('tbody', {}, body))));
  }

  function showChart(body) {
    if (chart) { chart.destroy(); chart = null; }
    const numeric = (body.expressions && body.timestamps && body.timestamps.length > 1)
      ? body.expressions.map((name, i) => ({ name, i })).filter(({ i }) => body.values[i].some((v) => typeof v === 'number'))
      : [];
    chartBox.hidden = !numeric.length;
    if (!numeric.length) return;
    chartBox.replaceChildren();
    chart = lineChart(chartBox, 'sql', { series: numeric.slice(0, 4).map(({ name }) => ({ label: name })), height: 240 });
    chart.set([toSeconds(body.timestamps), ...numeric.slice(0, 4).map(({ i }) => body.values[i].map((v) => (typeof v === 'number' ? v : null)))]);
  }

  function showError(body, sql) {
    const parts = [el('p', { class: 'error', role: 'alert', id: 'sql-error' }, `Error ${body.code}: ${body.message}`)];
    if (body.line && body.column) {
      const line = sql.split('\n')[body.line - 1] ?? '';
      parts.push(el('pre', { class: 'caret', id: 'sql-caret', 'aria-label': `line ${body.line}, column ${body.column}` },
        `${line}\n${' '.repeat(Math.max(0, body.column - 1))}^`));
      const offset = sql.split('\n').slice(0, body.line - 1).reduce((n, l) => n + l.length + 1, 0) + body.column - 1;
      editor.focus();
      editor.setSelectionRange(offset, Math.min(sql.length, offset + 1));
    }
    outcome.replaceChildren(...parts);
  }

  async function execute() {
    const sql = editor.value.trim();
    if (!sql) return;
    remember(sql);
    run.disabled = true;
    outcome.replaceChildren(el('p', { class: 'muted' }, 'Running…'));
    results.replaceChildren();
    download.disabled = true;
    const began = performance.now();
    try {
      const body = await api('sql', { method: 'POST', body: { sql } });
      window.iotdbConsole.sql = body;
      const ms = Math.round(performance.now() - began);
      if (body.code !== 200) { showError(body, sql); chartBox.hidden = true; return; }
      if (body.kind === 'update') {
        outcome.replaceChildren(el('p', { class: 'ok' }, `${body.statement}: ${body.message}${body.count !== null ? ` (${number(body.count)})` : ''} in ${ms} ms`));
        chartBox.hidden = true;
        return;
      }
      result = { columns: columnsOf(body), rows: rowsOf(body) };
      outcome.replaceChildren(el('p', { class: 'ok' }, `${number(result.rows.length)} row(s) in ${ms} ms`));
      download.disabled = false;
      showChart(body);
      showPage(0);
      announce(`${result.rows.length} rows`);
    } catch (error) {
      outcome.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
    } finally {
      run.disabled = false;
    }
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); execute(); });
  editor.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); execute(); }
  });
  download.addEventListener('click', () => {
    const quote = (v) => { const s = v === null || v === undefined ? '' : String(v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    const text = [result.columns, ...result.rows].map((row) => row.map(quote).join(',')).join('\n') + '\n';
    const link = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })), download: 'result.csv' });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
  showHistory();
  return () => { if (chart) chart.destroy(); };
}
