/**
 * eimzo-agent browser client: lists ERI keys and signs documents through the local signing agent
 * (eimzo-agent, or the E-IMZO agent it is wire-compatible with). Dependency-free ES2020.
 *
 * This file is the source, and the npm package's ES module. `eimzo-agent.js` (classic script / UMD, global
 * `EimzoAgent`) is generated from it by rollup (`node browser_js/build.mjs`); do not edit the generated copy.
 * Guide: docs/js-client.md; the package: browser_js/README.md.
 *
 * @module eimzo-agent
 */

/** Version of this client (not of the agent). */
export const CLIENT_VERSION = '0.1.0';

/** Where the agent listens when the page is served over plain http. */
export const DEFAULT_WS_URL = 'ws://127.0.0.1:64646/service/cryptapi';

/** Where the agent listens when the page is served over https (a browser blocks ws:// from https pages). */
export const DEFAULT_WSS_URL = 'wss://127.0.0.1:64443/service/cryptapi';

/** The oldest agent this client works with: E-IMZO 3.36 introduced the pfx plugin ("NEW_API"). */
export const MIN_VERSION = Object.freeze({ major: 3, minor: 36 });

/**
 * API keys the E-IMZO vendor publishes for pages served from the user's own machine, as E-IMZO's `apikey` call
 * takes them: a flat [domain, key, domain, key, …] list. Portals use the key issued for their own domain.
 * The vendor's key for the pseudo-domain "null" is left out on purpose: any site can make a "null" page (a
 * sandboxed iframe), so a key for it proves nothing; eimzo-agent asks the person about such pages instead.
 */
export const PUBLISHED_API_KEYS = Object.freeze([
  'localhost',
  '96D0C1491615C82B9A54D9989779DF825B690748224C2B04F500F370D51827CE' +
    '2644D8D4A82C18184D73AB8530BB8ED537269603F61DB0D03D2104ABF789970B',
  '127.0.0.1',
  'A7BCFA5D490B351BE0754130DF03A068F855DB4333D43921125B9CF2670EF6A4' +
    '0370C646B90401955E1F7BC9CDBF59CE0B2C5467D820BE189C845D0B79CFC96F',
]);

/** E-IMZO status codes a page may want to react to (replies carry `status`; 1 = OK). */
export const Status = Object.freeze({
  OK: 1,
  FUNCTION_NOT_FOUND: 0,
  KEY_NOT_FOUND: -1010,
  KEY_PAIR_NOT_FOUND: -1011,
  YTKS_KEY_ID_NOT_FOUND: -1013,
  PFX_KEY_ID_NOT_FOUND: -1014,
  KEY_ID_MISMATCH: -1015,
  APIKEY_INVALID: -1020,
  DOMAIN_UNKNOWN: -1021,
  DOMAIN_NOT_ALLOWED: -1022,
  PASSWORD_CANCELLED: -5000,
  OPERATION_CANCELLED: -5001,
  CANCELLED_BY_USER: -5002,
  OTHER: -9999,
});

const OID_PINFL = '1.2.860.3.16.1.2';
const OID_ORG_TIN = '1.2.860.3.16.1.1';

/** Functions that wait for the user (password or PIN dialog): they get `interactiveTimeout`. */
const INTERACTIVE = new Set(['create_pkcs7', 'append_pkcs7_attached', 'verify_password', 'change_password']);

// --- errors -------------------------------------------------------------------------------------------------------

/** Base class of every error this client throws. `code` is a stable string to branch on. */
export class EimzoError extends Error {
  /**
   * @param {string} message
   * @param {{code?: string, status?: number, reason?: string, cause?: unknown}} [details]
   */
  constructor(message, details = {}) {
    super(message);
    this.name = 'EimzoError';
    /** @type {string} */
    this.code = details.code || 'ERROR';
    /** E-IMZO's `status` when the agent answered (negative numbers are errors, 0 = function not found). */
    this.status = details.status;
    /** E-IMZO's `reason` text when the agent answered. */
    this.reason = details.reason;
    if (details.cause !== undefined) this.cause = details.cause;
  }
}

/** No connection to the agent could be made (not running, blocked, untrusted certificate…): see `diagnose()`. */
export class AgentUnavailableError extends EimzoError {
  /** @param {string} message @param {{closeCode?: number, url?: string}} [details] */
  constructor(message, details = {}) {
    super(message, { code: 'UNAVAILABLE' });
    this.name = 'AgentUnavailableError';
    this.closeCode = details.closeCode;
    this.url = details.url;
  }
}

/** The connection broke after it was made, before the agent answered. */
export class ConnectionLostError extends EimzoError {
  /** @param {string} message @param {{closeCode?: number}} [details] */
  constructor(message, details = {}) {
    super(message, { code: 'CONNECTION_LOST' });
    this.name = 'ConnectionLostError';
    this.closeCode = details.closeCode;
  }
}

/** The agent did not answer in time. */
export class RequestTimeoutError extends EimzoError {
  /** @param {string} message @param {number} timeout milliseconds */
  constructor(message, timeout) {
    super(message, { code: 'TIMEOUT' });
    this.name = 'RequestTimeoutError';
    this.timeout = timeout;
  }
}

/** The request was given up: its AbortSignal fired or the client was closed. */
export class AbortedError extends EimzoError {
  /** @param {string} message */
  constructor(message) {
    super(message, { code: 'ABORTED' });
    this.name = 'AbortedError';
  }
}

/** The agent sent something that is not an E-IMZO reply. */
export class ProtocolError extends EimzoError {
  /** @param {string} message */
  constructor(message) {
    super(message, { code: 'BAD_REPLY' });
    this.name = 'ProtocolError';
  }
}

/**
 * The agent answered `success: false`. `code` sums up the status: FUNCTION_NOT_FOUND, CANCELLED (the user closed
 * the password dialog), DOMAIN_NOT_ALLOWED (install the site's API key), KEY_NOT_LOADED (load the key again),
 * WRONG_PASSWORD (three wrong passwords: E-IMZO's -5000 with BadPaddingException in `reason`), AGENT_ERROR (anything else; read `reason`).
 */
export class AgentError extends EimzoError {
  /** @param {number | undefined} status @param {string | undefined} reason */
  constructor(status, reason) {
    super(reason || `the agent refused the request (status ${status})`, {
      code: codeForStatus(status, reason),
      status,
      reason,
    });
    this.name = 'AgentError';
  }

  /** True when the user cancelled the password or PIN question. */
  get cancelled() {
    return this.code === 'CANCELLED';
  }
}

/** The agent is older than the page needs. */
export class VersionError extends EimzoError {
  /** @param {VersionInfo} installed @param {{major: number, minor: number}} required */
  constructor(installed, required) {
    super(`agent version ${installed.text} is too old; ${required.major}.${required.minor} or newer is required`, {
      code: 'VERSION_TOO_OLD',
    });
    this.name = 'VersionError';
    this.installed = installed;
    this.required = required;
  }
}

/**
 * The portal's server (E-IMZO-server or eimzo-agent's, or the portal's own backend in front of it) could not be
 * reached or did not say yes, in `login()` or `sign({timestampUrl})`. `status` and `reason` are the server's JSON
 * `status` and `message` when it answered one (e.g. -20: the challenge expired or was used: log in again).
 */
export class PortalError extends EimzoError {
  /**
   * @param {string} message
   * @param {{url?: string, httpStatus?: number, status?: number, reason?: string, reply?: any, cause?: unknown}}
   *   [details]
   */
  constructor(message, details = {}) {
    super(message, { code: 'PORTAL_ERROR', status: details.status, reason: details.reason, cause: details.cause });
    this.name = 'PortalError';
    /** The URL that failed. */
    this.url = details.url;
    /** The HTTP status when the server answered. */
    this.httpStatus = details.httpStatus;
    /** The server's parsed JSON reply, when it sent one. */
    this.reply = details.reply;
  }
}

/**
 * The `code` an AgentError gets for an E-IMZO status (and reason, for agents that report Java exceptions).
 * @param {number | undefined} status
 * @param {string | undefined} reason
 * @returns {string}
 */
export function codeForStatus(status, reason) {
  const among = (/** @type {number[]} */ ...statuses) => status !== undefined && statuses.includes(status);
  if (status === Status.FUNCTION_NOT_FOUND) return 'FUNCTION_NOT_FOUND';
  // Before the cancel statuses: E-IMZO and eimzo-agent answer three wrong passwords with -5000 too, and only this
  // marker in the reason (what the vendor's e-imzo-init.js maps to "Пароль неверный") tells the two apart.
  if (typeof reason === 'string' && /BadPaddingException/.test(reason)) return 'WRONG_PASSWORD';
  if (among(Status.PASSWORD_CANCELLED, Status.OPERATION_CANCELLED, Status.CANCELLED_BY_USER)) return 'CANCELLED';
  if (among(Status.APIKEY_INVALID, Status.DOMAIN_UNKNOWN, Status.DOMAIN_NOT_ALLOWED)) return 'DOMAIN_NOT_ALLOWED';
  if (among(Status.KEY_NOT_FOUND, Status.KEY_PAIR_NOT_FOUND, Status.YTKS_KEY_ID_NOT_FOUND, Status.PFX_KEY_ID_NOT_FOUND,
    Status.KEY_ID_MISMATCH)) {
    return 'KEY_NOT_LOADED';
  }
  return 'AGENT_ERROR';
}

