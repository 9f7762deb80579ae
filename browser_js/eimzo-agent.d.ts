// Type declarations for the eimzo-agent browser client (eimzo-agent.mjs; the classic script eimzo-agent.js
// defines the same API as the global `EimzoAgent`). Guide: docs/js-client.md.

export declare const CLIENT_VERSION: string;
export declare const DEFAULT_WS_URL: string;
export declare const DEFAULT_WSS_URL: string;
export declare const MIN_VERSION: Readonly<{ major: number; minor: number }>;
/** The vendor's published API keys for localhost and 127.0.0.1 (not its key for "null"), as a flat [domain, key, …] list. */
export declare const PUBLISHED_API_KEYS: ReadonlyArray<string>;
export declare const LANGUAGES: ReadonlyArray<Language>;

export declare const Status: Readonly<{
  OK: 1;
  FUNCTION_NOT_FOUND: 0;
  KEY_NOT_FOUND: -1010;
  KEY_PAIR_NOT_FOUND: -1011;
  YTKS_KEY_ID_NOT_FOUND: -1013;
  PFX_KEY_ID_NOT_FOUND: -1014;
  KEY_ID_MISMATCH: -1015;
  APIKEY_INVALID: -1020;
  DOMAIN_UNKNOWN: -1021;
  DOMAIN_NOT_ALLOWED: -1022;
  PASSWORD_CANCELLED: -5000;
  OPERATION_CANCELLED: -5001;
  CANCELLED_BY_USER: -5002;
  OTHER: -9999;
}>;

export type Language = 'uz' | 'kaa' | 'ru' | 'en';
export type DiagnosisStatus =
  | 'ok'
  | 'not-running'
  | 'port-busy'
  | 'tls-untrusted'
  | 'lna-denied'
  | 'lna-prompt'
  | 'insecure-page'
  | 'too-old'
  | 'unknown';
export type PermissionStateOrUnsupported = 'granted' | 'denied' | 'prompt' | 'unsupported';
/** `{major: 6, minor: 0}`, `600` (major*100+minor) or `"6.0"`. */
export type VersionRequirement = { major: number; minor?: number } | number | string;
/** `{domain: key}`, `[[domain, key], …]` or E-IMZO's flat `[domain, key, domain, key, …]`. */
export type ApiKeys = Record<string, string> | ReadonlyArray<string> | ReadonlyArray<ReadonlyArray<string>>;
export type SignableData = string | ArrayBuffer | ArrayBufferView | Blob;

/** Error codes: UNAVAILABLE, CONNECTION_LOST, TIMEOUT, ABORTED, BAD_REPLY, VERSION_TOO_OLD and AgentError's codes. */
export type ErrorCode =
  | 'UNAVAILABLE'
  | 'CONNECTION_LOST'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'BAD_REPLY'
  | 'VERSION_TOO_OLD'
  | 'PORTAL_ERROR'
  | AgentErrorCode
  | 'ERROR';
export type AgentErrorCode =
  | 'FUNCTION_NOT_FOUND'
  | 'CANCELLED'
  | 'DOMAIN_NOT_ALLOWED'
  | 'KEY_NOT_LOADED'
  | 'WRONG_PASSWORD'
  | 'AGENT_ERROR';

export declare class EimzoError extends Error {
  constructor(message: string, details?: { code?: string; status?: number; reason?: string; cause?: unknown });
  readonly code: ErrorCode;
  /** E-IMZO's `status` when the agent answered. */
  readonly status?: number;
  /** E-IMZO's `reason` when the agent answered. */
  readonly reason?: string;
  readonly cause?: unknown;
}
export declare class AgentUnavailableError extends EimzoError {
  readonly code: 'UNAVAILABLE';
  readonly closeCode?: number;
  readonly url?: string;
}
export declare class ConnectionLostError extends EimzoError {
  readonly code: 'CONNECTION_LOST';
  readonly closeCode?: number;
}
export declare class RequestTimeoutError extends EimzoError {
  readonly code: 'TIMEOUT';
  readonly timeout: number;
}
export declare class AbortedError extends EimzoError {
  readonly code: 'ABORTED';
}
export declare class ProtocolError extends EimzoError {
  readonly code: 'BAD_REPLY';
}
export declare class AgentError extends EimzoError {
  constructor(status: number | undefined, reason: string | undefined);
  readonly code: AgentErrorCode;
  /** True when the user cancelled the password or PIN question. */
  readonly cancelled: boolean;
}
export declare class VersionError extends EimzoError {
  readonly code: 'VERSION_TOO_OLD';
  readonly installed: VersionInfo;
  readonly required: { major: number; minor: number };
}

