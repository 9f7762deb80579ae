/**
 * The eimzo-agent demo portal: lists the keys the agent sees, signs text or a file (attached or detached),
 * shows the PKCS#7 and who signed it, and what diagnose() says about the agent. Uzbek, Karakalpak and Russian.
 *
 * Served by the agent at http://127.0.0.1:64646/demo/ (`eimzo-agent serve --demo`); it talks to the agent that
 * served it. Elsewhere add `?agent=ws://127.0.0.1:64646/service/cryptapi` to the address to choose an agent.
 */

import { AgentError, AgentUnavailableError, EimzoClient, base64ToBytes } from '/eimzo-agent.mjs';
import { decodeSignedData, formatName } from './der.mjs';

/** @typedef {'uz' | 'kaa' | 'ru'} DemoLanguage */

/** @type {Record<DemoLanguage, Record<string, string>>} */
const TEXTS = {
  uz: {
    title: 'eimzo-agent — namunaviy portal',
    enrollLink: 'Kalitni onlayn olish →',
    intro: "Mahalliy imzolash agenti bilan ishlash namunasi: kalitlar ro'yxati, matn va faylni imzolash, imzo tarkibi.",
    agentHeading: 'Agent holati',
    checking: 'Tekshirilmoqda…',
    checkAgain: 'Qayta tekshirish',
    agent: 'Agent',
    keysHeading: 'Kalitlar',
    refresh: 'Yangilash',
    colOwner: 'Egasi',
    colIds: 'JShShIR / STIR',
    orgTin: 'STIR',
    colOrg: 'Tashkilot',
    colValid: 'Amal qilish muddati',
    colType: 'Turi',
    individual: 'Jismoniy shaxs',
    legal: 'Yuridik shaxs',
    expired: "Muddati o'tgan",
    token: 'Token',
    noKeys: 'Kalitlar topilmadi. Fleshkani ulang yoki agentni --demo bilan ishga tushiring.',
    demoHint: "Namunaviy kalitlar paroli agent konsolida ko'rsatilgan (eimzo-agent serve --demo).",
    signHeading: 'Imzolash',
    modeLabel: 'Imzo turi',
    attached: 'Biriktirilgan (hujjat imzo ichida)',
    detached: 'Ajratilgan (hujjat alohida)',
    textLabel: 'Matn',
    sampleText: "Shartnoma № 17: ijara to'lovi 1 200 000 so'm.",
    signText: 'Matnni imzolash',
    fileLabel: 'Fayl',
    signFile: 'Faylni imzolash',
    chooseKey: 'Avval kalitni tanlang.',
    chooseFile: 'Faylni tanlang.',
    signing: 'Imzolanmoqda… Parolni agent oynasiga kiriting.',
    signed: 'Imzolandi.',
    cancelled: 'Parol kiritish bekor qilindi.',
    resultHeading: 'Imzo (PKCS#7, Base64)',
    download: 'Yuklab olish (.p7s)',
    signerHeading: 'Imzo tarkibi',
    subject: 'Sertifikat egasi',
    serial: 'Sertifikat seriya raqami',
    issuer: 'Sertifikat beruvchi',
    signingTime: 'Imzolangan vaqt',
    digest: 'Xesh algoritmi',
    signatureAlg: 'Imzo algoritmi',
    document: 'Hujjat',
    inside: 'imzo ichida, {n} bayt',
    outside: "imzoda yo'q (ajratilgan imzo)",
  },
  kaa: {
    title: 'eimzo-agent — úlgi portal',
    enrollLink: 'Giltti onlayn alıw →',
    intro: 'Jergilikli qol qoyıw agenti menen islew úlgisi: giltler dizimi, tekst hám faylǵa qol qoyıw, ' +
      'qoltańba quramı.',
    agentHeading: 'Agent jaǵdayı',
    checking: 'Tekserilmekte…',
    checkAgain: 'Qaytadan tekseriw',
    agent: 'Agent',
    keysHeading: 'Giltler',
    refresh: 'Jańalaw',
    colOwner: 'Iyesi',
    colIds: 'PINFL / STIR',
    orgTin: 'STIR',
    colOrg: 'Shólkem',
    colValid: 'Ámel etiw múddeti',
    colType: 'Túri',
    individual: 'Fizikalıq tulǵa',
    legal: 'Yuridikalıq tulǵa',
    expired: 'Múddeti ótken',
    token: 'Token',
    noKeys: 'Giltler tabılmadı. Fleshkanı jalǵań yamasa agentti --demo menen iske túsiriń.',
    demoHint: 'Úlgi giltlerdiń parolı agent konsolinde kórsetilgen (eimzo-agent serve --demo).',
    signHeading: 'Qol qoyıw',
    modeLabel: 'Qoltańba túri',
    attached: 'Biriktirilgen (hújjet qoltańba ishinde)',
    detached: 'Ajıratılǵan (hújjet bólek)',
    textLabel: 'Tekst',
    sampleText: 'Shártnama № 17: ijara tólemi 1 200 000 sum.',
    signText: 'Tekstke qol qoyıw',
    fileLabel: 'Fayl',
    signFile: 'Faylǵa qol qoyıw',
    chooseKey: 'Aldın giltti tańlań.',
    chooseFile: 'Fayldı tańlań.',
    signing: 'Qol qoyılmaqta… Paroldı agent aynasına kirgiziń.',
    signed: 'Qol qoyıldı.',
    cancelled: 'Parol kirgiziw biykarlandı.',
    resultHeading: 'Qoltańba (PKCS#7, Base64)',
    download: 'Júklep alıw (.p7s)',
    signerHeading: 'Qoltańba quramı',
    subject: 'Sertifikat iyesi',
    serial: 'Sertifikat seriya nomeri',
    issuer: 'Sertifikat beriwshi',
    signingTime: 'Qol qoyılǵan waqıt',
    digest: 'Xesh algoritmi',
    signatureAlg: 'Qoltańba algoritmi',
    document: 'Hújjet',
    inside: 'qoltańba ishinde, {n} bayt',
    outside: 'qoltańbada joq (ajıratılǵan qoltańba)',
  },
  ru: {
    title: 'eimzo-agent — демонстрационный портал',
    enrollLink: 'Получить ключ онлайн →',
    intro: 'Пример работы с локальным агентом подписи: список ключей, подпись текста и файла, состав подписи.',
    agentHeading: 'Состояние агента',
    checking: 'Проверка…',
    checkAgain: 'Проверить снова',
    agent: 'Агент',
    keysHeading: 'Ключи',
    refresh: 'Обновить',
    colOwner: 'Владелец',
    colIds: 'ПИНФЛ / ИНН',
    orgTin: 'ИНН',
    colOrg: 'Организация',
    colValid: 'Срок действия',
    colType: 'Тип',
    individual: 'Физическое лицо',
    legal: 'Юридическое лицо',
    expired: 'Срок истёк',
    token: 'Токен',
    noKeys: 'Ключи не найдены. Подключите флешку или запустите агент с --demo.',
    demoHint: 'Пароль демонстрационных ключей показан в консоли агента (eimzo-agent serve --demo).',
    signHeading: 'Подписание',
    modeLabel: 'Тип подписи',
    attached: 'Присоединённая (документ внутри подписи)',
    detached: 'Отсоединённая (документ отдельно)',
    textLabel: 'Текст',
    sampleText: 'Договор № 17: арендная плата 1 200 000 сум.',
    signText: 'Подписать текст',
    fileLabel: 'Файл',
    signFile: 'Подписать файл',
    chooseKey: 'Сначала выберите ключ.',
    chooseFile: 'Выберите файл.',
    signing: 'Подписание… Введите пароль в окне агента.',
    signed: 'Подписано.',
    cancelled: 'Ввод пароля отменён.',
    resultHeading: 'Подпись (PKCS#7, Base64)',
    download: 'Скачать (.p7s)',
    signerHeading: 'Состав подписи',
    subject: 'Владелец сертификата',
    serial: 'Серийный номер сертификата',
    issuer: 'Издатель сертификата',
    signingTime: 'Время подписания',
    digest: 'Алгоритм хеширования',
    signatureAlg: 'Алгоритм подписи',
    document: 'Документ',
    inside: 'внутри подписи, {n} байт',
    outside: 'не входит в подпись (отсоединённая)',
  },
};

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const params = new URLSearchParams(location.search);
const servedByAgent = /^(127\.0\.0\.1|localhost)$/.test(location.hostname) && location.pathname.startsWith('/demo');
const agentUrl = params.get('agent') ||
  (servedByAgent ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/service/cryptapi` : undefined);

/** The client, also reachable as `window.demo.client` from the browser console (and the tests). */
const client = new EimzoClient({ url: agentUrl });

const state = {
  /** @type {DemoLanguage} */
  lang: pickDemoLanguage(),
  /** @type {import('/eimzo-agent.mjs').KeyInfo[]} */
  keys: [],
  /** @type {import('/eimzo-agent.mjs').KeyInfo | null} */
  selected: null,
  /** keyId of each loaded key, by alias @type {Map<string, string>} */
  loaded: new Map(),
  /** @type {import('/eimzo-agent.mjs').Diagnosis | null} */
  diagnosis: null,
  /** @type {{pkcs7: string, kind: string, mode: string} | null} */
  result: null,
  /** key of the last progress text @type {string} */
  progress: '',
};

/** @returns {DemoLanguage} */
function pickDemoLanguage() {
  const wanted = params.get('lang') || safeStorage('get') || navigator.language || 'uz';
  const primary = wanted.toLowerCase().split(/[-_]/)[0];
  return primary === 'ru' || primary === 'kaa' ? primary : 'uz';
}

/** @param {'get' | 'set'} op @param {string} [value] @returns {string | null} */
function safeStorage(op, value) {
  try {
    if (op === 'set') localStorage.setItem('eimzo-demo-lang', String(value));
    return localStorage.getItem('eimzo-demo-lang');
  } catch {
    return null; // storage disabled
  }
}

/** @param {string} key @param {Record<string, string | number>} [values] */
function t(key, values = {}) {
  const text = TEXTS[state.lang][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

function renderTexts() {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  $('enroll-link').setAttribute('href', `enroll.html?lang=${state.lang}`);
  for (const element of document.querySelectorAll('[data-i18n]')) {
    element.textContent = t(/** @type {string} */ ((/** @type {HTMLElement} */ (element)).dataset.i18n));
  }
  for (const button of document.querySelectorAll('nav button[data-lang]')) {
    button.setAttribute('aria-pressed', String((/** @type {HTMLElement} */ (button)).dataset.lang === state.lang));
  }
  const text = /** @type {HTMLTextAreaElement} */ ($('text'));
  if (!text.dataset.edited) text.value = t('sampleText');
  renderDiagnosis();
  renderKeys();
  renderResult();
  $('progress').textContent = state.progress ? t(state.progress) : '';
}

/** @param {Date | null} date */
function day(date) {
  if (!date) return '?';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${pad(date.getDate())}.${pad(date.getMonth() + 1)}.${date.getFullYear()}`;
}