// --- aliases ------------------------------------------------------------------------------------------------------

/**
 * Split an E-IMZO alias ("cn=…,name=…,1.2.860.3.16.1.2=…,serialnumber=…,validfrom=…") into its fields.
 * Keys are lower-cased; backslash escapes are honoured (`o=foo\, bar` is one field "foo, bar"); the first
 * occurrence of a key wins.
 * @param {string} alias
 * @returns {Record<string, string>}
 */
export function splitAlias(alias) {
  /** @type {Record<string, string>} */
  const fields = {};
  let key = '';
  let value = '';
  let inValue = false;
  const store = () => {
    const name = key.trim().toLowerCase();
    if (name && inValue && !Object.prototype.hasOwnProperty.call(fields, name)) fields[name] = value;
  };
  const text = String(alias ?? '');
  for (let i = 0; i < text.length; i++) {
    let ch = text[i];
    if (ch === '\\') {
      ch = text[++i] ?? '';
    } else if (ch === '=' && !inValue) {
      inValue = true;
      continue;
    } else if (ch === ',') {
      store();
      key = '';
      value = '';
      inValue = false;
      continue;
    }
    if (inValue) value += ch;
    else key += ch;
  }
  store();
  return fields;
}

/**
 * An alias date ("2024.04.25 23:59:59", the agent's local time) as a Date; null when absent or malformed.
 * @param {string | undefined | null} text
 * @returns {Date | null}
 */
export function parseAliasDate(text) {
  const m = /^\s*(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})\s*$/.exec(text || '');
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const date = new Date(year, month - 1, day, hour, minute, second);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Who a key belongs to, read from its alias.
 * @param {string} alias
 * @param {Date} [now] the moment `expired` is judged at
 * @returns {KeyOwner}
 */
export function parseAlias(alias, now = new Date()) {
  const fields = splitAlias(alias);
  const get = (/** @type {string} */ name) => fields[name] || null;
  const validFrom = parseAliasDate(fields.validfrom);
  const validTo = parseAliasDate(fields.validto);
  const orgTin = get(OID_ORG_TIN);
  return {
    cn: get('cn'),
    name: get('name'),
    surname: get('surname'),
    pinfl: get(OID_PINFL),
    tin: get('uid'),
    orgTin,
    organisation: get('o'),
    title: get('t'),
    locality: get('l'),
    region: get('st'),
    country: get('c'),
    businessCategory: get('businesscategory'),
    serial: get('serialnumber'),
    validFrom,
    validTo,
    expired: validTo !== null && validTo.getTime() < now.getTime(),
    notYetValid: validFrom !== null && validFrom.getTime() > now.getTime(),
    legalEntity: orgTin !== null,
    fields,
  };
}

// --- data ---------------------------------------------------------------------------------------------------------

/**
 * Base64 of bytes (chunked, so large files do not overflow the call stack).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function bytesToBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, /** @type {any} */ (bytes.subarray(i, i + 0x8000)));
  }
  return btoa(binary);
}

/**
 * Bytes of a Base64 string.
 * @param {string} base64
 * @returns {Uint8Array}
 */
export function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The Base64 the agent takes for a document: text is encoded as UTF-8; bytes and Blobs/Files are taken as is.
 * @param {SignableData} data
 * @returns {Promise<string>}
 */
export async function dataToBase64(data) {
  if (typeof data === 'string') return bytesToBase64(new TextEncoder().encode(data));
  if (data instanceof Uint8Array) return bytesToBase64(data);
  if (data instanceof ArrayBuffer) return bytesToBase64(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) return bytesToBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (data && typeof (/** @type {Blob} */ (data)).arrayBuffer === 'function') {
    return bytesToBase64(new Uint8Array(await /** @type {Blob} */ (data).arrayBuffer()));
  }
  throw new TypeError('data must be a string, bytes (ArrayBuffer / typed array) or a Blob / File');
}

/**
 * @param {Record<string, any>} reply a successful `version` reply
 * @returns {VersionInfo}
 */
function versionInfo(reply) {
  const major = parseInt(reply.major, 10);
  const minor = parseInt(reply.minor, 10);
  if (Number.isNaN(major) || Number.isNaN(minor)) throw new ProtocolError('the agent did not report its version');
  const patch = reply.patch === undefined ? null : parseInt(reply.patch, 10);
  return {
    major,
    minor,
    patch: Number.isNaN(patch) ? null : patch,
    number: major * 100 + minor,
    text: [major, minor, patch].filter((n) => n !== null && !Number.isNaN(n)).join('.'),
    edition: reply.edition || null,
    agent: reply.agent || 'E-IMZO',
    agentVersion: reply.agent_version || null,
  };
}

/**
 * @param {VersionRequirement | undefined} required
 * @returns {{major: number, minor: number}}
 */
function normaliseRequirement(required) {
  if (required === undefined || required === null) return { ...MIN_VERSION };
  if (typeof required === 'number') return { major: Math.floor(required / 100), minor: required % 100 };
  if (typeof required === 'string') {
    const [major, minor] = required.split('.').map((s) => parseInt(s, 10));
    return { major: major || 0, minor: minor || 0 };
  }
  return { major: required.major, minor: required.minor || 0 };
}

/**
 * E-IMZO's flat [domain, key, …] list from an object {domain: key}, a list of pairs, or a flat list.
 * @param {ApiKeys} keys
 * @returns {string[]}
 */
function flatApiKeys(keys) {
  if (Array.isArray(keys)) return keys.flat().map(String);
  return Object.entries(keys).flat().map(String);
}

// --- the client ---------------------------------------------------------------------------------------------------

/**
 * One connection to the agent, with the request it is answering.
 * @private
 */
class Channel {
  /**
   * @param {EimzoClient} client
   * @param {string} url
   * @param {boolean} keep whether this socket was opened with ?keepConnection
   */
  constructor(client, url, keep) {
    this.client = client;
    this.url = url;
    this.keep = keep;
    this.opened = false;
    this.closed = false;
    this.closedByUs = false;
    this.replies = 0;
    this.lastReplyAt = 0;
    /** @type {Request | null} */
    this.request = null;
    const WebSocketClass = client.WebSocket;
    if (typeof WebSocketClass !== 'function') throw new AgentUnavailableError('this browser has no WebSocket', { url });
    try {
      this.socket = new WebSocketClass(keep ? withKeepConnection(url) : url);
    } catch (error) {
      // e.g. SecurityError: a browser refusing ws:// from an https page outright
      const wrapped = new AgentUnavailableError(`cannot open ${url}: ${error}`, { url });
      wrapped.cause = error;
      throw wrapped;
    }
    this.connectTimer = setTimeout(() => {
      if (this.opened || this.closed) return;
      this.close(1000, 'connect timeout');
      client._channelClosed(this, { code: 1006, timedOut: true });
    }, client.connectTimeout);
    this.socket.onopen = () => {
      clearTimeout(this.connectTimer);
      this.opened = true;
      if (this.request) this.socket.send(this.request.frame);
    };
    this.socket.onmessage = (/** @type {{data: any}} */ event) => {
      this.replies += 1;
      this.lastReplyAt = Date.now();
      client._channelReply(this, event.data);
    };
    this.socket.onerror = () => {
      // A close event always follows an error; it decides what happens to the request.
    };
    this.socket.onclose = (/** @type {{code: number, reason?: string}} */ event) => {
      clearTimeout(this.connectTimer);
      if (this.closed) return;
      this.closed = true;
      client._channelClosed(this, { code: event.code, timedOut: false });
    };
  }

  /** @param {Request} request */
  send(request) {
    this.request = request;
    request.channel = this;
    if (this.opened) this.socket.send(request.frame);
  }

  /** @param {number} code @param {string} reason */
  close(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.closedByUs = true;
    clearTimeout(this.connectTimer);
    try {
      this.socket.close(code, reason);
    } catch {
      // already closing
    }
  }
}

/**
 * @param {string} url
 * @returns {string}
 */
function withKeepConnection(url) {
  if (/[?&]keepConnection(=|&|$)/.test(url)) return url;
  return url + (url.includes('?') ? '&' : '?') + 'keepConnection';
}

/**
 * Talks to the local signing agent. Every method returns a Promise; failures are `EimzoError`s.
 *
 * By default one WebSocket is kept open (`?keepConnection`) and requests are queued on it, one at a time, in
 * order; if the agent closes it after each reply (agents that do not keep connections), the client switches to a
 * new socket per call, as e-imzo.js does. A socket the agent closed while idle is reopened on the next call.
 */