/** The portal's server failed or refused, in login() or sign({timestampUrl}). */
export declare class PortalError extends EimzoError {
  constructor(
    message: string,
    details?: { url?: string; httpStatus?: number; status?: number; reason?: string; reply?: any; cause?: unknown },
  );
  readonly code: 'PORTAL_ERROR';
  /** The server's JSON `status` (e.g. -20: challenge expired or used), when it answered one. */
  readonly status?: number;
  /** The server's JSON `message`, when it gave one. */
  readonly reason?: string;
  /** The URL that failed. */
  readonly url?: string;
  /** The HTTP status, when the server answered. */
  readonly httpStatus?: number;
  /** The server's parsed JSON reply, when it sent one. */
  readonly reply?: any;
}

export interface ClientOptions {
  /** Agent WebSocket URL; default: `wssUrl` on https pages, else `wsUrl`. */
  url?: string;
  /** Default ws://127.0.0.1:64646/service/cryptapi */
  wsUrl?: string;
  /** Default wss://127.0.0.1:64443/service/cryptapi */
  wssUrl?: string;
  /** Treat the page as https (default: from location.protocol). */
  secure?: boolean;
  /** Share one socket between calls (default true). */
  keepConnection?: boolean;
  /** Milliseconds per call (default 30000). */
  timeout?: number;
  /** Milliseconds for calls that ask the user a password or PIN (default 360000). */
  interactiveTimeout?: number;
  /** Milliseconds to open a socket (default 10000). */
  connectTimeout?: number;
  /** The site's API keys, presented once before the first call that needs an approved domain. */
  apiKeys?: ApiKeys;
  /** For ensureVersion() and diagnose() (default 3.36). */
  minVersion?: VersionRequirement;
  /** WebSocket class (tests inject a fake). */
  WebSocket?: unknown;
  /** fetch function (diagnose). */
  fetch?: unknown;
  /** navigator.permissions (diagnose); null = none. */
  permissions?: unknown;
  /** The page's location (default globalThis.location); null = none. */
  location?: { protocol: string; hostname: string } | null;
}

export interface CallOptions {
  plugin?: string;
  timeout?: number;
  signal?: AbortSignal;
}

export interface SignOptions {
  /** Detached signature: the document is not inside the PKCS#7. */
  detached?: boolean;
  /** `data` is already Base64. */
  base64?: boolean;
  /** The portal's /frontend/timestamp/pkcs7: the PKCS#7 is posted there and comes back with a timestamp token. */
  timestampUrl?: string;
  /** Extra headers for the timestampUrl request (e.g. a CSRF token). */
  headers?: Record<string, string>;
  timeout?: number;
  signal?: AbortSignal;
}

export interface LoginOptions {
  /** GET, answers `{challenge, ttl, status: 1}` (E-IMZO-server's /frontend/challenge); `_uc` is added. */
  challengeUrl: string;
  /** POST, the PKCS#7 as the raw text body: the portal's backend, which checks it with /backend/auth. */
  authUrl: string;
  /** A keyId, a loadKey() result, or a listKeys() entry (loaded first). */
  key: string | LoadedKey | KeyInfo;
  signal?: AbortSignal;
  /** Extra headers for both requests (e.g. a CSRF token). */
  headers?: Record<string, string>;
}

export interface BatchDocument {
  /** Shown to the person in the agent's dialog. */
  name: string;
  /** The document: text (signed as UTF-8), bytes, or a Blob / File. */
  data?: SignableData;
  /** The document, already Base64. */
  data64?: string;
  /** Only its hash, made with the key's algorithm (SHA-256 for RSA/ECDSA, O'zDSt 1106 for O'zDSt): detached. */
  digestHex?: string;
}

