/*
 * eimzo-agent compatibility layer, part 1 of 2: the `CAPIWS` global of E-IMZO's e-imzo.js.
 *
 * Written for eimzo-agent from the public description of E-IMZO's wire protocol (docs/js-client.md); it is not
 * the vendor's file. A portal switches by loading this file instead of the vendor's e-imzo.js; the calls and
 * callbacks are the same:
 *
 *   CAPIWS.callFunction({plugin: 'pfx', name: 'list_all_certificates'},
 *     function (event, data) { ... data.success, data.certificates ... },
 *     function (error) { ... a WebSocket close code such as 1006 (nothing listens), or an exception ... });
 *
 * Each call opens its own WebSocket, sends one JSON frame, and closes the socket after the single reply.
 * Licence: Apache-2.0.
 */
(function (global) {
  'use strict';

  // The E-IMZO browser extension provides the same object without sockets; use it when present.
  if (typeof global.EIMZOEXT !== 'undefined' && global.EIMZOEXT) {
    global.CAPIWS = global.EIMZOEXT;
    return;
  }

  var secure = !!(global.location && String(global.location.protocol).toLowerCase() === 'https:');

  var CAPIWS = {
    /** Where the agent listens: wss on https pages, ws otherwise. Portals and tests may set another URL. */
    URL: (secure ? 'wss://127.0.0.1:64443' : 'ws://127.0.0.1:64646') + '/service/cryptapi',

    /**
     * Call one agent function.
     * @param {{plugin?: string, name: string, arguments?: Array<string>}} funcDef
     * @param {function(Event, Object)} callback gets the message event and the parsed reply
     * @param {function(*)} error gets the close code (e.g. 1006) when the socket closes without a reply, or the
     *   exception when the socket cannot be created or the reply is not JSON
     */
    callFunction: function (funcDef, callback, error) {
      var WebSocketClass = global.WebSocket;
      if (!WebSocketClass) {
        error(new Error('WebSocket is not supported by this browser'));
        return;
      }
      var socket;
      try {
        socket = new WebSocketClass(CAPIWS.URL);
      } catch (e) {
        error(e);
        return;
      }
      var answered = false;
      socket.onerror = function () {
        // A close event follows every error; it reports the failure (once).
      };
      socket.onclose = function (event) {
        if (!answered && event.code !== 1000) error(event.code);
      };
      socket.onmessage = function (event) {
        if (answered) return;
        answered = true;
        var data;
        try {
          data = JSON.parse(event.data);
        } catch (e) {
          socket.close();
          error(e);
          return;
        }
        socket.close();
        callback(event, data);
      };
      socket.onopen = function () {
        socket.send(JSON.stringify(funcDef));
      };
    },

    /** The agent's version: callback(event, {success, major, minor, …}). */
    version: function (callback, error) {
      CAPIWS.callFunction({ name: 'version' }, callback, error);
    },

    /** Every plugin and function the agent offers: callback(event, [ {name, description, functions} … ]). */
    apidoc: function (callback, error) {
      CAPIWS.callFunction({ name: 'apidoc' }, callback, error);
    },

    /** Present API keys: domainAndKey is the flat [domain, key, domain, key, …] list. */
    apikey: function (domainAndKey, callback, error) {
      CAPIWS.callFunction({ name: 'apikey', arguments: domainAndKey }, callback, error);
    }
  };

  global.CAPIWS = CAPIWS;

  // Base64 of text as UTF-8 (some portals use it with CAPIWS directly); e-imzo-client.js defines the same.
  if (!global.Base64) {
    global.Base64 = {
      encode: function (text) {
        var bytes = new TextEncoder().encode(String(text));
        var binary = '';
        for (var i = 0; i < bytes.length; i += 0x8000) {
          binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return global.btoa(binary);
      },
      decode: function (base64) {
        var binary = global.atob(String(base64));
        var bytes = new Uint8Array(binary.length);
        for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        return new TextDecoder().decode(bytes);
      }
    };
  }
})(typeof window !== 'undefined' ? window : globalThis);
