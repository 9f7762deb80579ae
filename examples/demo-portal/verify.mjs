/**
 * The portal demo's "verify a signed file": the person chooses a signature (.p7s) and, for a detached one, the
 * original file; the portal's backend (/demo/api/verify) posts them to the verification server's
 * /backend/pkcs7/verify/attached or /detached (E-IMZO-server's bodies: base64, or base64(document)|base64(pkcs7))
 * and the page shows each signer: name, PINFL, TIN, signing time, whether the signature and the certificate hold,
 * and the timestamp when there is one. No agent is needed here.
 */

import { bytesToBase64 } from './eimzo-agent.mjs';
import { element, failureKey, renderPage, detailOf, pickDemoLanguage, safeStorage, translator } from './portal-texts.mjs';

/** @typedef {import('./portal-texts.mjs').DemoLanguage} DemoLanguage */

/** @type {Record<DemoLanguage, Record<string, string>>} */
const TEXTS = {
  uz: {
    title: 'Namunaviy portal — Imzolangan faylni tekshirish',
    intro: "Imzo (.p7s) va kerak bo'lsa asl faylni tanlang: portal serveri imzo va sertifikatlarni tekshiradi.",
    chooseHeading: 'Fayllarni tanlang',
    signatureLabel: 'Imzo fayli (.p7s)',
    originalLabel: 'Asl fayl (ajratilgan imzo uchun)',
    originalHint: "Imzo ichida hujjat bo'lsa, bo'sh qoldiring.",
    verifyButton: 'Tekshirish',
    chooseSignature: 'Imzo faylini tanlang.',
    verifying: 'Tekshirilmoqda…',
    resultHeading: 'Natija',
    good: "Imzo haqiqiy: {n} ta imzo tekshirildi.",
    bad: "Imzo tekshiruvdan o'tmadi.",
    colSigner: 'Imzo egasi',
    colPinfl: 'JShShIR',
    colTin: 'STIR',
    colTime: 'Imzolangan vaqt',
    colSignature: 'Imzo',
    colCertificate: 'Sertifikat',
    colTimestamp: "Vaqt tamg'asi",
    yes: 'haqiqiy',
    no: 'haqiqiy emas',
    revoked: 'bekor qilingan',
    none: "yo'q",
    organisation: '{name}, STIR {tin}',
    attached: "Hujjat imzo ichida: {n} bayt.",
    detached: 'Ajratilgan imzo: asl fayl bilan tekshirildi.',
    footer: 'namunaviy portal: imzo eimzo-agent portal serverida tekshiriladi',
  },
  kaa: {
    title: 'Úlgi portal — Qol qoyılǵan fayldı tekseriw',
    intro: 'Qoltańbanı (.p7s) hám kerek bolsa dáslepki fayldı tańlań: portal serveri qoltańba hám sertifikatlardı ' +
      'tekseredi.',
    chooseHeading: 'Fayllardı tańlań',
    signatureLabel: 'Qoltańba faylı (.p7s)',
    originalLabel: 'Dáslepki fayl (ajıratılǵan qoltańba ushın)',
    originalHint: 'Qoltańba ishinde hújjet bolsa, bos qaldırıń.',
    verifyButton: 'Tekseriw',
    chooseSignature: 'Qoltańba faylın tańlań.',
    verifying: 'Tekserilmekte…',
    resultHeading: 'Nátiyje',
    good: 'Qoltańba haqıyqıy: {n} qoltańba tekserildi.',
    bad: 'Qoltańba tekseriwden ótpedi.',
    colSigner: 'Qoltańba iyesi',
    colPinfl: 'PINFL',
    colTin: 'STIR',
    colTime: 'Qol qoyılǵan waqıt',
    colSignature: 'Qoltańba',
    colCertificate: 'Sertifikat',
    colTimestamp: 'Waqıt belgisi',
    yes: 'haqıyqıy',
    no: 'haqıyqıy emes',
    revoked: 'biykarlanǵan',
    none: 'joq',
    organisation: '{name}, STIR {tin}',
    attached: 'Hújjet qoltańba ishinde: {n} bayt.',
    detached: 'Ajıratılǵan qoltańba: dáslepki fayl menen tekserildi.',
    footer: 'úlgi portal: qoltańba eimzo-agent portal serverinde tekseriledi',
  },
  ru: {
    title: 'Демонстрационный портал — Проверка подписанного файла',
    intro: 'Выберите подпись (.p7s) и, если нужно, исходный файл: сервер портала проверит подпись и сертификаты.',
    chooseHeading: 'Выберите файлы',
    signatureLabel: 'Файл подписи (.p7s)',
    originalLabel: 'Исходный файл (для отсоединённой подписи)',
    originalHint: 'Оставьте пустым, если документ внутри подписи.',
    verifyButton: 'Проверить',
    chooseSignature: 'Выберите файл подписи.',
    verifying: 'Проверка…',
    resultHeading: 'Результат',
    good: 'Подпись действительна: проверено подписей — {n}.',
    bad: 'Подпись не прошла проверку.',
    colSigner: 'Владелец подписи',
    colPinfl: 'ПИНФЛ',
    colTin: 'ИНН',
    colTime: 'Время подписания',
    colSignature: 'Подпись',
    colCertificate: 'Сертификат',
    colTimestamp: 'Штамп времени',
    yes: 'действительна',
    no: 'недействительна',
    revoked: 'отозван',
    none: 'нет',
    organisation: '{name}, ИНН {tin}',
    attached: 'Документ внутри подписи: {n} байт.',
    detached: 'Отсоединённая подпись: проверена с исходным файлом.',
    footer: 'демонстрационный портал: подпись проверяется сервером eimzo-agent portal',
  },
};

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const state = {
  /** @type {DemoLanguage} */
  lang: pickDemoLanguage(),
  /** The demo backend's reply: {status, message, detached, signers[], documentSize} @type {any} */
  result: null,
  /** @type {string} */
  progress: '',
  /** @type {{key: string, detail: string, status: number | null} | null} */
  error: null,
};

