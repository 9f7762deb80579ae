/**
 * The demo portal's "get a key online" page: the seed leaflets' flow against a development registration service.
 *
 * 1. pki.enroll_pfx_step1: the agent makes the key pair and the PKCS#10; its own dialog asks the disk and the new
 *    password (the page never sees either).
 * 2. The PKCS#10 goes to the registration service (`eimzo-agent dev registration`, default http://127.0.0.1:64650/,
 *    or `?ra=URL`), whose development CA issues the certificate.
 * 3. pki.enroll_pfx_step2: the agent checks the chain against the pending key and writes <disk>/DSKEYS/<name>.pfx.
 * Then the keys are listed with the new one marked, and a test text is signed with it.
 *
 * Served by the agent at http://127.0.0.1:64646/demo/enroll.html (`eimzo-agent serve --demo`).
 */

import {
  AgentError, AgentUnavailableError, ConnectionLostError, EimzoClient, bytesToBase64,
} from '/eimzo-agent.mjs';

/** @typedef {'uz' | 'kaa' | 'ru'} DemoLanguage */

const DEFAULT_RA = 'http://127.0.0.1:64650/';
/** E-IMZO refuses an empty cp_list (-1023). The development CA has no policy of its own: an OID from the arc
 * X.660 sets aside for examples (2.999) makes that plain in every certificate it issues. */
const DEV_POLICY = '2.999.12.1';
/** E-IMZO's status when no USB disk is attached. */
const NO_DISK = -5003;

