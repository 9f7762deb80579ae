/**
 * In-process fakes for unit tests: a WebSocket class the tests drive by hand, and a scripted agent built on it.
 * The real agent and a real browser are exercised by tests/test_browser_e2e.py.
 */

/** Let pending timers and microtasks run (fake events are delivered with setTimeout 0, like real ones). */
export function settle(ms = 5) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A new WebSocket-like class whose instances record what the client does and let the test decide what the
 * "agent" does: `_open()`, `_message(data)`, `_closeFromServer(code)`, `_refuse()`.
 */
export function makeFakeWebSocket() {
  class FakeWebSocket {
    /** @param {string} url */
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      /** @type {string[]} */
      this.sent = [];
      /** @type {{code?: number, reason?: string} | null} */
      this.closedByClient = null;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      FakeWebSocket.instances.push(this);
    }

    /** @param {string} data */
    send(data) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      this.sent.push(data);
      FakeWebSocket.onSend?.(this, data);
    }

    /** @param {number} [code] @param {string} [reason] */
    close(code, reason) {
      if (this.readyState >= 2) return;
      this.closedByClient = { code, reason };
      this.readyState = 2;
      setTimeout(() => {
        this.readyState = 3;
        this.onclose?.({ code: code ?? 1005, reason: reason ?? '' });
      });
    }

    _open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    /** @param {unknown} data an object is sent as JSON */
    _message(data) {
      this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) });
    }

    /** @param {number} code */
    _closeFromServer(code = 1000) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason: '' });
    }

    /** Nothing listens: error, then close 1006, never open. */
    _refuse() {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }

    /** The requests sent on this socket, parsed. */
    get requests() {
      return this.sent.map((frame) => JSON.parse(frame));
    }
  }
  /** @type {FakeWebSocket[]} */
  FakeWebSocket.instances = [];
  /** @type {((socket: FakeWebSocket, data: string) => void) | null} */
  FakeWebSocket.onSend = null;
  return FakeWebSocket;
}

/**
 * A fake agent: every socket opens at once; each request frame is answered with `handle(request)` (an object;
 * undefined = no answer). Like E-IMZO, a socket without ?keepConnection gets one reply and is closed with 1000,
 * and frames after that reply are ignored; `keep: false` makes the agent ignore ?keepConnection too.
 * @param {{handle: (request: any, socket: any) => any, keep?: boolean, refuse?: boolean}} options
 */
export function fakeAgent({ handle, keep = true, refuse = false }) {
  const FakeWebSocket = makeFakeWebSocket();
  /** @type {any[]} */
  const requests = [];
  class AgentSocket extends FakeWebSocket {
    /** @param {string} url */
    constructor(url) {
      super(url);
      this.answered = false;
      setTimeout(() => (refuse ? this._refuse() : this._open()));
    }

    /** @param {string} data */
    send(data) {
      super.send(data);
      const keeps = keep && /[?&]keepConnection/.test(this.url);
      if (this.answered && !keeps) return; // E-IMZO ignores a second frame on a one-call socket
      const request = JSON.parse(data);
      requests.push(request);
      const reply = handle(request, this);
      if (reply === undefined) return;
      this.answered = true;
      setTimeout(() => {
        if (this.readyState !== 1) return;
        this._message(reply);
        if (!keeps) this._closeFromServer(1000);
      });
    }
  }
  AgentSocket.instances = FakeWebSocket.instances;
  return { WebSocket: AgentSocket, sockets: FakeWebSocket.instances, requests };
}

/** An alias as eimzo-agent and E-IMZO write it (lower case, escaped commas). */
export const LEGAL_ALIAS =
  'cn=karimova nodira,name=nodira,surname=karimova,l=yunusobod tumani,st=toshkent shahri,c=uz,' +
  'o=yangi texnologiyalar\\, mchj,uid=498765432,1.2.860.3.16.1.2=41234567890124,t=direktor,' +
  '1.2.860.3.16.1.1=301234567,businesscategory=mchj,serialnumber=7283d8ca,validfrom=2024.04.25 17:42:58,' +
  'validto=2099.04.25 23:59:59';

export const INDIVIDUAL_ALIAS =
  'cn=aliyev vali,name=vali,surname=aliyev,c=uz,uid=512345678,1.2.860.3.16.1.2=31234567890123,' +
  'serialnumber=1a2b,validfrom=2020.01.01 00:00:00,validto=2021.01.01 00:00:00';

export const NO_IDS_ALIAS = 'cn=test only,c=uz,serialnumber=ff,validfrom=2024.01.01 00:00:00,validto=2099.01.01 00:00:00';
