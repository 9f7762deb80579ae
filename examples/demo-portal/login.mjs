/**
 * The portal demo's OneID-style login: "Kirish (ERI bilan)" → the keys the agent sees → the person picks one →
 * `client.login()` (challenge from the verification server, signed by the agent, posted to this portal's backend,
 * which asks /backend/auth) → "Xush kelibsiz, <name>" with PINFL and TIN. A legal entity's officer may then enter as
 * the organisation (its TIN); the backend allows that only when the certificate carries a legal-entity TIN.
 *
 * Served by `eimzo-agent portal serve --demo` at /demo/ (the backend is /demo/api/*). The agent is the usual one;
 * add `?agent=ws://127.0.0.1:PORT/service/cryptapi` to choose another.
 */

import { client, element, failureKey, detailOf, renderPage, pickDemoLanguage, safeStorage, translator } from './portal-texts.mjs';

/** @typedef {import('./portal-texts.mjs').DemoLanguage} DemoLanguage */

/** @type {Record<DemoLanguage, Record<string, string>>} */
const TEXTS = {
  uz: {
    title: 'Namunaviy portal — Kirish',
    intro: "Elektron raqamli imzo (ERI) bilan kirish namunasi: imzoni portal serveri tekshiradi.",
    loginHeading: 'Portalga kirish',
    loginButton: 'Kirish (ERI bilan)',
    chooseKey: 'Kalitni tanlang',
    noKeys: 'Kalitlar topilmadi. Fleshkani ulang yoki agentni --demo bilan ishga tushiring.',
    loadingKeys: "Kalitlar ro'yxati olinmoqda…",
    signing: 'Imzolanmoqda… Parolni agent oynasiga kiriting.',
    expired: "muddati o'tgan",
    individual: 'Jismoniy shaxs',
    legal: 'Yuridik shaxs',
    greeting: 'Xush kelibsiz, {name}!',
    pinfl: 'JShShIR',
    tin: 'STIR',
    certificate: 'Sertifikat',
    roleHeading: 'Kim sifatida ishlaysiz?',
    asPerson: 'Jismoniy shaxs sifatida',
    asOrganisation: 'Tashkilot nomidan kirish (STIR {tin})',
    actingPerson: 'Siz jismoniy shaxs sifatida ishlayapsiz.',
    actingOrganisation: '{name} (STIR {tin}) nomidan ishlayapsiz.',
    logout: 'Chiqish',
    footer: 'namunaviy portal: imzo eimzo-agent portal serverida tekshiriladi',
  },
  kaa: {
    title: 'Úlgi portal — Kiriw',
    intro: 'Elektron cifrlı qoltańba (ECQ) menen kiriw úlgisi: qoltańbanı portal serveri tekseredi.',
    loginHeading: 'Portalǵa kiriw',
    loginButton: 'Kiriw (ECQ menen)',
    chooseKey: 'Giltti tańlań',
    noKeys: 'Giltler tabılmadı. Fleshkanı jalǵań yamasa agentti --demo menen iske túsiriń.',
    loadingKeys: 'Giltler dizimi alınbaqta…',
    signing: 'Qol qoyılmaqta… Paroldı agent aynasına kirgiziń.',
    expired: 'múddeti ótken',
    individual: 'Fizikalıq tulǵa',
    legal: 'Yuridikalıq tulǵa',
    greeting: 'Xosh keldińiz, {name}!',
    pinfl: 'PINFL',
    tin: 'STIR',
    certificate: 'Sertifikat',
    roleHeading: 'Kim sıpatında isleysiz?',
    asPerson: 'Fizikalıq tulǵa sıpatında',
    asOrganisation: 'Shólkem atınan kiriw (STIR {tin})',
    actingPerson: 'Siz fizikalıq tulǵa sıpatında isleysiz.',
    actingOrganisation: '{name} (STIR {tin}) atınan isleysiz.',
    logout: 'Shıǵıw',
    footer: 'úlgi portal: qoltańba eimzo-agent portal serverinde tekseriledi',
  },
  ru: {
    title: 'Демонстрационный портал — Вход',
    intro: 'Пример входа по электронной цифровой подписи (ЭЦП): подпись проверяет сервер портала.',
    loginHeading: 'Вход на портал',
    loginButton: 'Войти (по ЭЦП)',
    chooseKey: 'Выберите ключ',
    noKeys: 'Ключи не найдены. Подключите флешку или запустите агент с --demo.',
    loadingKeys: 'Получение списка ключей…',
    signing: 'Подписание… Введите пароль в окне агента.',
    expired: 'срок истёк',
    individual: 'Физическое лицо',
    legal: 'Юридическое лицо',
    greeting: 'Добро пожаловать, {name}!',
    pinfl: 'ПИНФЛ',
    tin: 'ИНН',
    certificate: 'Сертификат',
    roleHeading: 'В какой роли вы работаете?',
    asPerson: 'Как физическое лицо',
    asOrganisation: 'Войти от имени организации (ИНН {tin})',
    actingPerson: 'Вы работаете как физическое лицо.',
    actingOrganisation: 'Вы работаете от имени {name} (ИНН {tin}).',
    logout: 'Выйти',
    footer: 'демонстрационный портал: подпись проверяется сервером eimzo-agent portal',
  },
};

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const state = {
  /** @type {DemoLanguage} */
  lang: pickDemoLanguage(),
  /** @type {import('./eimzo-agent.mjs').KeyInfo[] | null} */
  keys: null,
  /** The demo backend's session view: {person, organisation, roles, role, certificate} @type {any} */
  session: null,
  /** @type {string} */
  progress: '',
  /** @type {{key: string, detail: string, status: number | null} | null} */
  error: null,
};

