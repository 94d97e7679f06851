// Clients: the connected MQTT clients, refreshed every two seconds; administrators may disconnect one.
import { api } from './api.js';
import { announce, el, number, table, wallTime } from './format.js';

export function render(root, session) {
  const holder = el('div', { id: 'clients' }, el('p', { class: 'muted' }, 'Loading…'));
  const message = el('p', { role: 'status', id: 'clients-message' });
  root.append(el('h1', {}, 'Clients'), message, holder);
  let timer = null;
  let stopped = false;

  async function disconnect(clientId) {
    try {
      await api('clients/disconnect', { method: 'POST', body: { client_id: clientId } });
      message.textContent = `Disconnected ${clientId}.`;
      announce(message.textContent);
    } catch (error) {
      message.textContent = error.message;
    }
    refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const { clients } = await api('clients');
      const columns = [
        { label: 'Client id', key: 'client_id' },
        { label: 'User', key: 'username' },
        { label: 'Address', key: 'address' },
        { label: 'Protocol', key: 'protocol' },
        { label: 'Keep alive (s)', key: 'keep_alive', num: true },
        { label: 'Messages in', num: true, render: (c) => (c.messages_in === null ? 'not counted' : number(c.messages_in)) },
        { label: 'Messages out', num: true, render: (c) => (c.messages_out === null ? 'not counted' : number(c.messages_out)) },
        { label: 'Connected since', render: (c) => wallTime(c.connected_since * 1000) },
      ];
      if (session.admin) {
        columns.push({ label: 'Action', render: (c) => el('button', { type: 'button', class: 'danger',
          'aria-label': `Disconnect ${c.client_id}`, onclick: () => disconnect(c.client_id) }, 'Disconnect') });
      }
      holder.replaceChildren(clients.length
        ? table(columns, clients, { caption: 'Connected MQTT clients' })
        : el('p', { class: 'muted' }, 'No MQTT client is connected.'));
      holder.dataset.count = String(clients.length);
    } catch (error) {
      holder.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
    }
    if (!stopped) timer = setTimeout(refresh, 2000);
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