/** @type {Record<DemoLanguage, Record<string, string>>} */
const TEXTS = {
  uz: {
    title: 'eimzo-agent — kalitni onlayn olish',
    intro: "Fleshkaga yangi ERI kalitini yozish namunasi: agent kalit juftini va so'rovni yaratadi, " +
      "ro'yxatga olish xizmati sertifikat beradi, agent kalitni DSKEYS papkasiga saqlaydi.",
    back: '← Namunaviy portal',
    formHeading: "Shaxsiy ma'lumotlar",
    surname: 'Familiya',
    name: 'Ism',
    pinfl: 'JShShIR (14 raqam)',
    tin: 'STIR (9 raqam)',
    alg: 'Algoritm',
    algOzdst: "O'zDSt 1092:2009 (milliy)",
    algRsa: 'RSA 2048 (xalqaro)',
    ra: "Ro'yxatga olish xizmati manzili",
    start: 'Kalit olish',
    stepKeypair: "Kalit jufti va so'rov yaratilmoqda. Agent oynasida diskni tanlang va yangi parolni kiriting.",
    stepIssue: "So'rov ro'yxatga olish xizmatiga yuborilmoqda…",
    stepSave: 'Kalit saqlanmoqda…',
    done: 'Tayyor: {alias} kalitingiz {folder} papkasida.',
    keysHeading: 'Kalitlar',
    newKey: 'yangi',
    signHeading: 'Sinov imzosi',
    testText: 'Yangi kalit bilan imzolangan sinov matni.',
    signTest: 'Sinov matnini imzolash',
    signing: 'Imzolanmoqda… Parolni agent oynasiga kiriting.',
    signed: 'Imzolandi: yangi kalit ishlaydi (imzo {n} bayt).',
    errAgent: "Agent ishlamayapti: uni «eimzo-agent serve --demo» buyrug'i bilan ishga tushiring.",
    errCancelled: 'Bekor qilindi: kalit yaratilmadi.',
    errNoDisk: "USB-diskni (fleshkani) ulang va qayta urinib ko'ring.",
    errRa: "Ro'yxatga olish xizmati javob bermadi ({url}): «eimzo-agent dev registration» buyrug'ini ishga tushiring.",
    errRaRefused: "Ro'yxatga olish xizmati rad etdi: {reason}",
    errAgentRefused: 'Agent rad etdi: {reason}',
    errName: 'Familiya va ismni lotin harflarida kiriting.',
    errPinfl: "JShShIR 14 ta raqamdan iborat bo'lishi kerak.",
    errTin: "STIR 9 ta raqamdan iborat bo'lishi kerak.",
    errNotListed: "Kalit yozildi, lekin ro'yxatda topilmadi.",
  },
  kaa: {
    title: 'eimzo-agent — giltti onlayn alıw',
    intro: 'Fleshkaǵa jańa ERI giltin jazıw úlgisi: agent gilt jubın hám sorawdı jaratadı, dizimge alıw xızmeti ' +
      'sertifikat beredi, agent giltti DSKEYS papkasına saqlaydı.',
    back: '← Úlgi portal',
    formHeading: 'Jeke maǵlıwmatlar',
    surname: 'Familiya',
    name: 'Atı',
    pinfl: 'PINFL (14 san)',
    tin: 'STIR (9 san)',
    alg: 'Algoritm',
    algOzdst: "O'zDSt 1092:2009 (milliy)",
    algRsa: 'RSA 2048 (xalıqaralıq)',
    ra: 'Dizimge alıw xızmetiniń mánzili',
    start: 'Gilt alıw',
    stepKeypair: 'Gilt jubı hám soraw jaratılmaqta. Agent aynasında diskti tańlań hám jańa paroldı kirgiziń.',
    stepIssue: 'Soraw dizimge alıw xızmetine jiberilmekte…',
    stepSave: 'Gilt saqlanbaqta…',
    done: 'Tayar: {alias} giltińiz {folder} papkasında.',
    keysHeading: 'Giltler',
    newKey: 'jańa',
    signHeading: 'Sınaq qoltańba',
    testText: 'Jańa gilt penen qol qoyılǵan sınaq tekst.',
    signTest: 'Sınaq tekstke qol qoyıw',
    signing: 'Qol qoyılmaqta… Paroldı agent aynasına kirgiziń.',
    signed: 'Qol qoyıldı: jańa gilt isleydi (qoltańba {n} bayt).',
    errAgent: 'Agent islemey tur: onı «eimzo-agent serve --demo» buyrıǵı menen iske túsiriń.',
    errCancelled: 'Biykarlandı: gilt jaratılmadı.',
    errNoDisk: 'USB-diskti (fleshkanı) jalǵań hám qaytadan urınıp kóriń.',
    errRa: 'Dizimge alıw xızmeti juwap bermedi ({url}): «eimzo-agent dev registration» buyrıǵın iske túsiriń.',
    errRaRefused: 'Dizimge alıw xızmeti biykarladı: {reason}',
    errAgentRefused: 'Agent biykarladı: {reason}',
    errName: 'Familiya hám attı latın háriplerinde kirgiziń.',
    errPinfl: 'PINFL 14 sannan ibarat bolıwı kerek.',
    errTin: 'STIR 9 sannan ibarat bolıwı kerek.',
    errNotListed: 'Gilt jazıldı, biraq dizimde tabılmadı.',
  },
  ru: {
    title: 'eimzo-agent — получение ключа онлайн',
    intro: 'Пример записи нового ключа ЭЦП на флешку: агент создаёт ключевую пару и запрос, служба регистрации ' +
      'выдаёт сертификат, агент сохраняет ключ в папку DSKEYS.',
    back: '← Демонстрационный портал',
    formHeading: 'Личные данные',
    surname: 'Фамилия',
    name: 'Имя',
    pinfl: 'ПИНФЛ (14 цифр)',
    tin: 'ИНН (9 цифр)',
    alg: 'Алгоритм',
    algOzdst: "O'zDSt 1092:2009 (национальный)",
    algRsa: 'RSA 2048 (международный)',
    ra: 'Адрес службы регистрации',
    start: 'Получить ключ',
    stepKeypair: 'Создаются ключевая пара и запрос. Выберите диск и введите новый пароль в окне агента.',
    stepIssue: 'Запрос отправляется в службу регистрации…',
    stepSave: 'Ключ сохраняется…',
    done: 'Готово: ваш ключ {alias} находится в {folder}.',
    keysHeading: 'Ключи',
    newKey: 'новый',
    signHeading: 'Тестовая подпись',
    testText: 'Тестовый текст, подписанный новым ключом.',
    signTest: 'Подписать тестовый текст',
    signing: 'Подписание… Введите пароль в окне агента.',
    signed: 'Подписано: новый ключ работает (подпись {n} байт).',
    errAgent: 'Агент не запущен: запустите его командой «eimzo-agent serve --demo».',
    errCancelled: 'Отменено: ключ не создан.',
    errNoDisk: 'Присоедините USB-диск (флешку) и повторите попытку.',
    errRa: 'Служба регистрации не отвечает ({url}): запустите «eimzo-agent dev registration».',
    errRaRefused: 'Служба регистрации отказала: {reason}',
    errAgentRefused: 'Агент отказал: {reason}',
    errName: 'Введите фамилию и имя латинскими буквами.',
    errPinfl: 'ПИНФЛ должен состоять из 14 цифр.',
    errTin: 'ИНН должен состоять из 9 цифр.',
    errNotListed: 'Ключ записан, но не найден в списке.',
  },
};

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

