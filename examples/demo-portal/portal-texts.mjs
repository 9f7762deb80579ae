/**
 * What the portal-side demo pages (login.html, verify.html; served by `eimzo-agent portal serve --demo`) share: the
 * language choice, the agent client, and the texts for every status the verification server answers.
 * Uzbek (Latin) first, Karakalpak (Latin), Russian.
 */

import { AgentError, AgentUnavailableError, EimzoClient, PortalError } from './eimzo-agent.mjs';

/** @typedef {'uz' | 'kaa' | 'ru'} DemoLanguage */

export const LANGUAGES = /** @type {const} */ (['uz', 'kaa', 'ru']);

/** Texts both pages use, and the server's statuses: `auth` for /backend/auth, `verify` for the verify endpoints. */
export const COMMON = {
  uz: {
    portal: 'Namunaviy portal',
    loginLink: 'Kirish',
    verifyLink: 'Imzolangan faylni tekshirish',
    agentMissing: "Imzolash agenti topilmadi. E-IMZO yoki eimzo-agent ishga tushirilganini tekshiring.",
    cancelled: 'Parol kiritish bekor qilindi.',
    backend: "Tekshirish serveri javob bermadi. Birozdan keyin qayta urinib ko'ring.",
    unknown: 'Kutilmagan xato: {detail}',
    'auth-1': "Sertifikat holatini tekshirib bo'lmadi. Birozdan keyin qayta urinib ko'ring.",
    'auth-5': "Imzo vaqti noto'g'ri. Kompyuteringizdagi sana va vaqtni tekshiring.",
    'auth-10': 'Imzo haqiqiy emas.',
    'auth-11': "Sertifikat haqiqiy emas: muddati o'tgan, bekor qilingan yoki ishonchsiz markaz bergan.",
    'auth-12': 'Imzolangan paytda sertifikat amal qilmagan.',
    'auth-20': "Kirish so'rovi topilmadi yoki muddati o'tgan. Qayta urinib ko'ring.",
    'verify-1': "Sertifikat holatini tekshirib bo'lmadi.",
    'verify-5': "Imzo vaqti noto'g'ri.",
    'verify-10': "Imzo haqiqiy emas yoki hujjat o'zgartirilgan.",
    'verify-11': "Sertifikat haqiqiy emas: muddati o'tgan, bekor qilingan yoki ishonchsiz markaz bergan.",
    'verify-12': 'Imzolangan paytda sertifikat amal qilmagan.',
    'verify-20': "Vaqt tamg'asi beruvchining sertifikat holatini tekshirib bo'lmadi.",
    'verify-21': "Vaqt tamg'asi haqiqiy emas.",
    'verify-22': "Vaqt tamg'asi beruvchining sertifikati haqiqiy emas.",
    'verify-23': "Vaqt tamg'asi paytida uning beruvchisining sertifikati amal qilmagan.",
  },
  kaa: {
    portal: 'Úlgi portal',
    loginLink: 'Kiriw',
    verifyLink: 'Qol qoyılǵan fayldı tekseriw',
    agentMissing: 'Qol qoyıw agenti tabılmadı. E-IMZO yamasa eimzo-agent iske túsirilgenin tekseriń.',
    cancelled: 'Parol kirgiziw biykarlandı.',
    backend: 'Tekseriw serveri juwap bermedi. Birazdan keyin qaytadan urınıp kóriń.',
    unknown: 'Kútilmegen qáte: {detail}',
    'auth-1': 'Sertifikat jaǵdayın tekseriw múmkin bolmadı. Birazdan keyin qaytadan urınıp kóriń.',
    'auth-5': 'Qol qoyılǵan waqıt nadurıs. Kompyuterińizdegi sáne hám waqıttı tekseriń.',
    'auth-10': 'Qoltańba haqıyqıy emes.',
    'auth-11': 'Sertifikat haqıyqıy emes: múddeti ótken, biykarlanǵan yamasa isenimsiz oray bergen.',
    'auth-12': 'Qol qoyılǵan waqıtta sertifikat ámel etpegen.',
    'auth-20': 'Kiriw sorawı tabılmadı yamasa múddeti ótken. Qaytadan urınıp kóriń.',
    'verify-1': 'Sertifikat jaǵdayın tekseriw múmkin bolmadı.',
    'verify-5': 'Qol qoyılǵan waqıt nadurıs.',
    'verify-10': 'Qoltańba haqıyqıy emes yamasa hújjet ózgertilgen.',
    'verify-11': 'Sertifikat haqıyqıy emes: múddeti ótken, biykarlanǵan yamasa isenimsiz oray bergen.',
    'verify-12': 'Qol qoyılǵan waqıtta sertifikat ámel etpegen.',
    'verify-20': 'Waqıt belgisin beriwshiniń sertifikat jaǵdayın tekseriw múmkin bolmadı.',
    'verify-21': 'Waqıt belgisi haqıyqıy emes.',
    'verify-22': 'Waqıt belgisin beriwshiniń sertifikatı haqıyqıy emes.',
    'verify-23': 'Waqıt belgisi qoyılǵan waqıtta onı beriwshiniń sertifikatı ámel etpegen.',
  },
  ru: {
    portal: 'Демонстрационный портал',
    loginLink: 'Вход',
    verifyLink: 'Проверить подписанный файл',
    agentMissing: 'Агент подписи не найден. Проверьте, что E-IMZO или eimzo-agent запущен.',
    cancelled: 'Ввод пароля отменён.',
    backend: 'Сервер проверки не ответил. Попробуйте немного позже.',
    unknown: 'Непредвиденная ошибка: {detail}',
    'auth-1': 'Не удалось проверить статус сертификата. Попробуйте немного позже.',
    'auth-5': 'Неверное время подписи. Проверьте дату и время на вашем компьютере.',
    'auth-10': 'Подпись недействительна.',
    'auth-11': 'Сертификат недействителен: истёк, отозван или выдан недоверенным центром.',
    'auth-12': 'Сертификат не действовал в момент подписания.',
    'auth-20': 'Запрос на вход не найден или устарел. Попробуйте ещё раз.',
    'verify-1': 'Не удалось проверить статус сертификата.',
    'verify-5': 'Неверное время подписи.',
    'verify-10': 'Подпись недействительна или документ изменён.',
    'verify-11': 'Сертификат недействителен: истёк, отозван или выдан недоверенным центром.',
    'verify-12': 'Сертификат не действовал в момент подписания.',
    'verify-20': 'Не удалось проверить статус сертификата службы штампов времени.',
    'verify-21': 'Штамп времени недействителен.',
    'verify-22': 'Сертификат службы штампов времени недействителен.',
    'verify-23': 'Сертификат службы штампов времени не действовал в момент штампа.',
  },
};