/** @param {Date | null} date */
function moment(date) {
  if (!date) return '?';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${day(date)} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
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

// --- agent status ---

async function runDiagnosis() {
  $('diagnosis').dataset.status = 'pending';
  $('diagnosis-message').textContent = t('checking');
  state.diagnosis = await client.diagnose({ lang: state.lang });
  renderDiagnosis();
  return state.diagnosis;
}

function renderDiagnosis() {
  const diagnosis = state.diagnosis;
  if (!diagnosis) return;
  $('diagnosis').dataset.status = diagnosis.status;
  $('diagnosis-message').textContent = diagnosis.messages[state.lang];
  const version = diagnosis.version;
  $('agent-version').textContent = version
    ? `${t('agent')}: ${version.agent}${version.agentVersion ? ' ' + version.agentVersion : ''} ` +
      `(E-IMZO ${version.text}) · ${client.url}`
    : client.url;
}

// --- keys ---

async function loadKeys() {
  $('keys-body').dataset.state = 'pending';
  try {
    const byName = (/** @type {import('/eimzo-agent.mjs').KeyInfo} */ k) => (k.cn || k.alias).toUpperCase();
    state.keys = (await client.listKeys())
      .sort((a, b) => Number(a.expired) - Number(b.expired) || byName(a).localeCompare(byName(b)));
    if (state.selected && !state.keys.some((k) => k.alias === state.selected?.alias)) state.selected = null;
    if (!state.selected) state.selected = state.keys.find((k) => !k.expired) || null;
  } catch (error) {
    state.keys = [];
    showError(error);
  }
  renderKeys();
  $('keys-body').dataset.state = 'ready';
}

function renderKeys() {
  const body = $('keys-body');
  body.replaceChildren();
  if (state.keys.length === 0) {
    body.append(element('tr', {}, [element('td', { colspan: '6', class: 'muted' }, [t('noKeys')])]));
    return;
  }
  for (const [index, key] of state.keys.entries()) {
    const id = `key-${index}`;
    const radio = element('input', { type: 'radio', name: 'key', id, value: key.alias });
    const input = /** @type {HTMLInputElement} */ (radio);
    input.checked = state.selected?.alias === key.alias;
    input.disabled = key.expired;
    const ids = [key.pinfl, key.tin].filter(Boolean).join(' / ') || '—';
    // Aliases are lower-case (Java lower-cases them); certificates and E-IMZO's own client show upper case.
    const upper = (/** @type {string | null} */ value) => (value || '').toUpperCase();
    const organisation = key.organisation
      ? [upper(key.organisation), element('div', { class: 'small' }, [key.orgTin ? `${t('orgTin')} ${key.orgTin}` : ''])]
      : ['—'];
    const tags = [element('span', { class: `tag ${key.legalEntity ? 'legal' : 'individual'}` },
      [t(key.legalEntity ? 'legal' : 'individual')])];
    if (key.type === 'token') tags.push(element('span', { class: 'tag' }, [t('token')]));
    if (key.expired) tags.push(element('span', { class: 'tag expired' }, [t('expired')]));
    const row = element('tr', {
      'data-serial': key.serial || '',
      'data-type': key.legalEntity ? 'legal' : 'individual',
      'data-expired': String(key.expired),
      class: [key.expired ? 'expired' : '', input.checked ? 'selected' : ''].join(' ').trim(),
    }, [
      element('td', {}, [radio]),
      element('td', {}, [element('label', { for: id }, [upper(key.cn) || key.alias]),
        element('div', { class: 'small' }, [upper(key.title)])]),
      element('td', {}, [ids]),
      element('td', {}, organisation),
      element('td', { class: 'validity' }, [`${day(key.validFrom)} – ${day(key.validTo)}`]),
      element('td', {}, tags),
    ]);
    row.addEventListener('click', () => {
      if (key.expired) return;
      state.selected = key;
      renderKeys();
    });
    body.append(row);
  }
}

// --- signing ---

/** @returns {'attached' | 'detached'} */
function mode() {
  const checked = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name="mode"]:checked'));
  return checked?.value === 'detached' ? 'detached' : 'attached';
}