export interface BatchProgress {
  /** "encoding": the page reads and encodes documents; "signing": sent, the agent's dialog shows the progress. */
  stage: 'encoding' | 'signing' | 'done';
  done: number;
  total: number;
}

export interface BatchOptions {
  /** Detached signatures: the documents are not inside the PKCS#7s. */
  detached?: boolean;
  onProgress?: (progress: BatchProgress) => void;
  timeout?: number;
  signal?: AbortSignal;
}

export interface BatchSignature {
  name: string;
  pkcs7?: string;
  signerSerialNumber?: string;
  signatureHex?: string;
  /** The person cancelled before this document was signed. */
  cancelled?: true;
  error?: string;
}

export interface BatchResult {
  signatures: BatchSignature[];
  signed: number;
  cancelled: number;
}

export interface VersionInfo {
  major: number;
  minor: number;
  patch: number | null;
  /** major*100+minor, as E-IMZO clients compare. */
  number: number;
  /** e.g. "6.4.7" */
  text: string;
  edition: string | null;
  /** "eimzo-agent" or "E-IMZO" */
  agent: string;
  agentVersion: string | null;
}

export interface KeyOwner {
  cn: string | null;
  /** Given name. */
  name: string | null;
  surname: string | null;
  /** Personal number (14 digits). */
  pinfl: string | null;
  /** The person's TIN. */
  tin: string | null;
  /** The organisation's TIN (legal-entity keys only). */
  orgTin: string | null;
  organisation: string | null;
  title: string | null;
  locality: string | null;
  region: string | null;
  country: string | null;
  businessCategory: string | null;
  /** Certificate serial number, lower-case hex. */
  serial: string | null;
  /** Local time, as the alias states it. */
  validFrom: Date | null;
  validTo: Date | null;
  expired: boolean;
  notYetValid: boolean;
  /** The key signs for an organisation (its certificate carries the organisation's TIN). */
  legalEntity: boolean;
  /** Every alias field; keys lower-case. */
  fields: Record<string, string>;
}

export interface KeyInfo extends KeyOwner {
  type: 'pfx' | 'token';
  alias: string;
  /** pfx: E-IMZO's disk, path ("" or "DSKEYS") and file name without .pfx */
  disk?: string;
  path?: string;
  fileName?: string;
  /** token */
  tokenId?: string;
  tokenLabel?: string;
  label?: string;
}

export interface LoadedKey {
  keyId: string;
  /** "PFX_KEY_STORE", "PKCS11_KEY_STORE", … */
  type: string;
}

export interface Signature {
  /** The CMS SignedData (PKCS#7), Base64 DER. */
  pkcs7: string;
  /** Signer certificate serial, lower-case hex. */
  signerSerialNumber: string;
  signatureHex: string;
  /** With `timestampUrl`: the portal's timestampedSignerList (empty when the PKCS#7 already had tokens). */
  timestampedSigners?: any[];
}

export interface DiagnoseOptions {
  /** WebSocket URL to check (default: the client's). */
  url?: string;
  /** For a wss URL: the agent's plain ws URL, to tell "untrusted certificate" from "not running". */
  plainUrl?: string;
  /** Milliseconds per probe (default 3000). */
  timeout?: number;
  /** Language of `message` (default: the page's or the browser's). */
  lang?: string;
  minVersion?: VersionRequirement;
  /** Override window.isSecureContext. */
  secureContext?: boolean;
}

export interface WebSocketProbe {
  outcome: 'answered' | 'bad-reply' | 'failed' | 'timeout';
  opened: boolean;
  ms: number;
  closeCode?: number;
  error?: string;
}

export interface HttpProbe {
  url: string;
  outcome: 'answered' | 'opaque' | 'failed' | 'timeout' | 'unsupported';
  agent: 'eimzo-agent' | 'E-IMZO' | null;
  httpStatus?: number;
}

export interface Diagnosis {
  status: DiagnosisStatus;
  ok: boolean;
  agent: 'eimzo-agent' | 'E-IMZO' | null;
  version: VersionInfo | null;
  url: string;
  permission: PermissionStateOrUnsupported;
  checks: { websocket: WebSocketProbe; http: HttpProbe; plainHttp: HttpProbe | null };
  /** For 'lna-denied' and 'lna-prompt': what an administrator sets so this site needs no permission. */
  admin: AdminFix | null;
  lang: Language;
  /** User-facing explanation in `lang` (for 'lna-denied' / 'lna-prompt' followed by the administrator's part). */
  message: string;
  messages: Record<Language, string>;
}