export class EimzoClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    const location = options.location === undefined ? globalThis.location : options.location;
    /** @type {boolean} */
    this.secure = options.secure ?? location?.protocol === 'https:';
    this.wsUrl = options.wsUrl || DEFAULT_WS_URL;
    this.wssUrl = options.wssUrl || DEFAULT_WSS_URL;
    /** The agent's WebSocket URL this client uses. */
    this.url = options.url || (this.secure ? this.wssUrl : this.wsUrl);
    this.keepConnection = options.keepConnection ?? true;
    this.timeout = options.timeout ?? 30000;
    this.interactiveTimeout = options.interactiveTimeout ?? 360000;
    this.connectTimeout = options.connectTimeout ?? 10000;
    this.apiKeys = options.apiKeys || null;
    this.minVersion = normaliseRequirement(options.minVersion);
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.fetch = options.fetch || (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : null);
    this.permissions = options.permissions === undefined ? globalThis.navigator?.permissions : options.permissions;
    this.location = location || null;
    /** @type {Request[]} */
    this._queue = [];
    /** @type {Channel | null} */
    this._kept = null;
    /** @type {Set<Channel>} */
    this._perCall = new Set();
    this._keepSupported = true;
    this._closed = false;
    /** @type {Promise<string> | null} */
    this._apiKeysInstalled = null;
    /** @type {Map<string, string>} */
    this._keyTypes = new Map();
  }

  /** Whether calls currently share one kept-open socket (false after falling back to a socket per call). */
  get usesKeptConnection() {
    return this.keepConnection && this._keepSupported;
  }

  /**
   * Send one E-IMZO request and resolve with the agent's reply (`success: true`), else reject.
   * @param {string} name function name, e.g. "list_all_certificates"
   * @param {ReadonlyArray<string | number>} [args]
   * @param {CallOptions} [options]
   * @returns {Promise<any>}
   */
  call(name, args = [], options = {}) {
    if (this._closed) return Promise.reject(new AbortedError('the client was closed'));
    /** @type {Record<string, any>} */
    const body = { name, arguments: args.map(String) };
    if (options.plugin) body.plugin = options.plugin;
    const timeout = options.timeout ?? (INTERACTIVE.has(name) ? this.interactiveTimeout : this.timeout);
    return new Promise((resolve, reject) => {
      /** @type {Request} */
      const request = {
        frame: JSON.stringify(body),
        label: options.plugin ? `${options.plugin}.${name}` : name,
        resolve,
        reject,
        settled: false,
        retried: false,
        channel: null,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
      };
      if (timeout > 0 && Number.isFinite(timeout)) {
        request.timer = setTimeout(() => {
          const message = `${request.label}: no answer from the agent in ${timeout} ms`;
          this._settle(request, new RequestTimeoutError(message, timeout));
        }, timeout);
      }
      if (options.signal) {
        if (options.signal.aborted) {
          this._settle(request, new AbortedError(`${request.label}: aborted`));
          return;
        }
        request.onAbort = () => this._settle(request, new AbortedError(`${request.label}: aborted`));
        options.signal.addEventListener('abort', request.onAbort, { once: true });
      }
      this._dispatch(request);
    }).then((reply) => {
      if (Array.isArray(reply)) return reply; // apidoc
      if (!reply || typeof reply !== 'object') throw new ProtocolError('the agent sent a reply that is not an object');
      if (reply.success !== true) {
        throw new AgentError(typeof reply.status === 'number' ? reply.status : undefined, reply.reason);
      }
      return reply;
    });
  }

  /**
   * The agent's version.
   * @returns {Promise<VersionInfo>}
   */
  async version() {
    return versionInfo(await this.call('version'));
  }

  /**
   * The agent's version, or a VersionError when it is older than `required` (default: the client's minVersion).
   * @param {VersionRequirement} [required] {major, minor}, 336 or "3.36"
   * @returns {Promise<VersionInfo>}
   */
  async ensureVersion(required) {
    const need = required === undefined ? this.minVersion : normaliseRequirement(required);
    const installed = await this.version();
    if (installed.number < need.major * 100 + need.minor) throw new VersionError(installed, need);
    return installed;
  }

  /**
   * Present the site's API keys to the agent (E-IMZO's `apikey`); resolves with the Origin the agent saw.
   * @param {ApiKeys} [keys] default: the client's `apiKeys` option, else the published localhost keys
   * @returns {Promise<string>}
   */
  async installApiKeys(keys) {
    const reply = await this.call('apikey', flatApiKeys(keys || this.apiKeys || PUBLISHED_API_KEYS));
    return reply.message || '';
  }

  /**
   * Every key the agent sees: .pfx files on disks, then keys on PKCS#11 tokens (eimzo-agent only; E-IMZO's
   * answer "function not found" and token errors just mean "no token keys").
   * @param {{tokens?: boolean, now?: Date}} [options]
   * @returns {Promise<KeyInfo[]>}
   */
  async listKeys(options = {}) {
    const now = options.now || new Date();
    const reply = await this._gated('list_all_certificates', [], { plugin: 'pfx' });
    /** @type {KeyInfo[]} */
    const keys = (reply.certificates || []).map((/** @type {any} */ c) => ({
      ...parseAlias(c.alias, now),
      type: 'pfx',
      alias: c.alias,
      disk: c.disk,
      path: c.path,
      fileName: c.name,
    }));
    if (options.tokens !== false) {
      try {
        const tokens = await this.call('list_keys', [], { plugin: 'token' });
        for (const k of tokens.keys || []) {
          keys.push({ ...parseAlias(k.alias, now), type: 'token', alias: k.alias, tokenId: k.tokenId,
            tokenLabel: k.tokenLabel, label: k.label });
        }
      } catch (error) {
        if (!(error instanceof AgentError)) throw error;
      }
    }
    return keys;
  }

  /**
   * Open a key for signing (no password is asked here; the agent asks when the key is first used).
   * @param {KeyInfo | {disk: string, path: string, name: string, alias: string} | {tokenId: string, alias: string}} key
   *   an entry from listKeys(), or E-IMZO's own list_all_certificates entry
   * @returns {Promise<LoadedKey>}
   */
  async loadKey(key) {
    const { plugin, args } = loadKeyArguments(key);
    const reply = await this._gated('load_key', args, { plugin });
    this._keyTypes.set(reply.keyId, reply.type);
    return { keyId: reply.keyId, type: reply.type };
  }

  /**
   * Sign a document: text (signed as UTF-8), bytes, or a Blob / File. The agent asks the user for the password.
   * @param {string | LoadedKey} key a keyId from loadKey(), or "idcard" / "baikey" / "ckc"
   * @param {SignableData} data
   * @param {SignOptions} [options]
   * @returns {Promise<Signature>}
   */
  async sign(key, data, options = {}) {
    const keyId = keyIdOf('sign', key);
    const data64 = options.base64 ? String(data) : await dataToBase64(data);
    const reply = await this._gated('create_pkcs7', [data64, keyId, options.detached ? 'yes' : 'no'], {
      plugin: 'pkcs7', timeout: options.timeout, signal: options.signal,
    });
    const signed = signature(reply);
    if (!options.timestampUrl) return signed;
    // The portal's /frontend/timestamp/pkcs7 adds an RFC 3161 token over the signature (CAdES-T): it takes the
    // PKCS#7 as the raw body and answers {pkcs7b64, timestampedSignerList}.
    const stamped = await this._portal('sign', options.timestampUrl, {
      method: 'POST', body: signed.pkcs7, headers: options.headers, signal: options.signal,
    }, 'pkcs7b64');
    return { ...signed, pkcs7: stamped.pkcs7b64, timestampedSigners: stamped.timestampedSignerList || [] };
  }

  /**
   * Log in to a portal with the person's key, E-IMZO-server's way: fetch a challenge, sign it (attached), post the
   * signature. Resolves with the auth URL's JSON reply (E-IMZO-server: `{subjectCertificateInfo, status: 1}`);
   * rejects with a PortalError when a URL fails or answers a `status` other than 1.
   * @param {LoginOptions} options
   * @returns {Promise<any>}
   */
  async login(options) {
    const { challengeUrl, authUrl, key, signal, headers } = options || /** @type {any} */ ({});
    if (typeof challengeUrl !== 'string' || typeof authUrl !== 'string' || !challengeUrl || !authUrl) {
      throw new TypeError('login(): challengeUrl and authUrl must be URLs (strings)');
    }
    // A listKeys() entry is opened here; a keyId or loadKey() result is used as is. Checked before a challenge
    // is taken, so that a slip costs no challenge.
    const keyId = key && typeof key === 'object' && !('keyId' in key)
      ? (await this.loadKey(/** @type {any} */ (key))).keyId
      : keyIdOf('login', key);
    // E-IMZO-server's demo adds ?_uc=<time>_<random> too: a challenge must never come from a cache.
    const unique = `_uc=${Date.now()}_${Math.random().toString(36).slice(2, 10)}`;
    const url = challengeUrl + (challengeUrl.includes('?') ? '&' : '?') + unique;
    const issued = await this._portal('login', url, { method: 'GET', headers, signal }, 'challenge');
    const signed = await this.sign(keyId, String(issued.challenge), { signal });
    return this._portal('login', authUrl, { method: 'POST', body: signed.pkcs7, headers, signal });
  }

  /**
   * Add this key's signature to an attached PKCS#7 (co-signing); existing signatures stay as they are.
   * @param {string | LoadedKey} key
   * @param {string} pkcs7Base64
   * @param {CallOptions} [options]
   * @returns {Promise<Signature>}
   */
  async appendSignature(key, pkcs7Base64, options = {}) {
    const keyId = keyIdOf('appendSignature', key);
    const reply = await this._gated('append_pkcs7_attached', [pkcs7Base64, keyId], {
      plugin: 'pkcs7', timeout: options.timeout, signal: options.signal,
    });
    return signature(reply);
  }

  /**
   * Sign many documents with ONE confirmation (eimzo-agent's batch.create_pkcs7; E-IMZO answers "function not
   * found"). The agent's dialog lists every document, asks the password once and shows the signing progress; the
   * person may cancel midway: the signatures made so far come back, the rest with `cancelled: true`.
   * `onProgress` reports the page's side: each document read and encoded ("encoding"), the request sent
   * ("signing"; the agent replies once, at the end) and the reply ("done").
   * @param {string | LoadedKey} key a keyId from loadKey() (a key file; tokens are refused)
   * @param {ReadonlyArray<BatchDocument>} documents
   * @param {BatchOptions} [options]
   * @returns {Promise<BatchResult>}
   */
  async signBatch(key, documents, options = {}) {
    const keyId = keyIdOf('signBatch', key);
    if (!Array.isArray(documents) || documents.length === 0) {
      throw new TypeError('signBatch(): documents must be a non-empty array of {name, data | data64 | digestHex}');
    }
    const progress = options.onProgress || (() => {});
    const total = documents.length;
    /** @type {Array<Record<string, string>>} */
    const items = [];
    for (const [index, document] of documents.entries()) {
      const name = document && typeof document.name === 'string' ? document.name : String(index + 1);
      if (document && typeof document.digestHex === 'string') {
        items.push({ name, digest_hex: document.digestHex });
      } else if (document && typeof document.data64 === 'string') {
        items.push({ name, data_64: document.data64 });
      } else if (document && document.data !== undefined) {
        items.push({ name, data_64: await dataToBase64(document.data) });
      } else {
        throw new TypeError(`signBatch(): document ${index + 1} needs data, data64 or digestHex`);
      }
      progress({ stage: 'encoding', done: index + 1, total });
    }
    progress({ stage: 'signing', done: 0, total });
    const reply = await this._gated('create_pkcs7', [JSON.stringify(items), keyId, options.detached ? 'yes' : 'no'], {
      plugin: 'batch', timeout: options.timeout, signal: options.signal,
    });
    /** @type {BatchSignature[]} */
    const signatures = (reply.signatures || []).map((/** @type {any} */ s) => (
      s.pkcs7_64 !== undefined ? { name: s.name, ...signature(s) }
        : s.cancelled ? { name: s.name, cancelled: true } : { name: s.name, error: String(s.error) }));
    progress({ stage: 'done', done: reply.signed, total });
    return { signatures, signed: reply.signed, cancelled: reply.cancelled };
  }

  /**
   * Close a loaded key.
   * @param {string | LoadedKey} key
   * @returns {Promise<void>}
   */
  async unloadKey(key) {
    const keyId = typeof key === 'string' ? key : key.keyId;
    const type = typeof key === 'string' ? this._keyTypes.get(keyId) : key.type;
    await this._gated('unload_key', [keyId], { plugin: type === 'PKCS11_KEY_STORE' ? 'token' : 'pfx' });
    this._keyTypes.delete(keyId);
  }

  /**
   * Find out why the agent cannot be reached (or that it can): see docs/js-client.md for what each browser lets
   * a page detect. Never rejects.
   * @param {DiagnoseOptions} [options]
   * @returns {Promise<Diagnosis>}
   */
  async diagnose(options = {}) {
    const timeout = options.timeout ?? 3000;
    const url = options.url || this.url;
    const target = new URL(url);
    const secureUrl = target.protocol === 'wss:';
    const httpUrl = `${secureUrl ? 'https:' : 'http:'}//${target.host}/`;
    const plainUrl = secureUrl ? httpBaseOf(options.plainUrl || this.wsUrl) : null;
    const [permission, websocket, http, plainHttp] = await Promise.all([
      localNetworkPermission(this.permissions),
      probeWebSocket(this.WebSocket, url, timeout),
      probeHttp(this.fetch, httpUrl, timeout),
      plainUrl ? probeHttp(this.fetch, plainUrl, timeout) : Promise.resolve(null),
    ]);
    const page = pageContext(this.location, options.secureContext);
    const required = options.minVersion === undefined ? this.minVersion : normaliseRequirement(options.minVersion);
    /** @type {VersionInfo | null} */
    let version = null;
    let agent = http.agent || null;
    if (websocket.outcome === 'answered') {
      try {
        version = versionInfo(websocket.reply);
        agent = version.agent === 'eimzo-agent' ? 'eimzo-agent' : 'E-IMZO';
      } catch {
        version = null;
      }
    }
    const status = classify({ permission, websocket, http, plainHttp, version, required, secureUrl, page });
    /** @type {Record<string, string>} */
    const params = {
      port: target.port || (secureUrl ? '443' : '80'),
      installed: version ? version.text : '?',
      required: `${required.major}.${required.minor}`,
    };
    if (page.origin) params.site = page.origin;
    const lang = pickLanguage(options.lang);
    /** @type {Record<Language, string>} */
    const messages = /** @type {any} */ ({});
    for (const code of LANGUAGES) messages[code] = explain(status, code, params);
    return {
      status,
      ok: status === 'ok',
      agent: status === 'port-busy' ? null : agent,
      version,
      url,
      permission,
      checks: { websocket: stripReply(websocket), http, plainHttp },
      admin: adminFix(status, page.origin),
      lang,
      message: messages[lang],
      messages,
    };
  }

  /** Close the kept connection and every socket; pending requests fail with AbortedError. */
  close() {
    this._closed = true;
    const error = new AbortedError('the client was closed');
    for (const request of [...this._queue]) this._settle(request, error);
    for (const channel of [...this._perCall, this._kept]) {
      if (!channel) continue;
      if (channel.request) this._settle(channel.request, error);
      channel.close(1000, 'client closed');
    }
    this._kept = null;
    this._perCall.clear();
  }

  // --- internals ---

  /**
   * One request to the portal's server, E-IMZO-server style: a raw text body, a JSON reply whose `status` is 1.
   * @param {string} step the public method, for messages
   * @param {string} url
   * @param {{method: string, body?: string, headers?: Record<string, string>, signal?: AbortSignal}} request
   * @param {string} [field] a field the reply must have
   * @returns {Promise<any>}
   */
  async _portal(step, url, request, field) {
    if (typeof this.fetch !== 'function') throw new PortalError(`${step}: this browser has no fetch()`, { url });
    if (request.signal?.aborted) throw new AbortedError(`${step}: aborted`);
    /** @type {Record<string, string>} */
    const headers = { ...(request.body === undefined ? {} : { 'Content-Type': 'text/plain' }), ...request.headers };
    let response;
    let text;
    try {
      response = await this.fetch(url, { method: request.method, body: request.body, headers, cache: 'no-store',
        signal: request.signal });
      text = await response.text();
    } catch (error) {
      if (request.signal?.aborted) throw new AbortedError(`${step}: aborted`);
      throw new PortalError(`${step}: could not reach ${url}: ${error}`, { url, cause: error });
    }
    let reply;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = undefined;
    }
    const json = reply && typeof reply === 'object' ? reply : undefined;
    const details = {
      url,
      httpStatus: response.status,
      status: typeof json?.status === 'number' ? json.status : undefined,
      reason: typeof json?.message === 'string' && json.message ? json.message : undefined,
      reply: json,
    };
    const said = details.reason ? `: ${details.reason}` : '';
    if (!response.ok) throw new PortalError(`${step}: ${url} answered HTTP ${response.status}${said}`, details);
    if (!json) throw new PortalError(`${step}: the reply of ${url} is not a JSON object`, details);
    if (json.status !== Status.OK) {
      throw new PortalError(`${step}: ${url} answered status ${json.status}${said}`, details);
    }
    if (field && (typeof json[field] !== 'string' || !json[field])) {
      throw new PortalError(`${step}: the reply of ${url} has no ${field}`, details);
    }
    return json;
  }

  /**
   * A call that needs an approved domain: presents the `apiKeys` option first (once) when one was given.
   *
   * An agent that finds one key of the list invalid answers -1020 for the whole `apikey` call, yet the valid keys
   * still count (and pages on this machine need none): so the call goes ahead. Only if the site is then refused
   * does the rejection matter; it becomes that error's `cause`, whose reason names the domain with the bad key.
   * @param {string} name @param {string[]} args @param {CallOptions} options
   * @returns {Promise<any>}
   */
  async _gated(name, args, options) {
    /** @type {AgentError | null} */
    let keysRejected = null;
    if (this.apiKeys) {
      if (!this._apiKeysInstalled) {
        this._apiKeysInstalled = this.installApiKeys(this.apiKeys).catch((error) => {
          if (error instanceof AgentError && error.status === Status.APIKEY_INVALID) throw error;
          this._apiKeysInstalled = null; // the agent could not be asked: try again next time
          throw error;
        });
      }
      try {
        await this._apiKeysInstalled;
      } catch (error) {
        if (!(error instanceof AgentError && error.status === Status.APIKEY_INVALID)) throw error;
        keysRejected = error;
      }
    }
    try {
      return await this.call(name, args, options);
    } catch (error) {
      if (error instanceof AgentError && error.code === 'DOMAIN_NOT_ALLOWED') {
        this._apiKeysInstalled = null;
        if (keysRejected && error.cause === undefined) error.cause = keysRejected;
      }
      throw error;
    }
  }

  /** @param {Request} request */
  _dispatch(request) {
    if (this.usesKeptConnection) {
      this._queue.push(request);
      this._pump();
    } else {
      this._sendOnNewSocket(request);
    }
  }

  /** Send the next queued request on the kept socket, one at a time. */
  _pump() {
    if (!this.usesKeptConnection) {
      while (this._queue.length) this._sendOnNewSocket(/** @type {Request} */ (this._queue.shift()));
      return;
    }
    if (this._kept && this._kept.request) return; // busy: the queue waits
    const request = this._queue.shift();
    if (!request) return;
    if (!this._kept || this._kept.closed) {
      try {
        this._kept = new Channel(this, this.url, true);
      } catch (error) {
        this._settle(request, /** @type {Error} */ (error));
        this._pump();
        return;
      }
    }
    this._kept.send(request);
  }

  /** @param {Request} request */
  _sendOnNewSocket(request) {
    let channel;
    try {
      channel = new Channel(this, this.url, false);
    } catch (error) {
      this._settle(request, /** @type {Error} */ (error));
      return;
    }
    this._perCall.add(channel);
    channel.send(request);
  }

  /**
   * @param {Channel} channel
   * @param {any} data
   */
  _channelReply(channel, data) {
    const request = channel.request;
    channel.request = null;
    if (!channel.keep) {
      this._perCall.delete(channel);
      channel.close(1000, 'Done');
    }
    if (request && !request.settled) {
      let reply;
      try {
        reply = JSON.parse(String(data));
      } catch {
        this._settle(request, new ProtocolError(`${request.label}: the agent's reply is not JSON`));
        reply = undefined;
      }
      if (reply !== undefined) this._settle(request, null, reply);
    }
    if (channel.keep) this._pump();
  }

  /**
   * @param {Channel} channel
   * @param {{code: number, timedOut: boolean}} how
   */
  _channelClosed(channel, how) {
    this._perCall.delete(channel);
    if (this._kept === channel) this._kept = null;
    const request = channel.request;
    channel.request = null;
    if (channel.keep && !channel.closedByUs && how.code === 1000 && channel.replies === 1 &&
        Date.now() - channel.lastReplyAt < 1000) {
      // Closed right after its first reply: this agent does not keep connections (a request sent in between
      // was not taken and is sent again below). From now on: a socket per call, as e-imzo.js does.
      this._keepSupported = false;
    }
    if (request && !request.settled) {
      if (how.code === 1000 && !how.timedOut && channel.opened && !request.retried) {
        // A clean close without a reply: the agent did not take the frame (it closed an idle or finished
        // socket as we sent). Send it once more on a fresh socket.
        request.retried = true;
        request.channel = null;
        if (this.usesKeptConnection) this._queue.unshift(request);
        else this._sendOnNewSocket(request);
      } else if (!channel.opened) {
        const why = how.timedOut ? 'timed out connecting to' : 'could not connect to';
        this._settle(request, new AgentUnavailableError(`${request.label}: ${why} the agent at ${this.url}`,
          { closeCode: how.code, url: this.url }));
      } else {
        this._settle(request, new ConnectionLostError(
          `${request.label}: the connection to the agent closed (code ${how.code}) before it answered`,
          { closeCode: how.code }));
      }
    }
    if (channel.keep) this._pump();
  }

  /**
   * Resolve or reject a request exactly once; a request given up while on the kept socket closes that socket
   * (its late reply would otherwise be taken for the next request's).
   * @param {Request} request
   * @param {Error | null} error
   * @param {any} [reply]
   */
  _settle(request, error, reply) {
    if (request.settled) return;
    request.settled = true;
    clearTimeout(request.timer);
    if (request.signal && request.onAbort) request.signal.removeEventListener('abort', request.onAbort);
    const queued = this._queue.indexOf(request);
    if (queued >= 0) this._queue.splice(queued, 1);
    const channel = request.channel;
    if (error && channel && channel.request === request) {
      channel.request = null;
      channel.close(1000, 'Cancelled');
      this._perCall.delete(channel);
      if (this._kept === channel) {
        this._kept = null;
        Promise.resolve().then(() => this._pump());
      }
    }
    if (error) request.reject(error);
    else request.resolve(reply);
  }
}