/** @param {import('/eimzo-agent.mjs').KeyInfo} key */
async function keyIdFor(key) {
  let keyId = state.loaded.get(key.alias);
  if (!keyId) {
    keyId = (await client.loadKey(key)).keyId;
    state.loaded.set(key.alias, keyId);
  }
  return keyId;
}

/**
 * @param {'text' | 'file'} kind
 * @param {string | Blob} data
 */
async function sign(kind, data) {
  hideError();
  const key = state.selected;
  if (!key) {
    showError(new Error(t('chooseKey')));
    return;
  }
  const detached = mode() === 'detached';
  setBusy(true, 'signing');
  try {
    let signature;
    try {
      signature = await client.sign(await keyIdFor(key), data, { detached });
    } catch (error) {
      if (!(error instanceof AgentError && error.code === 'KEY_NOT_LOADED')) throw error;
      state.loaded.delete(key.alias); // the agent restarted or forgot the key: load it again
      signature = await client.sign(await keyIdFor(key), data, { detached });
    }
    state.result = { pkcs7: signature.pkcs7, kind, mode: detached ? 'detached' : 'attached' };
    state.progress = 'signed';
    renderResult();
  } catch (error) {
    state.progress = '';
    showError(error);
  } finally {
    setBusy(false);
  }
}

