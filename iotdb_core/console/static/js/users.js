// Users (administrators): add a user, change a password, delete a user.
import { api } from './api.js';
import { announce, el } from './format.js';

export function render(root, session) {
  const message = el('p', { id: 'users-message', role: 'status' });
  const list = el('div', { id: 'users-list' });
  const addName = el('input', { id: 'add-name', autocomplete: 'off', required: true });
  const addPassword = el('input', { id: 'add-password', type: 'password', autocomplete: 'new-password', required: true });
  const addForm = el('form', { class: 'toolbar', 'aria-labelledby': 'add-title' },
    el('div', {}, el('label', { for: 'add-name' }, 'Name'), addName),
    el('div', {}, el('label', { for: 'add-password' }, 'Password'), addPassword),
    el('button', { type: 'submit' }, 'Add user'));
  root.append(el('h1', {}, 'Users'), message, list, el('h2', { id: 'add-title' }, 'Add a user'), addForm);

  async function act(path, body, text) {
    try {
      await api(path, { method: 'POST', body });
      message.className = 'ok';
      message.textContent = text;
      announce(text);
      await load();
      return true;
    } catch (error) {
      message.className = 'error';
      message.textContent = error.message;
      return false;
    }
  }

  async function load() {
    try {
      const { users } = await api('users');
      const rows = users.map((u) => {
        const field = el('input', { type: 'password', id: `pw-${u.name}`, autocomplete: 'new-password' });
        return el('tr', { 'data-user': u.name },
          el('th', { scope: 'row' }, u.name + (u.admin ? ' (administrator)' : '') + (u.name === session.user ? ' — you' : '')),
          el('td', {}, el('form', { class: 'toolbar', onsubmit: async (e) => {
            e.preventDefault();
            if (await act('users/password', { name: u.name, password: field.value }, `Password of ${u.name} changed.`)) field.value = '';
          } }, el('label', { for: `pw-${u.name}`, class: 'visually-hidden' }, `New password for ${u.name}`), field,
          el('button', { type: 'submit', 'aria-label': `Change the password of ${u.name}` }, 'Change password'))),
          el('td', {}, u.admin ? '' : el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${u.name}`,
            onclick: () => window.confirm(`Delete user ${u.name}?`) && act('users/delete', { name: u.name }, `User ${u.name} deleted.`) }, 'Delete')));
      });
      list.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'User'), el('th', { scope: 'col' }, 'Password'), el('th', { scope: 'col' }, ''))),
        el('tbody', {}, rows))));
    } catch (error) {
      list.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
    }
  }

  addForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (await act('users', { name: addName.value, password: addPassword.value }, `User ${addName.value} added.`)) {
      addName.value = ''; addPassword.value = '';
    }
  });
  load();
}