/**
 * The `load_key` call for a key object, or a TypeError naming what is wrong with it: the usual slip is
 * `loadKey(keys[0])` on an empty list, or an object built by hand that lacks a field the agent needs.
 * @param {unknown} key
 * @returns {{plugin: string, args: string[]}}
 */
function loadKeyArguments(key) {
  const usage = "pass an entry from listKeys() (or E-IMZO's {disk, path, name, alias})";
  if (key === undefined || key === null) {
    throw new TypeError(`loadKey(): no key given (${key}); ${usage} — is the list of keys empty?`);
  }
  if (typeof key !== 'object') {
    throw new TypeError(`loadKey(): the key must be an object, not a ${typeof key}; ${usage}`);
  }
  /** @type {any} */
  const k = key;
  const text = (/** @type {unknown} */ value) => typeof value === 'string' && value !== '';
  const token = k.type === 'token' || k.tokenId !== undefined;
  const fileName = 'fileName' in k ? k.fileName : k.name;
  /** @type {Array<[string, boolean]>} */
  const fields = token
    ? [['tokenId', text(k.tokenId)], ['alias', text(k.alias)]]
    : [['disk', text(k.disk)], ['fileName' in k ? 'fileName' : 'name', text(fileName)], ['alias', text(k.alias)],
      ['path', k.path === undefined || k.path === null || typeof k.path === 'string']];
  const wrong = fields.filter(([, ok]) => !ok).map(([name]) => name);
  if (wrong.length) {
    const kind = token ? 'token key' : '.pfx key';
    throw new TypeError(`loadKey(): the ${kind} has no valid ${wrong.join(', ')} (a non-empty string is needed); ` +
      usage);
  }
  return token
    ? { plugin: 'token', args: [k.tokenId, k.alias] }
    : { plugin: 'pfx', args: [k.disk, k.path || '', fileName, k.alias] };
}