export interface AdminFix {
  /** The page's origin, as the policies name it, e.g. "https://my.gov.uz". */
  site: string;
  /** LNA_POLICIES. */
  policies: string[];
  /** `eimzo-agent policy browser --site <site>`: writes the policy files. */
  command: string;
}

export declare class EimzoClient {
  constructor(options?: ClientOptions);
  readonly url: string;
  readonly wsUrl: string;
  readonly wssUrl: string;
  readonly secure: boolean;
  /** False after the client fell back to a socket per call. */
  readonly usesKeptConnection: boolean;
  /** Any E-IMZO function; resolves with the reply (`success: true`), else rejects with an EimzoError. */
  call(name: string, args?: ReadonlyArray<string | number>, options?: CallOptions): Promise<any>;
  version(): Promise<VersionInfo>;
  ensureVersion(required?: VersionRequirement): Promise<VersionInfo>;
  /** Resolves with the Origin the agent saw; default keys: the apiKeys option, else PUBLISHED_API_KEYS. */
  installApiKeys(keys?: ApiKeys): Promise<string>;
  listKeys(options?: { tokens?: boolean; now?: Date }): Promise<KeyInfo[]>;
  /** Rejects with a TypeError naming the missing or malformed fields (nothing is sent) for a bad `key`. */
  loadKey(
    key: KeyInfo | { disk: string; path: string; name: string; alias: string } | { tokenId: string; alias: string },
  ): Promise<LoadedKey>;
  /** keyId from loadKey(), or "idcard" / "baikey" / "ckc". */
  sign(key: string | LoadedKey, data: SignableData, options?: SignOptions): Promise<Signature>;
  /** Challenge → attached signature → auth URL; resolves with the auth URL's JSON reply (status 1). */
  login(options: LoginOptions): Promise<any>;
  appendSignature(key: string | LoadedKey, pkcs7Base64: string, options?: CallOptions): Promise<Signature>;
  /** Many documents, one confirmation (eimzo-agent's batch.create_pkcs7); a key file's keyId. */
  signBatch(key: string | LoadedKey, documents: ReadonlyArray<BatchDocument>,
            options?: BatchOptions): Promise<BatchResult>;
  unloadKey(key: string | LoadedKey): Promise<void>;
  /** Never rejects. */
  diagnose(options?: DiagnoseOptions): Promise<Diagnosis>;
  close(): void;
}

export declare function splitAlias(alias: string): Record<string, string>;
export declare function parseAlias(alias: string, now?: Date): KeyOwner;
export declare function parseAliasDate(text: string | null | undefined): Date | null;
export declare function codeForStatus(status: number | undefined, reason: string | undefined): AgentErrorCode;
export declare function bytesToBase64(bytes: Uint8Array): string;
export declare function base64ToBytes(base64: string): Uint8Array;
export declare function dataToBase64(data: SignableData): Promise<string>;
export declare const MESSAGES: Readonly<Record<DiagnosisStatus, Readonly<Record<Language, string>>>>;
/** LocalNetworkAccessAllowedForUrls, LoopbackNetworkAllowedForUrls: the policies that let a site reach the agent. */
export declare const LNA_POLICIES: ReadonlyArray<string>;
/** The administrator's part of the 'lna-denied' / 'lna-prompt' texts; `{site}` is the page's origin. */
export declare const ADMIN_MESSAGES: Readonly<Record<Language, string>>;
/** With `params.site`, 'lna-denied' / 'lna-prompt' texts end with the administrator's part. */
export declare function explain(status: DiagnosisStatus, lang?: string, params?: Record<string, string>): string;
export declare function adminFix(status: DiagnosisStatus, site: string | null): AdminFix | null;
export declare function pickLanguage(tag?: string): Language;
export declare function localNetworkPermission(permissions: unknown): Promise<PermissionStateOrUnsupported>;

export as namespace EimzoAgent;