/** @param {boolean} busy @param {string} [progress] */
function setBusy(busy, progress) {
  for (const id of ['sign-text', 'sign-file']) (/** @type {HTMLButtonElement} */ ($(id))).disabled = busy;
  if (progress) state.progress = progress;
  $('progress').textContent = state.progress ? t(state.progress) : '';
}

function renderResult() {
  const section = $('result');
  const result = state.result;
  if (!result) return;
  section.hidden = false;
  section.dataset.kind = result.kind;
  section.dataset.mode = result.mode;
  (/** @type {HTMLTextAreaElement} */ ($('pkcs7'))).value = result.pkcs7;
  const bytes = base64ToBytes(result.pkcs7);
  const link = /** @type {HTMLAnchorElement} */ ($('download'));
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([bytes], { type: 'application/pkcs7-signature' }));
  const list = $('signer');
  list.replaceChildren();
  const add = (/** @type {string} */ label, /** @type {string} */ value, /** @type {string} */ field) => {
    list.append(element('dt', {}, [t(label)]), element('dd', { 'data-field': field }, [value]));
  };
  try {
    const info = decodeSignedData(bytes);
    for (const signer of info.signers) {
      add('subject', signer.certificate ? formatName(signer.certificate.subject) : '?', 'subject');
      add('serial', signer.serial || '?', 'serial');
      add('issuer', formatName(signer.issuer), 'issuer');
      add('signingTime', moment(signer.signingTime), 'signingTime');
      add('digest', signer.digestAlgorithm, 'digest');
      add('signatureAlg', signer.signatureAlgorithm, 'signatureAlgorithm');
    }
    add('document', info.attached ? t('inside', { n: info.content?.length ?? 0 }) : t('outside'), 'content');
    section.dataset.state = 'ready';
  } catch (error) {
    list.append(element('dd', { class: 'error' }, [String(error)]));
    section.dataset.state = 'undecodable';
  }
}