const params = new URLSearchParams(location.search);

/**
 * The agent client. The agent's usual address, or `?agent=ws://127.0.0.1:PORT/service/cryptapi` to choose one.
 * Also `window.demo.client` in the browser console.
 */
export const client = new EimzoClient({ url: params.get('agent') || undefined });

/** @returns {DemoLanguage} */
export function pickDemoLanguage() {
  const wanted = params.get('lang') || safeStorage() || navigator.language || 'uz';
  const primary = wanted.toLowerCase().split(/[-_]/)[0];
  return primary === 'ru' || primary === 'kaa' ? primary : 'uz';
}

/** @param {string} [value] @returns {string | null} */
export function safeStorage(value) {
  try {
    if (value) localStorage.setItem('eimzo-demo-lang', value);
    return localStorage.getItem('eimzo-demo-lang');
  } catch {
    return null; // storage disabled
  }
}

/**
 * A page's text function over its own texts and the common ones.
 * @param {Record<DemoLanguage, Record<string, string>>} texts
 * @param {() => DemoLanguage} lang
 */
export function translator(texts, lang) {
  return (/** @type {string} */ key, /** @type {Record<string, string | number>} */ values = {}) => {
    const text = texts[lang()][key] ?? COMMON[lang()][key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
  };
}

/**
 * The message key for a failure: the server's status in its context (`auth` or `verify`), or what went wrong on
 * the way (agent missing, password cancelled, server unreachable). Unknown cases get 'unknown'.
 * @param {unknown} error a thrown error, or a reply `{status, error}` from the demo backend
 * @param {'auth' | 'verify'} context
 * @returns {{key: string, status: number | null}}
 */
export function failureKey(error, context) {
  const known = (/** @type {number | undefined | null} */ status) =>
    typeof status === 'number' && COMMON.uz[`${context}${status}`] !== undefined;
  if (error instanceof PortalError) {
    if (known(error.status)) return { key: `${context}${error.status}`, status: error.status ?? null };
    return { key: error.reply?.error === 'backend' || (error.httpStatus ?? 0) >= 500 ? 'backend' : 'unknown',
      status: error.status ?? null };
  }
  if (error instanceof AgentError && error.cancelled) return { key: 'cancelled', status: null };
  if (error instanceof AgentUnavailableError) return { key: 'agentMissing', status: null };
  const reply = /** @type {{status?: number | null, error?: string} | null} */ (
    error && typeof error === 'object' && !(error instanceof Error) ? error : null);
  if (reply && known(reply.status)) return { key: `${context}${reply.status}`, status: reply.status ?? null };
  if (reply?.error === 'backend') return { key: 'backend', status: null };
  return { key: 'unknown', status: reply?.status ?? null };
}

/** @param {unknown} error */
export function detailOf(error) {
  if (error instanceof Error) return error.message;
  const reply = /** @type {{message?: string}} */ (error);
  return reply?.message || JSON.stringify(error);
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {Array<Node | string>} [content]
 */
export function element(tag, attributes = {}, content = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...content);
  return node;
}

/**
 * What both portal demo pages draw alike: the page language and title, every `data-i18n` text, the language
 * buttons, the progress line and the error box (its status and kind as data attributes, for the tests).
 * @param {(key: string, params?: Record<string, string>) => string} t
 * @param {{lang: string, progress: string, error: {key: string, detail: string, status: number | null} | null}} state
 */
export function renderPage(t, state) {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) {
    node.textContent = t(/** @type {string} */ ((/** @type {HTMLElement} */ (node)).dataset.i18n));
  }
  for (const button of document.querySelectorAll('nav button[data-lang]')) {
    button.setAttribute('aria-pressed', String((/** @type {HTMLElement} */ (button)).dataset.lang === state.lang));
  }
  const progress = /** @type {HTMLElement} */ (document.getElementById('progress'));
  progress.textContent = state.progress ? t(state.progress) : '';
  const error = /** @type {HTMLElement} */ (document.getElementById('error'));
  error.hidden = !state.error;
  error.textContent = state.error ? t(state.error.key, { detail: state.error.detail }) : '';
  error.dataset.status = state.error?.status === null || !state.error ? '' : String(state.error.status);
  error.dataset.kind = state.error?.key || '';
}
