// Live topic view: subscribe to a topic filter (+ and # wildcards) and watch the messages the broker routes,
// newest first. The server streams them as Server-Sent Events (GET /console/api/topics/stream), read here
// with fetch so that a refusal arrives as an ordinary JSON error. The page keeps the last BUFFER messages;
// Pause freezes the list while messages keep arriving into that buffer.
import { announce, el, number } from './format.js';

const BUFFER = 500;
const RATE_WINDOW_S = 5;
const STORED_FILTER = 'iotdb-console-topic-filter';

// the page's state, also read by the tests
const state = {
  filter: '', status: 'idle', error: '', reason: '', messages: [], received: 0, dropped: 0, rate: 0, paused: false,
};

function showPayload(message) {
  if (message.encoding === 'hex') {
    return { kind: 'hex', text: message.payload.replace(/(..)(?!$)/g, '$1 ') };
  }
  const text = message.payload;
  if (/^\s*[[{]/.test(text)) {
    try { return { kind: 'JSON', text: JSON.stringify(JSON.parse(text), null, 2) }; } catch { /* not JSON: text */ }
  }
  return { kind: 'text', text };
}

function timeOf(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function messageItem(message) {
  const payload = showPayload(message);
  const size = message.truncated ? `${number(message.size)} bytes, first ${number(message.payload.length / (message.encoding === 'hex' ? 2 : 1))} shown` : `${number(message.size)} bytes`;
  return el('li', { dataset: { topic: message.topic } },
    el('div', { class: 'live-meta' },
      el('time', { datetime: new Date(message.time).toISOString() }, timeOf(message.time)),
      el('span', { class: 'live-topic' }, message.topic),
      el('span', {}, `QoS ${message.qos}`),
      message.retain ? el('span', { class: 'badge' }, 'retained') : null,
      el('span', {}, `${payload.kind}, ${size}`)),
    el('pre', { class: 'live-payload' }, payload.text));
}

export function render(root) {
  const wanted = new URLSearchParams(location.hash.split('?')[1] || '').get('filter');
  const filter = el('input', { id: 'topics-filter', value: wanted || localStorage.getItem(STORED_FILTER) || '#',
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'topics-help' });
  const subscribe = el('button', { type: 'submit', id: 'topics-subscribe' }, 'Subscribe');
  const pause = el('button', { type: 'button', id: 'topics-pause', class: 'secondary', 'aria-pressed': 'false', disabled: true }, 'Pause');
  const clear = el('button', { type: 'button', id: 'topics-clear', class: 'secondary' }, 'Clear');
  const stop = el('button', { type: 'button', id: 'topics-stop', class: 'secondary', disabled: true }, 'Stop');
  const error = el('p', { id: 'topics-error', class: 'error', role: 'alert' });
  const status = el('p', { id: 'topics-status', class: 'muted' }, 'Not subscribed.');
  const counts = el('dl', { class: 'live-counts', id: 'topics-counts' });
  const list = el('ol', { id: 'topics-list', class: 'live-list', tabindex: '0', 'aria-label': 'Messages, newest first' });
  root.append(el('h1', {}, 'Live topics'),
    el('form', { class: 'toolbar', role: 'search', onsubmit: (event) => { event.preventDefault(); start(); } },
      el('div', {}, el('label', { for: 'topics-filter' }, 'Topic filter'), filter), subscribe, pause, clear, stop),
    el('p', { id: 'topics-help', class: 'muted' },
      '+ matches one level, # any number of levels at the end (sensors/+/temperature, sensors/#). ',
      'Only topics your MQTT topic ACL lets you subscribe to can be watched. ',
      `The page keeps the last ${BUFFER} messages.`),
    error, status, counts, list);

  let controller = null;
  let unseen = 0;
  const samples = [];
  window.iotdbConsole = window.iotdbConsole || { charts: {} };
  window.iotdbConsole.topics = state;
  Object.assign(state, { status: 'idle', error: '', reason: '', messages: [], received: 0, dropped: 0, rate: 0, paused: false });

  function showCounts() {
    const pending = state.paused && unseen ? ` (${number(unseen)} new while paused)` : '';
    const pair = (term, id, value) => el('div', {}, el('dt', {}, term), el('dd', { id }, value));
    counts.replaceChildren(
      pair('Messages kept', 'topics-count', number(state.messages.length) + pending),
      pair('Rate', 'topics-rate', `${number(state.rate, 1)} messages/s`),
      pair('Received', 'topics-received', number(state.received)),
      pair('Dropped (browser too slow)', 'topics-dropped', number(state.dropped)));
  }

  function sampleRate() {
    const now = performance.now() / 1000;
    samples.push([now, state.received]);
    while (samples.length > 1 && now - samples[0][0] > RATE_WINDOW_S) samples.shift();
    const [since, before] = samples[0];
    state.rate = now > since ? (state.received - before) / (now - since) : 0;
    showCounts();
  }
  const rateTimer = setInterval(sampleRate, 1000);

  function renderAll() {
    list.replaceChildren(...state.messages.slice().reverse().map(messageItem));
    unseen = 0;
  }

  function arrived(body) {
    state.received = body.received;
    state.dropped = body.dropped;
    if (!body.messages.length) return;
    state.messages.push(...body.messages);
    const excess = state.messages.length - BUFFER;
    if (excess > 0) state.messages.splice(0, excess);
    if (state.paused) {
      unseen += body.messages.length;
    } else {
      list.prepend(...body.messages.slice(-BUFFER).reverse().map(messageItem));
      while (list.childElementCount > BUFFER) list.lastElementChild.remove();
    }
    showCounts();
  }

  function setStatus(name, text) {
    state.status = name;
    status.textContent = text;
    subscribe.textContent = name === 'watching' || name === 'connecting' ? 'Subscribe again' : 'Subscribe';
    stop.disabled = pause.disabled = !(name === 'watching' || name === 'connecting');
  }

  function ended(reason) {
    state.reason = reason;
    setStatus('ended', `Stopped watching ${state.filter}: ${reason}`);
    announce(status.textContent);
  }

  async function start() {
    const topicFilter = filter.value.trim();
    if (controller) controller.abort();
    const mine = controller = new AbortController();
    error.textContent = state.error = state.reason = '';
    state.filter = topicFilter;
    state.received = state.dropped = 0;
    samples.length = 0;
    state.messages = [];
    setPaused(false);
    renderAll();
    setStatus('connecting', `Subscribing to ${topicFilter}…`);
    localStorage.setItem(STORED_FILTER, topicFilter);
    history.replaceState(null, '', `#/topics?filter=${encodeURIComponent(topicFilter)}`);
    let response;
    try {
      response = await fetch(`/console/api/topics/stream?filter=${encodeURIComponent(topicFilter)}`, {
        credentials: 'same-origin', headers: { Accept: 'text/event-stream' }, signal: mine.signal });
    } catch (failure) {
      if (mine.signal.aborted) return;
      return refused(`The server did not answer: ${failure.message}`);
    }
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch { body = null; }
      if (response.status === 401) window.dispatchEvent(new CustomEvent('console:logged-out'));
      return refused((body && body.message) || `HTTP ${response.status}`);
    }
    setStatus('watching', `Watching ${topicFilter}.`);
    announce(status.textContent);
    try {
      await readEvents(response.body, mine.signal);
      if (!mine.signal.aborted && state.status === 'watching') ended('the server closed the stream');
    } catch (failure) {
      if (!mine.signal.aborted) ended(`the connection failed (${failure.message})`);
    }
  }

  function refused(message) {
    error.textContent = state.error = message;
    setStatus('refused', `Not subscribed to ${state.filter}.`);
  }

  async function readEvents(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = '';
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      let end;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (!data.length) continue;  // a comment (keep-alive)
        const payload = JSON.parse(data.join('\n'));
        if (name === 'messages') arrived(payload);
        else if (name === 'end') { ended(payload.reason); return; }
      }
    }
  }

  function setPaused(paused) {
    state.paused = paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused && unseen) renderAll();
    showCounts();
  }

  pause.addEventListener('click', () => {
    setPaused(!state.paused);
    announce(state.paused ? 'Paused; messages keep arriving.' : 'Resumed.');
  });
  clear.addEventListener('click', () => {
    state.messages = [];
    renderAll();
    showCounts();
    announce('Cleared.');
  });
  stop.addEventListener('click', () => {
    if (controller) controller.abort();
    controller = null;
    setStatus('stopped', `Stopped watching ${state.filter}.`);
    announce(status.textContent);
  });

  showCounts();
  if (wanted) start();
  return () => {
    clearInterval(rateTimer);
    if (controller) controller.abort();
  };
}