/** @param {unknown} error */
function showError(error) {
  const box = $('error');
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof AgentError && error.cancelled) text = t('cancelled');
  box.textContent = text;
  box.dataset.code = error instanceof AgentError || error instanceof AgentUnavailableError ? error.code : 'ERROR';
  box.hidden = false;
  if (error instanceof AgentUnavailableError) runDiagnosis();
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// --- wiring ---

for (const button of document.querySelectorAll('nav button[data-lang]')) {
  button.addEventListener('click', () => {
    state.lang = /** @type {DemoLanguage} */ ((/** @type {HTMLElement} */ (button)).dataset.lang);
    safeStorage('set', state.lang);
    renderTexts();
  });
}
$('text').addEventListener('input', () => {
  $('text').dataset.edited = 'yes';
});
$('diagnose-button').addEventListener('click', async () => {
  const diagnosis = await runDiagnosis();
  if (diagnosis.ok) await loadKeys();
});
$('refresh-keys').addEventListener('click', () => loadKeys());
$('sign-text').addEventListener('click', () => sign('text', (/** @type {HTMLTextAreaElement} */ ($('text'))).value));
$('sign-file').addEventListener('click', () => {
  const file = (/** @type {HTMLInputElement} */ ($('file'))).files?.[0];
  if (!file) {
    showError(new Error(t('chooseFile')));
    return;
  }
  sign('file', file);
});

Object.assign(window, { demo: { client, state } });

renderTexts();
runDiagnosis().then((diagnosis) => (diagnosis.ok ? loadKeys() : undefined));