/**
 * The keyId of a loadKey() result or a keyId string, or a TypeError naming the method and what it got.
 * @param {string} method
 * @param {unknown} key
 * @returns {string}
 */
function keyIdOf(method, key) {
  if (typeof key === 'string' && key !== '') return key;
  const keyId = key && typeof key === 'object' ? /** @type {any} */ (key).keyId : undefined;
  if (typeof keyId === 'string' && keyId !== '') return keyId;
  const got = key === undefined || key === null || key === '' ? String(key === '' ? '""' : key)
    : typeof key === 'object' ? 'an object without keyId' : `a ${typeof key}`;
  throw new TypeError(`${method}(): the key must be a loadKey() result or its keyId (got ${got})`);
}

/** @param {any} reply @returns {Signature} */
function signature(reply) {
  return {
    pkcs7: reply.pkcs7_64,
    signerSerialNumber: reply.signer_serial_number,
    signatureHex: reply.signature_hex,
  };
}

// --- diagnose -----------------------------------------------------------------------------------------------------

/** @type {ReadonlyArray<Language>} */
export const LANGUAGES = Object.freeze(['uz', 'kaa', 'ru', 'en']);

/**
 * What each diagnosis means for the user, in Uzbek (Latin), Karakalpak (Latin), Russian and English.
 * `{port}`, `{installed}`, `{required}` are filled in.
 * @type {Readonly<Record<DiagnosisStatus, Readonly<Record<Language, string>>>>}
 */