const t = translator(TEXTS, () => state.lang);

function render() {
  renderPage(t, state);
  $('verify-link').setAttribute('href', `verify.html${location.search}`);
  renderKeys();
  renderSession();
}

function renderKeys() {
  const list = $('keys');
  $('key-choice').hidden = state.keys === null || Boolean(state.session);
  list.replaceChildren();
  if (!state.keys) return;
  if (state.keys.length === 0) list.append(element('li', { class: 'muted' }, [t('noKeys')]));
  for (const key of state.keys) {
    const upper = (/** @type {string | null} */ value) => (value || '').toUpperCase();
    const ids = [key.pinfl && `${t('pinfl')} ${key.pinfl}`, key.tin && `${t('tin')} ${key.tin}`].filter(Boolean);
    const details = [key.legalEntity ? `${t('legal')}: ${upper(key.organisation)}` : t('individual'), ...ids];
    if (key.expired) details.push(t('expired'));
    const button = element('button', {
      type: 'button', class: 'key', 'data-pinfl': key.pinfl || '', 'data-serial': key.serial || '',
      'data-legal': String(key.legalEntity),
    }, [element('strong', {}, [upper(key.cn) || key.alias]), element('span', { class: 'small' }, [details.join(' · ')])]);
    (/** @type {HTMLButtonElement} */ (button)).disabled = key.expired || state.progress === 'signing';
    button.addEventListener('click', () => login(key));
    list.append(element('li', {}, [button]));
  }
  list.dataset.state = 'ready';
}

function renderSession() {
  const session = state.session;
  $('welcome').hidden = !session;
  $('login').hidden = Boolean(session);
  if (!session) return;
  $('greeting').textContent = t('greeting', { name: session.person.fullName });
  $('person-pinfl').textContent = session.person.pinfl || '—';
  $('person-tin').textContent = session.person.tin || '—';
  $('certificate').textContent = `${session.certificate.serialNumber} (${session.certificate.validFrom} – ` +
    `${session.certificate.validTo})`;
  const organisation = session.organisation;
  $('roles').hidden = !organisation;
  $('role-person').textContent = t('asPerson');
  $('role-organisation').textContent = organisation ? t('asOrganisation', { tin: organisation.tin }) : '';
  for (const id of ['role-person', 'role-organisation']) {
    $(id).setAttribute('aria-pressed', String($(id).dataset.role === session.role));
  }
  const acting = $('acting');
  acting.dataset.role = session.role;
  acting.textContent = session.role === 'organisation' && organisation
    ? t('actingOrganisation', { name: organisation.name, tin: organisation.tin })
    : t('actingPerson');
}

/** @param {unknown} error */
function fail(error) {
  const { key, status } = failureKey(error, 'auth');
  state.error = { key, status, detail: detailOf(error) };
  state.progress = '';
  render();
}

async function showKeys() {
  state.error = null;
  state.progress = 'loadingKeys';
  render();
  try {
    const byName = (/** @type {import('./eimzo-agent.mjs').KeyInfo} */ k) => (k.cn || k.alias).toUpperCase();
    state.keys = (await client.listKeys())
      .sort((a, b) => Number(a.expired) - Number(b.expired) || byName(a).localeCompare(byName(b)));
    state.progress = '';
    render();
  } catch (error) {
    fail(error);
  }
}

/** @param {import('./eimzo-agent.mjs').KeyInfo} key */
async function login(key) {
  state.error = null;
  state.progress = 'signing';
  render();
  try {
    // The contract every E-IMZO-server portal follows, in one call: GET the challenge, sign it attached, POST the
    // PKCS#7 to our own backend (which forwards it to /backend/auth with the browser's Host and IP).
    state.session = await client.login({ challengeUrl: '/frontend/challenge', authUrl: 'api/login', key });
    state.progress = '';
    render();
  } catch (error) {
    fail(error);
  }
}

/** @param {'person' | 'organisation'} role */
async function chooseRole(role) {
  const response = await fetch('api/role', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ role }),
  });
  const reply = await response.json();
  if (response.ok && reply.status === 1) {
    state.session = reply;
    state.error = null;
  } else {
    state.error = { key: 'unknown', status: reply.status ?? null, detail: reply.message || String(response.status) };
  }
  render();
}

async function loadSession() {
  const response = await fetch('api/session', { cache: 'no-store' });
  state.session = response.ok ? await response.json() : null;
}

for (const button of document.querySelectorAll('nav button[data-lang]')) {
  button.addEventListener('click', () => {
    state.lang = /** @type {DemoLanguage} */ ((/** @type {HTMLElement} */ (button)).dataset.lang);
    safeStorage(state.lang);
    render();
  });
}
$('login-button').addEventListener('click', () => showKeys());
$('role-person').addEventListener('click', () => chooseRole('person'));
$('role-organisation').addEventListener('click', () => chooseRole('organisation'));
$('logout').addEventListener('click', async () => {
  await fetch('api/logout', { method: 'POST' });
  state.session = null;
  state.keys = null;
  render();
});

Object.assign(window, { demo: { client, state } });

render();
loadSession().catch(() => undefined).finally(() => {
  document.body.dataset.ready = 'true';
  render();
});