const params = new URLSearchParams(location.search);
const servedByAgent = /^(127\.0\.0\.1|localhost)$/.test(location.hostname) && location.pathname.startsWith('/demo');
const agentUrl = params.get('agent') ||
  (servedByAgent ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/service/cryptapi` : undefined);
const client = new EimzoClient({ url: agentUrl });

/** A failure shown to the person: a text key and its values, kept so a language switch re-translates it. */
class PageError extends Error {
  /** @param {string} key @param {Record<string, string>} [values] */
  constructor(key, values = {}) {
    super(key);
    this.key = key;
    this.values = values;
  }
}

const state = {
  /** @type {DemoLanguage} */
  lang: pickLanguage(),
  /** step text keys shown so far, the last one running @type {string[]} */
  steps: [],
  /** @type {{key: string, values: Record<string, string>} | null} */
  error: null,
  /** @type {{alias: string, folder: string} | null} */
  done: null,
  /** the key list entries (E-IMZO's list_all_certificates) @type {any[]} */
  keys: [],
  /** @type {string | null} */
  newAlias: null,
  /** @type {{key: string, values: Record<string, string>} | null} */
  signStatus: null,
};

/** @returns {DemoLanguage} */
function pickLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem('eimzo-demo-lang'); // shared with the main demo page
  } catch {
    // storage disabled
  }
  const primary = (params.get('lang') || stored || navigator.language || 'uz').toLowerCase().split(/[-_]/)[0];
  return primary === 'ru' || primary === 'kaa' ? primary : 'uz';
}

/** @param {string} key @param {Record<string, string | number>} [values] */
function t(key, values = {}) {
  const text = TEXTS[state.lang][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {Array<Node | string>} [content]
 */
function element(tag, attributes = {}, content = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...content);
  return node;
}

function render() {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) {
    node.textContent = t(/** @type {string} */ ((/** @type {HTMLElement} */ (node)).dataset.i18n));
  }
  for (const button of document.querySelectorAll('nav button[data-lang]')) {
    button.setAttribute('aria-pressed', String((/** @type {HTMLElement} */ (button)).dataset.lang === state.lang));
  }
  $('back').setAttribute('href', `./?lang=${state.lang}`);
  $('steps').replaceChildren(...state.steps.map((key, index) => element('li', {
    'data-step': key,
    'data-state': index < state.steps.length - 1 || state.done ? 'done' : (state.error ? 'failed' : 'running'),
  }, [t(key)])));
  $('done').hidden = !state.done;
  $('done').textContent = state.done ? t('done', state.done) : '';
  $('error').hidden = !state.error;
  $('error').textContent = state.error ? t(state.error.key, state.error.values) : '';
  $('test-text').textContent = t('testText');
  $('sign-status').textContent = state.signStatus ? t(state.signStatus.key, state.signStatus.values) : '';
  renderKeys();
}

function renderKeys() {
  $('keys').hidden = state.keys.length === 0;
  $('keys-body').replaceChildren(...state.keys.map((entry) => {
    const isNew = entry.alias === state.newAlias;
    const owner = (/^cn=([^,]*)/i.exec(entry.alias)?.[1] || entry.name).toUpperCase();
    return element('tr', { class: isNew ? 'selected' : '', 'data-alias': entry.alias, 'data-new': String(isNew) }, [
      element('td', {}, [owner]),
      element('td', { class: 'small' }, [`${entry.disk}${entry.path ? entry.path + '/' : ''}${entry.name}.pfx`]),
      element('td', {}, isNew ? [element('span', { class: 'tag individual' }, [t('newKey')])] : []),
    ]);
  }));
}

/** Backslash-escape what is special in an X.500 string (RFC 4514), as BouncyCastle reads it. */
function escapeDn(/** @type {string} */ value) {
  return value.replace(/[,+="\\<>;#]/g, (ch) => `\\${ch}`);
}

/** @returns {{subject: string, pinfl: string, alg: string, ra: string}} */
function readForm() {
  const surname = input('surname').value.trim().toUpperCase();
  const name = input('name').value.trim().toUpperCase();
  const pinfl = input('pinfl').value.trim();
  const tin = input('tin').value.trim();
  if (!/^[A-Z][A-Z' -]*$/.test(surname) || !/^[A-Z][A-Z' -]*$/.test(name)) throw new PageError('errName');
  if (!/^[0-9]{14}$/.test(pinfl)) throw new PageError('errPinfl');
  if (tin && !/^[0-9]{9}$/.test(tin)) throw new PageError('errTin');
  // E-IMZO's order: CN, given name, surname, country, TIN (UID), PINFL.
  const subject = [
    `CN=${escapeDn(`${surname} ${name}`)}`, `GIVENNAME=${escapeDn(name)}`, `SURNAME=${escapeDn(surname)}`, 'C=UZ',
    ...(tin ? [`UID=${tin}`] : []), `1.2.860.3.16.1.2=${pinfl}`,
  ].join(',');
  let ra = input('ra').value.trim() || DEFAULT_RA;
  if (!ra.endsWith('/')) ra += '/';
  return { subject, pinfl, alg: (/** @type {HTMLSelectElement} */ ($('alg'))).value, ra };
}

/** E-IMZO's file name for a new key: DS<PINFL><NNNN>, the first number no listed key uses. */
function freeFileName(/** @type {string} */ pinfl, /** @type {any[]} */ keys) {
  const taken = new Set(keys.map((k) => String(k.name).toUpperCase()));
  for (let number = 1; number < 10000; number++) {
    const name = `DS${pinfl}${String(number).padStart(4, '0')}`;
    if (!taken.has(name)) return name;
  }
  return `DS${pinfl}${Date.now() % 10000}`;
}

async function listCertificates() {
  return (await client.call('list_all_certificates', [], { plugin: 'pfx' })).certificates || [];
}

/** @param {string} key */
function step(key) {
  state.steps.push(key);
  render();
}

/** POST the request to the registration service; its three certificates, or a PageError saying what failed. */
async function issue(/** @type {string} */ ra, /** @type {string} */ pkcs10) {
  let reply;
  try {
    reply = await fetch(`${ra}issue`, { method: 'POST', body: pkcs10, headers: { 'Content-Type': 'text/plain' } });
  } catch {
    throw new PageError('errRa', { url: ra });
  }
  /** @type {any} */
  let body = null;
  try {
    body = await reply.json();
  } catch {
    // not JSON: reported below
  }
  if (!reply.ok || !body?.subject_certificate_64) {
    throw new PageError('errRaRefused', { reason: body?.error || `HTTP ${reply.status}` });
  }
  return body;
}

async function enroll() {
  Object.assign(state, { steps: [], error: null, done: null, newAlias: null, signStatus: null });
  $('test-sign').hidden = true;
  (/** @type {HTMLTextAreaElement} */ ($('test-pkcs7'))).hidden = true;
  const button = /** @type {HTMLButtonElement} */ ($('enroll-button'));
  button.disabled = true;
  render(); // the last run's message goes at once, not only when the first step starts
  try {
    const form = readForm();
    const guid = crypto.randomUUID();
    const data64 = bytesToBase64(new TextEncoder().encode(guid));
    // E-IMZO takes a seed from the page; the agent never lets it drive key generation (its keys come from the OS).
    const seed = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0'))
      .join('');
    const fileName = freeFileName(form.pinfl, await listCertificates());
    step('stepKeypair');
    const first = await client.call('enroll_pfx_step1',
      [guid, form.alg, seed, form.subject, DEV_POLICY, fileName, data64],
      { plugin: 'pki', timeout: client.interactiveTimeout });
    step('stepIssue');
    const chain = await issue(form.ra, first.pkcs10_64);
    step('stepSave');
    const second = await client.call('enroll_pfx_step2',
      [first.guid || guid, chain.subject_certificate_64, chain.ca_certificate_64, chain.root_certificate_64, data64],
      { plugin: 'pki', timeout: client.interactiveTimeout });
    state.newAlias = second.alias;
    state.keys = await listCertificates();
    const entry = state.keys.find((k) => k.alias === second.alias);
    if (!entry) throw new PageError('errNotListed');
    state.done = { alias: second.alias, folder: `${entry.disk}${entry.path}` };
    $('test-sign').hidden = false;
  } catch (error) {
    state.error = explain(error);
  } finally {
    button.disabled = false;
    render();
  }
}

/** @param {unknown} error @returns {{key: string, values: Record<string, string>}} */
function explain(error) {
  if (error instanceof PageError) return { key: error.key, values: error.values };
  if (error instanceof AgentUnavailableError || error instanceof ConnectionLostError) {
    return { key: 'errAgent', values: {} };
  }
  if (error instanceof AgentError && error.cancelled) return { key: 'errCancelled', values: {} };
  if (error instanceof AgentError && error.status === NO_DISK) return { key: 'errNoDisk', values: {} };
  if (error instanceof AgentError) return { key: 'errAgentRefused', values: { reason: error.message } };
  return { key: 'errAgentRefused', values: { reason: String(error instanceof Error ? error.message : error) } };
}

async function signTest() {
  const entry = state.keys.find((k) => k.alias === state.newAlias);
  if (!entry) return;
  const button = /** @type {HTMLButtonElement} */ ($('sign-button'));
  button.disabled = true;
  state.signStatus = { key: 'signing', values: {} };
  render();
  try {
    const { keyId } = await client.loadKey(entry);
    const signature = await client.sign(keyId, t('testText'));
    const area = /** @type {HTMLTextAreaElement} */ ($('test-pkcs7'));
    area.value = signature.pkcs7;
    area.hidden = false;
    $('test-sign').dataset.state = 'signed';
    state.signStatus = { key: 'signed', values: { n: String(atob(signature.pkcs7).length) } };
  } catch (error) {
    state.signStatus = explain(error);
    $('test-sign').dataset.state = 'failed';
  } finally {
    button.disabled = false;
    render();
  }
}

for (const button of document.querySelectorAll('nav button[data-lang]')) {
  button.addEventListener('click', () => {
    state.lang = /** @type {DemoLanguage} */ ((/** @type {HTMLElement} */ (button)).dataset.lang);
    try {
      localStorage.setItem('eimzo-demo-lang', state.lang);
    } catch {
      // storage disabled
    }
    render();
  });
}
$('enroll-form').addEventListener('submit', (event) => {
  event.preventDefault();
  enroll();
});
$('sign-button').addEventListener('click', () => signTest());
input('ra').value = params.get('ra') || DEFAULT_RA;

Object.assign(window, { enrollDemo: { client, state } });
render();