export const MESSAGES = Object.freeze({
  ok: {
    uz: 'Imzolash agenti ishlamoqda va tayyor.',
    kaa: 'Qol qoyıw agenti islep tur hám tayın.',
    ru: 'Агент подписи работает и готов к работе.',
    en: 'The signing agent is running and ready.',
  },
  'not-running': {
    uz: "Imzolash agenti (eimzo-agent yoki E-IMZO) bu kompyuterda ishga tushirilmagan. Uni ishga tushiring " +
      "(yoki o'rnating) va qayta urinib ko'ring.",
    kaa: 'Qol qoyıw agenti (eimzo-agent yamasa E-IMZO) bul kompyuterde iske túsirilmegen. Onı iske túsiriń ' +
      '(yamasa ornatıń) hám qaytadan urınıp kóriń.',
    ru: 'Агент подписи (eimzo-agent или E-IMZO) не запущен на этом компьютере. Запустите (или установите) его ' +
      'и повторите попытку.',
    en: 'The signing agent (eimzo-agent or E-IMZO) is not running on this computer. Start (or install) it and ' +
      'try again.',
  },
  'port-busy': {
    uz: "Imzolash agentining {port} portini boshqa dastur egallagan. O'sha dasturni yoping va agentni qayta " +
      'ishga tushiring.',
    kaa: 'Qol qoyıw agentiniń {port} portın basqa baǵdarlama iyelep alǵan. Sol baǵdarlamanı jabıń hám agentti ' +
      'qaytadan iske túsiriń.',
    ru: 'Порт {port} агента подписи занят другой программой. Закройте её и перезапустите агент.',
    en: "Another program is using the signing agent's port {port}. Close that program and restart the agent.",
  },
  'tls-untrusted': {
    uz: "Agent ishlamoqda, lekin brauzer uning xavfsiz ulanish sertifikatiga ishonmaydi. Agent sertifikatini " +
      "o'rnating (eimzo-agent uchun: «eimzo-agent trust install») va brauzerni qayta ishga tushiring.",
    kaa: 'Agent islep tur, biraq brauzer onıń qáwipsiz baylanıs sertifikatına isenbeydi. Agent sertifikatın ' +
      'ornatıń (eimzo-agent ushın: «eimzo-agent trust install») hám brauzerdi qaytadan iske túsiriń.',
    ru: 'Агент работает, но браузер не доверяет его сертификату для защищённого соединения. Установите ' +
      'сертификат агента (для eimzo-agent: «eimzo-agent trust install») и перезапустите браузер.',
    en: "The agent is running, but the browser does not trust its certificate for secure connections. Install " +
      "the agent's certificate (for eimzo-agent: “eimzo-agent trust install”) and restart the browser.",
  },
  'lna-denied': {
    uz: "Brauzer bu saytga kompyuteringizdagi imzolash agentiga ulanishni taqiqlagan (mahalliy tarmoqqa kirish). " +
      'Manzil chap tomonidagi belgini bosing, «Приложения на устройстве» (Apps on device; eski versiyalarda ' +
      '«Доступ к локальной сети») bandida «Разрешить» (Allow) qiymatini tanlang va sahifani yangilang. Bu ' +
      'sozlamani tashkilotingiz boshqarsa, administratorga murojaat qiling.',
    kaa: 'Brauzer bul saytqa kompyuterińizdegi qol qoyıw agentine jalǵanıwdı qadaǵan etken (jergilikli tarmaqqa ' +
      'kiriw). Mánzildiń shep tárepindegi belgini basıń, «Приложения на устройстве» (Apps on device; eski ' +
      'versiyalarda «Доступ к локальной сети») bántinde «Разрешить» (Allow) mánisin tańlań hám betti jańalań. ' +
      'Bul sazlawdı shólkemińiz basqarsa, administratorǵa múráját etiń.',
    ru: 'Браузер запретил этому сайту подключаться к агенту подписи на вашем компьютере (доступ к локальной ' +
      'сети). Нажмите значок слева от адреса, для пункта «Приложения на устройстве» (в старых версиях — «Доступ ' +
      'к локальной сети») выберите «Разрешить» и обновите страницу. Если настройкой управляет ваша организация, ' +
      'обратитесь к администратору.',
    en: 'The browser blocks this site from connecting to the signing agent on your computer (local network ' +
      'access). Click the icon left of the address, set “Apps on device” (in older versions “Local network ' +
      'access”) to “Allow” and reload the page. If your organisation manages this setting, ask your administrator.',
  },
  'lna-prompt': {
    uz: "Brauzer bu saytning kompyuteringizdagi imzolash agentiga ulanishi uchun ruxsatingizni so'ramoqda. Manzil " +
      "satri ostidagi so'rovda «Разрешить» (Allow) tugmasini bosing va qayta urinib ko'ring. So'rov ko'rinmasa, " +
      'manzil chap tomonidagi belgini bosing, «Приложения на устройстве» (Apps on device) bandida «Разрешить» ' +
      '(Allow) qiymatini tanlang va sahifani yangilang.',
    kaa: 'Brauzer bul saytıń kompyuterińizdegi qol qoyıw agentine jalǵanıwı ushın ruqsatıńızdı soramaqta. Mánzil ' +
      'qatarı astındaǵı sorawda «Разрешить» (Allow) túymesin basıń hám qaytadan urınıp kóriń. Soraw kórinbese, ' +
      'mánzildiń shep tárepindegi belgini basıń, «Приложения на устройстве» (Apps on device) bántinde ' +
      '«Разрешить» (Allow) mánisin tańlań hám betti jańalań.',
    ru: 'Браузер спрашивает ваше разрешение, чтобы этот сайт мог подключиться к агенту подписи на вашем ' +
      'компьютере. В запросе под адресной строкой («Доступ к другим приложениям и сервисам на этом устройстве») ' +
      'выберите «Разрешить» и повторите попытку. Если запроса не видно, нажмите значок слева от адреса, для ' +
      'пункта «Приложения на устройстве» выберите «Разрешить» и обновите страницу.',
    en: 'The browser needs your permission for this site to connect to the signing agent on your computer. In the ' +
      'request under the address bar (“Access other apps and services on this device”), choose “Allow” and try ' +
      'again. If there is no request, click the icon left of the address, set “Apps on device” to “Allow” and ' +
      'reload the page.',
  },
  'insecure-page': {
    uz: "Sahifa HTTPS orqali ochilmagan, shuning uchun brauzer unga imzolash agentiga ulanishga ruxsat bermaydi. " +
      'Saytni https:// orqali oching.',
    kaa: 'Bet HTTPS arqalı ashılmaǵan, sonlıqtan brauzer oǵan qol qoyıw agentine jalǵanıwǵa ruqsat bermeydi. ' +
      'Saytti https:// arqalı ashıń.',
    ru: 'Страница открыта не по HTTPS, поэтому браузер не разрешает ей подключаться к агенту подписи. Откройте ' +
      'сайт через https://.',
    en: 'This page is not opened over HTTPS, so the browser does not let it connect to the signing agent. Open ' +
      'the site with https://.',
  },
  'too-old': {
    uz: "Imzolash agentining versiyasi eskirgan ({installed}; {required} yoki yangisi kerak). Uni yangilang.",
    kaa: 'Qol qoyıw agentiniń versiyası eskirgen ({installed}; {required} yamasa jańası kerek). Onı jańalań.',
    ru: 'Версия агента подписи устарела ({installed}; нужна {required} или новее). Обновите агент.',
    en: 'The signing agent is too old (version {installed}; {required} or newer is needed). Update it.',
  },
  unknown: {
    uz: "Imzolash agentiga noma'lum sababga ko'ra ulanib bo'lmadi. Agentni va brauzerni qayta ishga tushiring.",
    kaa: 'Qol qoyıw agentine belgisiz sebep penen jalǵanıw múmkin bolmadı. Agentti hám brauzerdi qaytadan iske ' +
      'túsiriń.',
    ru: 'Не удалось связаться с агентом подписи по неизвестной причине. Перезапустите агент и браузер.',
    en: 'The signing agent could not be reached for an unknown reason. Restart the agent and the browser.',
  },
});

/**
 * The browser policies (Chrome, Chromium, Edge) that let a site reach the agent without asking the person: the
 * one every version since 139 reads, and the narrower loopback-only one of 146+. `eimzo-agent policy browser`
 * writes both.
 */
export const LNA_POLICIES = Object.freeze(['LocalNetworkAccessAllowedForUrls', 'LoopbackNetworkAllowedForUrls']);

/**
 * Statuses an administrator can fix for everyone with LNA_POLICIES. 'insecure-page' is not one: Chromium keeps an
 * http:// public page away from the machine even when a policy names it (tested with Chromium 156).
 */
const ADMIN_FIXABLE = new Set(['lna-denied', 'lna-prompt']);

/**
 * The administrator's part of the 'lna-denied' / 'lna-prompt' texts; `{site}` is the page's origin.
 * @type {Readonly<Record<Language, string>>}
 */
