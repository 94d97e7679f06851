// The console shell: log-in, navigation by the URL's hash, and the pages' life cycle. Each page module
// exports render(root, session) and may return a function that stops its timers.
import { api, prefetch, setCsrf } from './api.js';
import { announce, setPrecision } from './format.js';

const PAGES = {
  overview: { title: 'Overview', load: () => import('./overview.js') },
  clients: { title: 'Clients', load: () => import('./clients.js') },
  explorer: { title: 'Data explorer', load: () => import('./explorer.js') },
  sql: { title: 'SQL', load: () => import('./sql.js') },
  deadletters: { title: 'Dead letters', load: () => import('./deadletters.js') },
  topics: { title: 'Live topics', load: () => import('./topics.js') },
  users: { title: 'Users', load: () => import('./users.js'), admin: true },
};

let session = null;
let stopPage = null;
const page = document.getElementById('page');

function showLogin(message = '') {
  session = null;
  if (stopPage) { stopPage(); stopPage = null; }
  page.replaceChildren();
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-error').textContent = message;
  document.title = 'Log in · iotdb console';
  document.getElementById('login-password').focus();
}

function started(body) {
  session = body;
  setCsrf(body.csrf);
  setPrecision(body.precision);
  document.getElementById('login').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('who-name').textContent = body.user;
  for (const link of document.querySelectorAll('[data-admin]')) link.hidden = !body.admin;
  route();
}

async function route() {
  if (!session) return;
  let name = location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
  if (!PAGES[name] || (PAGES[name].admin && !session.admin)) name = 'overview';
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === '#/' + name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (stopPage) { stopPage(); stopPage = null; }
  const { render } = await PAGES[name].load();
  page.replaceChildren();
  document.title = `${PAGES[name].title} · iotdb console`;
  stopPage = render(page, session) || null;
  const heading = page.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  announce(`${PAGES[name].title} page`);
}

document.getElementById('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const body = await api('login', { method: 'POST', body: { user: form.user.value, password: form.password.value } });
    form.password.value = '';
    started(body);
  } catch (error) {
    document.getElementById('login-error').textContent = error.message;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('logout', { method: 'POST', body: {} }); } finally { showLogin(); }
});

window.addEventListener('hashchange', route);
window.addEventListener('console:logged-out', () => showLogin('Your session ended; log in again.'));

if (/^(#\/?(overview)?)?$/.test(location.hash)) prefetch('overview');
api('session').then(started, () => showLogin());
