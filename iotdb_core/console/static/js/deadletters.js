// Dead letters: the payloads that could not be stored, newest first, filterable; one can be fixed and
// re-ingested through the configured formatter, or discarded.
import { api } from './api.js';
import { announce, el, number } from './format.js';

export function render(root) {
  const filter = el('input', { id: 'dl-filter', type: 'search', placeholder: 'client, topic, reason or payload' });
  const summary = el('p', { id: 'dl-summary', class: 'muted', role: 'status' });
  const holder = el('div', { id: 'dl-list' });
  const editor = el('section', { class: 'editor', id: 'dl-editor', hidden: true, 'aria-labelledby': 'dl-editor-title' });
  root.append(el('h1', {}, 'Dead letters'),
    el('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); load(); } },
      el('div', {}, el('label', { for: 'dl-filter' }, 'Filter'), filter), el('button', { type: 'submit' }, 'Filter')),
    summary, holder, editor);

  async function load() {
    try {
      const body = await api('deadletters', { query: { text: filter.value.trim() } });
      summary.textContent = `${number(body.matched)} of ${number(body.total)} kept payload(s) match; newest first.`;
      holder.dataset.count = String(body.matched);
      if (!body.letters.length) { holder.replaceChildren(el('p', { class: 'muted' }, 'Nothing to show.')); return; }
      const head = el('tr', {}, ['Time (UTC)', 'Client', 'User', 'Topic', 'QoS', 'Reason', 'Payload', ''].map((h) => el('th', { scope: 'col' }, h)));
      const rows = body.letters.map((l) => el('tr', { 'data-id': l.id },
        el('td', {}, l.time.replace('T', ' ').replace('+00:00', '')), el('td', {}, l.client_id), el('td', {}, l.username ?? '—'),
        el('td', {}, l.topic), el('td', { class: 'num' }, String(l.qos)), el('td', {}, l.reason),
        el('td', { class: 'payload' }, l.payload.length > 200 ? l.payload.slice(0, 200) + '…' : l.payload),
        el('td', {}, el('button', { type: 'button', 'aria-label': `Fix the payload of ${l.time} from ${l.client_id}`, onclick: () => edit(l) }, 'Fix…'))));
      holder.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head), el('tbody', {}, rows))));
    } catch (error) {
      holder.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
    }
  }

  function edit(letter) {
    const topic = el('input', { id: 'dl-topic', value: letter.topic });
    const payload = el('textarea', { id: 'dl-payload' }, letter.payload);
    const message = el('p', { id: 'dl-message', role: 'alert' });
    const act = async (path, body, done) => {
      try {
        const answer = await api(path, { method: 'POST', body });
        message.className = 'ok';
        message.textContent = done(answer);
        announce(message.textContent);
        await load();
      } catch (error) {
        message.className = 'error';
        message.textContent = error.message;
      }
    };
    editor.replaceChildren(
      el('h2', { id: 'dl-editor-title' }, `Payload from ${letter.client_id} at ${letter.time}`),
      el('p', { class: 'muted' }, `Rejected: ${letter.reason}`),
      el('label', { for: 'dl-topic' }, 'Topic'), topic,
      el('label', { for: 'dl-payload' }, `Payload (${letter.payload_encoding})`), payload,
      el('div', { class: 'toolbar' },
        el('button', { type: 'button', id: 'dl-reingest', onclick: () => act('deadletters/reingest',
          { id: letter.id, payload: payload.value, payload_encoding: letter.payload_encoding, topic: topic.value },
          (a) => `Stored ${a.points} point(s) in ${a.rows} row(s); the dead letter is removed.`) }, 'Re-ingest'),
        el('button', { type: 'button', class: 'danger', id: 'dl-discard', onclick: () => act('deadletters/discard', { id: letter.id },
          () => 'Discarded.') }, 'Discard'),
        el('button', { type: 'button', class: 'secondary', onclick: () => { editor.hidden = true; } }, 'Close')),
      message);
    editor.hidden = false;
    payload.focus();
  }

  load();
  const timer = setInterval(() => { if (editor.hidden && !document.hidden) load(); }, 3000);
  return () => clearInterval(timer);
}