export const ADMIN_MESSAGES = Object.freeze({
  uz: 'Administrator bu saytga barcha foydalanuvchilar uchun LocalNetworkAccessAllowedForUrls va ' +
    "LoopbackNetworkAllowedForUrls brauzer siyosati (Chrome, Edge) bilan ruxsat berishi mumkin; uni " +
    "«eimzo-agent policy browser --site {site}» buyrug'i yaratadi.",
  kaa: 'Administrator bul saytqa barlıq paydalanıwshılar ushın LocalNetworkAccessAllowedForUrls hám ' +
    'LoopbackNetworkAllowedForUrls brauzer siyasatı (Chrome, Edge) arqalı ruqsat bere aladı; onı ' +
    '«eimzo-agent policy browser --site {site}» buyrıǵı jaratadı.',
  ru: 'Администратор может разрешить этот сайт всем пользователям политикой браузера ' +
    'LocalNetworkAccessAllowedForUrls и LoopbackNetworkAllowedForUrls (Chrome, Edge); её создаёт команда ' +
    '«eimzo-agent policy browser --site {site}».',
  en: 'An administrator can allow this site for every user with the browser policies ' +
    'LocalNetworkAccessAllowedForUrls and LoopbackNetworkAllowedForUrls (Chrome, Edge); the command ' +
    '“eimzo-agent policy browser --site {site}” writes them.',
});

/**
 * The user-facing text for a diagnosis status. For 'lna-denied' and 'lna-prompt' with `params.site` (the page's
 * origin), the administrator's part (ADMIN_MESSAGES) follows the person's.
 * @param {DiagnosisStatus} status
 * @param {string} [lang] uz, kaa, ru or en (others fall back as pickLanguage does)
 * @param {Record<string, string>} [params]
 * @returns {string}
 */
export function explain(status, lang, params = {}) {
  const code = pickLanguage(lang);
  const texts = MESSAGES[status] || MESSAGES.unknown;
  const text = texts[code] + (ADMIN_FIXABLE.has(status) && params.site ? ' ' + ADMIN_MESSAGES[code] : '');
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * What an administrator sets so that `site` needs no permission, for the statuses a policy fixes; else null.
 * @param {DiagnosisStatus} status
 * @param {string | null} site the page's origin
 * @returns {AdminFix | null}
 */
export function adminFix(status, site) {
  if (!ADMIN_FIXABLE.has(status) || !site) return null;
  return { site, policies: [...LNA_POLICIES], command: `eimzo-agent policy browser --site ${site}` };
}

/**
 * One of uz, kaa, ru, en for a language tag ("ru-RU", "uz-Latn-UZ", "kaa"); default from the page or browser.
 * @param {string} [tag]
 * @returns {Language}
 */
export function pickLanguage(tag) {
  const candidates = [tag, globalThis.document?.documentElement?.lang, ...(globalThis.navigator?.languages || [])];
  for (const candidate of candidates) {
    const primary = String(candidate || '').toLowerCase().split(/[-_]/)[0];
    if ((/** @type {ReadonlyArray<string>} */ (LANGUAGES)).includes(primary)) return /** @type {Language} */ (primary);
  }
  return 'en';
}

/**
 * The browser's Local Network Access permission for this page: granted, denied, prompt, or unsupported (no such
 * permission in this browser, or no Permissions API). Chrome 145+ names it "loopback-network" for 127.0.0.1;
 * Chrome 142–144 had one "local-network-access" permission (still an alias).
 * @param {any} permissions navigator.permissions
 * @returns {Promise<PermissionStateOrUnsupported>}
 */
export async function localNetworkPermission(permissions) {
  if (!permissions || typeof permissions.query !== 'function') return 'unsupported';
  for (const name of ['loopback-network', 'local-network-access']) {
    try {
      const status = await permissions.query({ name });
      if (status && typeof status.state === 'string') return status.state;
    } catch {
      // this browser does not know the name
    }
  }
  return 'unsupported';
}

/**
 * @param {string} wsUrl
 * @returns {string}
 */
function httpBaseOf(wsUrl) {
  const u = new URL(wsUrl);
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}/`;
}

/**
 * @param {any} location
 * @param {boolean | undefined} secureContext
 * @returns {{secure: boolean, local: boolean, origin: string | null}}
 */
function pageContext(location, secureContext) {
  const host = String(location?.hostname || '').toLowerCase();
  const local = !location || location.protocol === 'file:' || host === 'localhost' || host.endsWith('.localhost') ||
    /^127\./.test(host) || host === '[::1]' || host === '::1';
  const secure = secureContext ?? globalThis.isSecureContext ?? location?.protocol === 'https:';
  return { secure: Boolean(secure), local, origin: originOf(location) };
}

/**
 * The page's origin as browser policies name a site ("https://my.gov.uz", with a port when not the default one).
 * @param {any} location
 * @returns {string | null}
 */
function originOf(location) {
  if (typeof location?.origin === 'string' && /^https?:\/\//.test(location.origin)) return location.origin;
  const host = location?.host || location?.hostname;
  return /^https?:$/.test(location?.protocol) && host ? `${location.protocol}//${host}` : null;
}

/**
 * Try E-IMZO's `version` call on a fresh socket.
 * @param {any} WebSocketClass
 * @param {string} url
 * @param {number} timeout
 * @returns {Promise<WebSocketProbe & {reply?: any}>}
 */
function probeWebSocket(WebSocketClass, url, timeout) {
  return new Promise((resolve) => {
    const started = Date.now();
    let opened = false;
    let done = false;
    /** @type {any} */
    let socket = null;
    /** @param {{outcome: WebSocketProbe['outcome'], closeCode?: number, error?: string, reply?: any}} result */
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket?.close();
      } catch {
        // already closed
      }
      resolve({ opened, ms: Date.now() - started, ...result });
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), timeout);
    if (typeof WebSocketClass !== 'function') {
      finish({ outcome: 'failed', error: 'no WebSocket in this browser' });
      return;
    }
    try {
      socket = new WebSocketClass(url);
    } catch (error) {
      finish({ outcome: 'failed', error: String(error) }); // e.g. mixed content refused outright
      return;
    }
    socket.onopen = () => {
      opened = true;
      socket.send(JSON.stringify({ name: 'version', arguments: [] }));
    };
    socket.onmessage = (/** @type {{data: any}} */ event) => {
      let reply;
      try {
        reply = JSON.parse(String(event.data));
      } catch {
        finish({ outcome: 'bad-reply' });
        return;
      }
      if (reply && typeof reply === 'object' && 'success' in reply) finish({ outcome: 'answered', reply });
      else finish({ outcome: 'bad-reply' });
    };
    socket.onerror = () => {};
    socket.onclose = (/** @type {{code: number}} */ event) => finish({ outcome: 'failed', closeCode: event.code });
  });
}

/**
 * GET the agent's status page. `answered` (CORS allowed it: eimzo-agent's page names itself), `opaque`
 * (something answers HTTP there but without CORS), `failed` (nothing answered) or `timeout`.
 * @param {any} fetchFunction
 * @param {string} url
 * @param {number} timeout
 * @returns {Promise<HttpProbe>}
 */