const t = translator(TEXTS, () => state.lang);

function render() {
  renderPage(t, state);
  $('login-link').setAttribute('href', `login.html${location.search}`);
  renderResult();
}

/** @param {boolean} ok */
function verdictCell(ok, bad = 'no') {
  return element('td', { class: ok ? 'ok' : 'bad' }, [t(ok ? 'yes' : bad)]);
}

function renderResult() {
  const result = state.result;
  $('result').hidden = !result;
  if (!result) return;
  const signers = /** @type {any[]} */ (result.signers || []);
  const good = result.status === 1 && signers.length > 0;
  const verdict = $('verdict');
  verdict.dataset.status = String(result.status);
  verdict.className = `verdict ${good ? 'ok' : 'bad'}`;
  verdict.textContent = good ? t('good', { n: signers.length }) : t('bad');
  const body = $('signers');
  body.replaceChildren();
  for (const signer of signers) {
    const stamp = signer.timestamp;
    const name = [element('strong', {}, [signer.name || '?'])];
    if (signer.organisationTin) {
      name.push(element('div', { class: 'small' },
        [t('organisation', { name: signer.organisation, tin: signer.organisationTin })]));
    }
    body.append(element('tr', { 'data-pinfl': signer.pinfl || '', 'data-verified': String(signer.verified) }, [
      element('td', {}, name),
      element('td', { 'data-field': 'pinfl' }, [signer.pinfl || '—']),
      element('td', { 'data-field': 'tin' }, [signer.tin || '—']),
      element('td', { 'data-field': 'signingTime' }, [signer.signingTime || '—']),
      verdictCell(signer.verified),
      signer.revoked ? verdictCell(false, 'revoked')
        : verdictCell(signer.certificateVerified && signer.certificateValid),
      stamp ? element('td', { class: stamp.verified ? 'ok' : 'bad', 'data-field': 'timestamp' },
        [`${stamp.time || '?'}${stamp.tsa ? ` · ${stamp.tsa}` : ''}`])
        : element('td', { 'data-field': 'timestamp' }, [t('none')]),
    ]));
  }
  $('document').textContent = result.detached ? t('detached')
    : result.documentSize !== null && result.documentSize !== undefined ? t('attached', { n: result.documentSize }) : '';
}

/** @param {File} file */
async function base64Of(file) {
  return bytesToBase64(new Uint8Array(await file.arrayBuffer()));
}

/**
 * A .p7s may be DER or already base64 (PEM or plain text, as some portals save it): the server wants base64 of DER.
 * @param {File} file
 */
async function signatureBase64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes[0] === 0x30) return bytesToBase64(bytes);
  const text = new TextDecoder().decode(bytes).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return text;
}

async function verify() {
  const signature = (/** @type {HTMLInputElement} */ ($('signature-file'))).files?.[0];
  const original = (/** @type {HTMLInputElement} */ ($('original-file'))).files?.[0];
  state.error = null;
  state.result = null;
  if (!signature) {
    state.error = { key: 'chooseSignature', status: null, detail: '' };
    render();
    return;
  }
  state.progress = 'verifying';
  render();
  try {
    const pkcs7 = await signatureBase64(signature);
    const body = original ? `${await base64Of(original)}|${pkcs7}` : pkcs7;
    const response = await fetch('api/verify', { method: 'POST', body, headers: { 'Content-Type': 'text/plain' },
      cache: 'no-store' });
    const reply = await response.json();
    if (!response.ok || reply.status !== 1) {
      const { key, status } = failureKey(reply, 'verify');
      state.error = { key, status, detail: detailOf(reply) };
    }
    if (Array.isArray(reply.signers) && reply.signers.length) state.result = reply;
  } catch (error) {
    state.error = { key: 'unknown', status: null, detail: detailOf(error) };
  }
  state.progress = '';
  render();
}

for (const button of document.querySelectorAll('nav button[data-lang]')) {
  button.addEventListener('click', () => {
    state.lang = /** @type {DemoLanguage} */ ((/** @type {HTMLElement} */ (button)).dataset.lang);
    safeStorage(state.lang);
    render();
  });
}
$('verify-button').addEventListener('click', () => verify());

Object.assign(window, { demo: { state } });

render();
document.body.dataset.ready = 'true';