async function probeHttp(fetchFunction, url, timeout) {
  if (typeof fetchFunction !== 'function') return { url, outcome: 'unsupported', agent: null };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const init = { cache: 'no-store', credentials: 'omit', signal: controller.signal };
  try {
    const response = await fetchFunction(url, { ...init, mode: 'cors' });
    const text = await response.text();
    return { url, outcome: 'answered', httpStatus: response.status, agent: agentNamedIn(text) };
  } catch {
    if (controller.signal.aborted) return { url, outcome: 'timeout', agent: null };
    try {
      await fetchFunction(url, { ...init, mode: 'no-cors' });
      return { url, outcome: 'opaque', agent: null };
    } catch {
      return { url, outcome: controller.signal.aborted ? 'timeout' : 'failed', agent: null };
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * @param {string} text
 * @returns {'eimzo-agent' | 'E-IMZO' | null}
 */
function agentNamedIn(text) {
  if (/eimzo-agent/i.test(text)) return 'eimzo-agent';
  if (/E-IMZO/i.test(text)) return 'E-IMZO';
  return null;
}

/** @param {WebSocketProbe & {reply?: any}} probe @returns {WebSocketProbe} */
function stripReply(probe) {
  const { reply, ...rest } = probe;
  return rest;
}

/**
 * @param {{permission: string, websocket: WebSocketProbe, http: HttpProbe, plainHttp: HttpProbe | null,
 *   version: VersionInfo | null, required: {major: number, minor: number}, secureUrl: boolean,
 *   page: {secure: boolean, local: boolean}}} facts
 * @returns {DiagnosisStatus}
 */
function classify(facts) {
  const { permission, websocket, http, plainHttp, version, required, secureUrl, page } = facts;
  if (websocket.outcome === 'answered') {
    if (!version) return 'port-busy'; // answers JSON, but not E-IMZO's version reply
    return version.number < required.major * 100 + required.minor ? 'too-old' : 'ok';
  }
  if (websocket.outcome === 'bad-reply' || (websocket.outcome === 'failed' && websocket.opened)) return 'port-busy';
  if (http.outcome === 'opaque' || (http.outcome === 'answered' && !http.agent)) return 'port-busy';
  if (http.outcome === 'answered') return permission === 'denied' ? 'lna-denied' : 'unknown';
  if (permission === 'denied') return page.secure || page.local ? 'lna-denied' : 'insecure-page';
  // The permission is asked before any connection to 127.0.0.1 is tried, running agent or not: while it is not
  // granted, a request either waits for the user's answer (timeout) or fails at once (prompt dismissed).
  if (permission === 'prompt' && !page.local) return page.secure ? 'lna-prompt' : 'insecure-page';
  if (websocket.outcome === 'timeout' || http.outcome === 'timeout') {
    if (permission === 'granted' || page.local) return 'port-busy'; // accepts connections, never answers
    return 'lna-prompt'; // a browser that gates local access without telling (no Permissions API entry)
  }
  if (secureUrl && plainHttp && plainHttp.outcome === 'answered' && plainHttp.agent) return 'tls-untrusted';
  return 'not-running';
}

// --- types (JSDoc; the same shapes are declared in eimzo-agent.d.ts) -----------------------------------------------

/**
 * @typedef {'uz' | 'kaa' | 'ru' | 'en'} Language
 * @typedef {'ok' | 'not-running' | 'port-busy' | 'tls-untrusted' | 'lna-denied' | 'lna-prompt' | 'insecure-page' |
 *   'too-old' | 'unknown'} DiagnosisStatus
 * @typedef {'granted' | 'denied' | 'prompt' | 'unsupported'} PermissionStateOrUnsupported
 * @typedef {{major: number, minor?: number} | number | string} VersionRequirement
 * @typedef {string[] | string[][] | Record<string, string> | ReadonlyArray<string>} ApiKeys
 * @typedef {string | ArrayBuffer | ArrayBufferView | Blob} SignableData
 *
 * @typedef {object} ClientOptions
 * @property {string} [url] agent WebSocket URL (default: wssUrl on https pages, else wsUrl)
 * @property {string} [wsUrl] default ws://127.0.0.1:64646/service/cryptapi
 * @property {string} [wssUrl] default wss://127.0.0.1:64443/service/cryptapi
 * @property {boolean} [secure] treat the page as https (default: from location.protocol)
 * @property {boolean} [keepConnection] share one socket between calls (default true)
 * @property {number} [timeout] ms per call (default 30000)
 * @property {number} [interactiveTimeout] ms for calls that ask the user a password (default 360000)
 * @property {number} [connectTimeout] ms to open a socket (default 10000)
 * @property {ApiKeys} [apiKeys] the site's API keys, presented once before the first call that needs them
 * @property {VersionRequirement} [minVersion] for ensureVersion() and diagnose() (default 3.36)
 * @property {any} [WebSocket] WebSocket class (tests inject a fake)
 * @property {any} [fetch] fetch function (diagnose)
 * @property {any} [permissions] navigator.permissions (diagnose); null = none
 * @property {any} [location] the page's location (default globalThis.location); null = none
 *
 * @typedef {object} CallOptions
 * @property {string} [plugin]
 * @property {number} [timeout]
 * @property {AbortSignal} [signal]
 *
 * @typedef {object} SignOptions
 * @property {boolean} [detached] detached signature (the document is not inside the PKCS#7)
 * @property {boolean} [base64] `data` is already Base64
 * @property {string} [timestampUrl] the portal's /frontend/timestamp/pkcs7: the signature gets its timestamp there
 * @property {Record<string, string>} [headers] extra headers for the timestampUrl request (e.g. a CSRF token)
 * @property {number} [timeout]
 * @property {AbortSignal} [signal]
 *
 * @typedef {object} BatchDocument
 * @property {string} name shown to the person in the agent's dialog
 * @property {SignableData} [data] the document (text as UTF-8, bytes, or a Blob / File)
 * @property {string} [data64] the document, already Base64
 * @property {string} [digestHex] only its hash, made with the key's algorithm (SHA-256 for RSA/ECDSA keys,
 *   O'zDSt 1106 for O'zDSt keys): a detached signature over it
 *
 * @typedef {{stage: 'encoding' | 'signing' | 'done', done: number, total: number}} BatchProgress
 *
 * @typedef {object} BatchOptions
 * @property {boolean} [detached] detached signatures (the documents are not inside the PKCS#7s)
 * @property {(progress: BatchProgress) => void} [onProgress]
 * @property {number} [timeout]
 * @property {AbortSignal} [signal]
 *
 * @typedef {{name: string, pkcs7?: string, signerSerialNumber?: string, signatureHex?: string,
 *   cancelled?: true, error?: string}} BatchSignature
 * @typedef {{signatures: BatchSignature[], signed: number, cancelled: number}} BatchResult
 *
 * @typedef {object} VersionInfo
 * @property {number} major
 * @property {number} minor
 * @property {number | null} patch
 * @property {number} number major*100+minor, as E-IMZO clients compare
 * @property {string} text e.g. "6.4.7"
 * @property {string | null} edition
 * @property {string} agent "eimzo-agent" or "E-IMZO"
 * @property {string | null} agentVersion
 *
 * @typedef {object} KeyOwner
 * @property {string | null} cn
 * @property {string | null} name given name
 * @property {string | null} surname
 * @property {string | null} pinfl personal number (14 digits)
 * @property {string | null} tin the person's TIN
 * @property {string | null} orgTin the organisation's TIN (legal-entity keys only)
 * @property {string | null} organisation
 * @property {string | null} title
 * @property {string | null} locality
 * @property {string | null} region
 * @property {string | null} country
 * @property {string | null} businessCategory
 * @property {string | null} serial certificate serial number, lower-case hex
 * @property {Date | null} validFrom
 * @property {Date | null} validTo
 * @property {boolean} expired
 * @property {boolean} notYetValid
 * @property {boolean} legalEntity the key signs for an organisation
 * @property {Record<string, string>} fields every alias field, keys lower-case
 *
 * @typedef {KeyOwner & {type: 'pfx' | 'token', alias: string, disk?: string, path?: string, fileName?: string,
 *   tokenId?: string, tokenLabel?: string, label?: string}} KeyInfo
 * @typedef {{keyId: string, type: string}} LoadedKey
 * @typedef {{pkcs7: string, signerSerialNumber: string, signatureHex: string, timestampedSigners?: any[]}} Signature
 *
 * @typedef {object} LoginOptions
 * @property {string} challengeUrl GET: `{challenge, ttl, status: 1}` (E-IMZO-server's /frontend/challenge)
 * @property {string} authUrl POST, the PKCS#7 as the raw body: the portal's backend, which checks it
 *   (E-IMZO-server's /backend/auth behind it)
 * @property {string | LoadedKey | KeyInfo} key a keyId, a loadKey() result, or a listKeys() entry (loaded here)
 * @property {AbortSignal} [signal]
 * @property {Record<string, string>} [headers] extra headers for both requests (e.g. a CSRF token)
 *
 * @typedef {object} DiagnoseOptions
 * @property {string} [url] WebSocket URL to check (default: the client's)
 * @property {string} [plainUrl] for a wss URL: the agent's plain ws URL, to tell "untrusted certificate" from
 *   "not running" (default: the client's wsUrl)
 * @property {number} [timeout] ms per probe (default 3000)
 * @property {string} [lang] language of `message`
 * @property {VersionRequirement} [minVersion]
 * @property {boolean} [secureContext] override window.isSecureContext
 *
 * @typedef {{outcome: 'answered' | 'bad-reply' | 'failed' | 'timeout', opened: boolean, ms: number,
 *   closeCode?: number, error?: string}} WebSocketProbe
 * @typedef {{url: string, outcome: 'answered' | 'opaque' | 'failed' | 'timeout' | 'unsupported',
 *   agent: 'eimzo-agent' | 'E-IMZO' | null, httpStatus?: number}} HttpProbe
 *
 * @typedef {object} Diagnosis
 * @property {DiagnosisStatus} status
 * @property {boolean} ok
 * @property {'eimzo-agent' | 'E-IMZO' | null} agent
 * @property {VersionInfo | null} version
 * @property {string} url
 * @property {PermissionStateOrUnsupported} permission
 * @property {{websocket: WebSocketProbe, http: HttpProbe, plainHttp: HttpProbe | null}} checks
 * @property {AdminFix | null} admin for 'lna-denied' and 'lna-prompt' on a page with an origin: the browser
 *   policies that let this site reach the agent without asking, and the command that writes them
 * @property {Language} lang
 * @property {string} message in `lang`
 * @property {Record<Language, string>} messages
 *
 * @typedef {object} AdminFix
 * @property {string} site the page's origin, as the policies name it
 * @property {string[]} policies LNA_POLICIES
 * @property {string} command `eimzo-agent policy browser --site <site>`
 *
 * @typedef {object} Request
 * @property {string} frame
 * @property {string} label
 * @property {(reply: any) => void} resolve
 * @property {(error: Error) => void} reject
 * @property {boolean} settled
 * @property {boolean} retried
 * @property {Channel | null} channel
 * @property {any} timer
 * @property {AbortSignal | undefined} signal
 * @property {(() => void) | undefined} onAbort
 */
