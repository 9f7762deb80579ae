/*
 * eimzo-agent compatibility layer, part 2 of 2: the `EIMZOClient` and `Base64` globals of E-IMZO's
 * e-imzo-client.js. Load it after compat/e-imzo.js (which defines CAPIWS).
 *
 * Written for eimzo-agent from the public description of E-IMZO's client behaviour (docs/js-client.md); it is not
 * the vendor's file. The methods, arguments and callbacks are the ones portals call today:
 *
 *   EIMZOClient.checkVersion(function (major, minor) {
 *     EIMZOClient.installApiKeys(function () {
 *       EIMZOClient.listAllUserKeys(itemIdGen, itemUiGen, function (items, firstId) { ... }, fail);
 *     }, fail);
 *   }, fail);
 *   EIMZOClient.loadKey(vo, function (keyId) {
 *     EIMZOClient.createPkcs7(keyId, 'text', null, function (pkcs7_64) { ... }, fail);
 *   }, fail);
 *
 * Every `fail` gets (error, reason): `error` is a transport failure (a WebSocket close code such as 1006, or an
 * exception) with reason null, or null with `reason` the agent's text.
 *
 * Differences from the vendor's client, all deliberate: alias values with escaped commas (`o=foo\, bar`) are read
 * as one value; Base64 encodes text as standard UTF-8 (characters outside the BMP included); ftjc tokens (E-IMZO
 * 3.36–4.11 only) are not listed. Licence: Apache-2.0.
 */
(function (global) {
  'use strict';

  function utf8ToBase64(text) {
    var bytes = new TextEncoder().encode(String(text));
    var binary = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return global.btoa(binary);
  }

  function base64ToUtf8(base64) {
    var binary = global.atob(String(base64));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  }

  /** Base64 of text: `Base64.encode(text)` signs the text as UTF-8; `Base64.decode` reverses it. */
  var Base64 = { encode: utf8ToBase64, decode: base64ToUtf8 };

  /**
   * Split "k=v,k=v" (an alias or an X.500 name) into [key, value] pairs; `\x` escapes x (so `\,` stays inside the
   * value). Keys are trimmed; values are kept as they are.
   */
  function splitPairs(text) {
    var pairs = [];
    var key = '';
    var value = '';
    var inValue = false;
    var s = String(text == null ? '' : text);
    for (var i = 0; i < s.length; i++) {
      var ch = s.charAt(i);
      if (ch === '\\') {
        i += 1;
        ch = s.charAt(i);
      } else if (ch === '=' && !inValue) {
        inValue = true;
        continue;
      } else if (ch === ',') {
        if (inValue && key.trim()) pairs.push([key.trim(), value]);
        key = '';
        value = '';
        inValue = false;
        continue;
      }
      if (inValue) value += ch;
      else key += ch;
    }
    if (inValue && key.trim()) pairs.push([key.trim(), value]);
    return pairs;
  }

  /** "2024.04.25 23:59:59" (local time) → Date, as E-IMZO's client reads it: '.' → '-', the space → 'T'. */
  function aliasDate(text) {
    return new Date(String(text).replace(/\./g, '-').replace(' ', 'T'));
  }

  function call(funcDef, onData, fail) {
    global.CAPIWS.callFunction(funcDef, function (event, data) {
      onData(data);
    }, function (e) {
      fail(e, null);
    });
  }

  var EIMZOClient = {
    /** E-IMZO ≥ 3.36: the pfx plugin. */
    NEW_API: false,
    /** E-IMZO ≥ 4.12: ID card; keys listed from .pfx files only. */
    NEW_API2: false,
    /** E-IMZO ≥ 4.86: BAIK tokens and CKC devices. */
    NEW_API3: false,

    /** The flat [domain, key, …] list installApiKeys() presents; portals put their own domain's key here. */
    API_KEYS: [
      'localhost',
      '96D0C1491615C82B9A54D9989779DF825B690748224C2B04F500F370D51827CE' +
        '2644D8D4A82C18184D73AB8530BB8ED537269603F61DB0D03D2104ABF789970B',
      '127.0.0.1',
      'A7BCFA5D490B351BE0754130DF03A068F855DB4333D43921125B9CF2670EF6A4' +
        '0370C646B90401955E1F7BC9CDBF59CE0B2C5467D820BE189C845D0B79CFC96F',
    ],

    /** success(major, minor); sets NEW_API, NEW_API2, NEW_API3 from major*100+minor. */
    checkVersion: function (success, fail) {
      global.CAPIWS.version(function (event, data) {
        if (data.success === true) {
          if (data.major && data.minor) {
            var installed = parseInt(data.major, 10) * 100 + parseInt(data.minor, 10);
            EIMZOClient.NEW_API = installed >= 336;
            EIMZOClient.NEW_API2 = installed >= 412;
            EIMZOClient.NEW_API3 = installed >= 486;
            success(data.major, data.minor);
          } else {
            fail(null, 'E-IMZO Version is undefined');
          }
        } else {
          fail(null, data.reason);
        }
      }, function (e) {
        fail(e, null);
      });
    },

    /** success() once the agent accepted API_KEYS. */
    installApiKeys: function (success, fail) {
      global.CAPIWS.apikey(EIMZOClient.API_KEYS, function (event, data) {
        if (data.success) success();
        else fail(null, data.reason);
      }, function (e) {
        fail(e, null);
      });
    },

    /**
     * List the user's keys. For each usable key, itemIdGen(vo, index) gives an id and itemUiGen(id, vo) the item
     * (e.g. an <option>); success(items, firstId) gets the items, and the id when there is exactly one key.
     * Keys whose certificate has neither a TIN nor a PINFL are skipped.
     */
    listAllUserKeys: function (itemIdGen, itemUiGen, success, fail) {
      if (!EIMZOClient.NEW_API) {
        fail(null, 'Please install new version of E-IMZO');
        return;
      }
      var items = [];
      var errors = [];
      EIMZOClient._findPfxs2(itemIdGen, itemUiGen, items, errors, function (firstId) {
        if (items.length === 0 && errors.length > 0) {
          fail(errors[0].e, errors[0].r);
        } else {
          success(items, items.length === 1 ? firstId : null);
        }
      });
    },

    /** success(true|false): whether a smart-card reader is connected (E-IMZO ≥ 4.12). */
    idCardIsPLuggedIn: function (success, fail) {
      if (!EIMZOClient.NEW_API2) {
        fail(null, 'E-IMZO version should be 4.12 or newer');
        return;
      }
      call({ plugin: 'idcard', name: 'list_readers' }, function (data) {
        if (data.success) success(data.readers.length > 0);
        else fail(null, data.reason);
      }, fail);
    },

    /** success(true|false): whether a BAIK token is connected (E-IMZO ≥ 4.86). */
    isBAIKTokenPLuggedIn: function (success, fail) {
      if (!EIMZOClient.NEW_API3) {
        fail(null, 'E-IMZO version should be 4.86 or newer');
        return;
      }
      call({ plugin: 'baikey', name: 'list_tokens' }, function (data) {
        if (data.success) success(data.tokens.length > 0);
        else fail(null, data.reason);
      }, fail);
    },

    /** success(true|false): whether a CKC device is connected (E-IMZO ≥ 4.86). */
    isCKCPLuggedIn: function (success, fail) {
      if (!EIMZOClient.NEW_API3) {
        fail(null, 'E-IMZO version should be 4.86 or newer');
        return;
      }
      call({ plugin: 'ckc', name: 'list_ckc' }, function (data) {
        if (data.success) success(data.devices.length > 0);
        else fail(null, data.reason);
      }, fail);
    },

    /**
     * Load the key of an item from listAllUserKeys(): success(keyId). With verifyPassword the agent asks the
     * password right away (pfx.verify_password) and success follows only when it was right.
     */
    loadKey: function (itemObject, success, fail, verifyPassword) {
      if (!itemObject) {
        fail(null, 'No key selected');
        return;
      }
      var vo = itemObject;
      if (vo.type === 'pfx') {
        call({ plugin: 'pfx', name: 'load_key', arguments: [vo.disk, vo.path, vo.name, vo.alias] }, function (data) {
          if (!data.success) {
            fail(null, data.reason);
            return;
          }
          var id = data.keyId;
          if (!verifyPassword) {
            success(id);
            return;
          }
          call({ plugin: 'pfx', name: 'verify_password', arguments: [id] }, function (checked) {
            if (checked.success) success(id);
            else fail(null, checked.reason);
          }, fail);
        }, fail);
      } else if (vo.type === 'ftjc') {
        call({ plugin: 'ftjc', name: 'load_key', arguments: [vo.cardUID] }, function (data) {
          if (!data.success) {
            fail(null, data.reason);
            return;
          }
          var id = data.keyId;
          if (!verifyPassword) {
            success(id);
            return;
          }
          call({ plugin: 'ftjc', name: 'verify_pin', arguments: [id, '1'] }, function (checked) {
            if (checked.success) success(id);
            else fail(null, checked.reason);
          }, fail);
        }, fail);
      } else {
        fail(null, 'Unknown key type: ' + vo.type);
      }
    },

    /** Change the password of an item's key; the agent asks the current and the new password. success(). */
    changeKeyPassword: function (itemObject, success, fail) {
      if (!itemObject) {
        fail(null, 'No key selected');
        return;
      }
      var vo = itemObject;
      if (vo.type === 'pfx') {
        call({ plugin: 'pfx', name: 'load_key', arguments: [vo.disk, vo.path, vo.name, vo.alias] }, function (data) {
          if (!data.success) {
            fail(null, data.reason);
            return;
          }
          call({ plugin: 'pfx', name: 'change_password', arguments: [data.keyId] }, function (changed) {
            if (changed.success) success();
            else fail(null, changed.reason);
          }, fail);
        }, fail);
      } else if (vo.type === 'ftjc') {
        call({ plugin: 'ftjc', name: 'load_key', arguments: [vo.cardUID] }, function (data) {
          if (!data.success) {
            fail(null, data.reason);
            return;
          }
          call({ plugin: 'ftjc', name: 'change_pin', arguments: [data.keyId, '1'] }, function (changed) {
            if (changed.success) success();
            else fail(null, changed.reason);
          }, fail);
        }, fail);
      } else {
        fail(null, 'Unknown key type: ' + vo.type);
      }
    },

    /**
     * Sign `data` with a loaded key (or 'idcard' / 'baikey' / 'ckc'): success(pkcs7_64).
     * data is text (signed as UTF-8) unless isDataBase64Encoded === true; detached === true gives a detached
     * signature. timestamper, when given, is called as timestamper(signature_hex, function (tst) {…}, fail) and
     * the token it passes back is attached to the signature before success.
     */
    createPkcs7: function (id, data, timestamper, success, fail, detached, isDataBase64Encoded) {
      var data64 = isDataBase64Encoded === true ? data : Base64.encode(data);
      var mode = detached === true ? 'yes' : 'no';
      call({ plugin: 'pkcs7', name: 'create_pkcs7', arguments: [data64, id, mode] }, function (signed) {
        if (!signed.success) {
          fail(null, signed.reason);
          return;
        }
        var pkcs7 = signed.pkcs7_64;
        if (!timestamper) {
          success(pkcs7);
          return;
        }
        timestamper(signed.signature_hex, function (tst) {
          call({
            plugin: 'pkcs7',
            name: 'attach_timestamp_token_pkcs7',
            arguments: [pkcs7, signed.signer_serial_number, tst]
          }, function (stamped) {
            if (stamped.success) success(stamped.pkcs7_64);
            else fail(null, stamped.reason);
          }, fail);
        }, fail);
      }, fail);
    },

    /** The value of field `f` (e.g. "CN") in an X.500 name or alias string `s`; undefined when absent. */
    _getX500Val: function (s, f) {
      var pairs = splitPairs(s);
      for (var i = 0; i < pairs.length; i++) {
        if (pairs[i][0] === f) return pairs[i][1];
      }
      return undefined;
    },

    /** The item object of one list_all_certificates entry, or null when it has neither TIN nor PINFL. */
    _pfxItem: function (cert) {
      var fields = {};
      var pairs = splitPairs(String(cert.alias).toUpperCase());
      for (var i = 0; i < pairs.length; i++) {
        var key = pairs[i][0];
        if (key === '1.2.860.3.16.1.1') key = 'INN';
        else if (key === '1.2.860.3.16.1.2') key = 'PINFL';
        if (!Object.prototype.hasOwnProperty.call(fields, key)) fields[key] = pairs[i][1];
      }
      var tin = fields.INN || fields.UID;
      if (!tin && !fields.PINFL) return null;
      return {
        disk: cert.disk,
        path: cert.path,
        name: cert.name,
        alias: cert.alias,
        serialNumber: fields.SERIALNUMBER,
        validFrom: aliasDate(fields.VALIDFROM),
        validTo: aliasDate(fields.VALIDTO),
        CN: fields.CN,
        TIN: tin,
        UID: fields.UID,
        PINFL: fields.PINFL,
        O: fields.O,
        T: fields.T,
        type: 'pfx'
      };
    },

    /** Fill `items` from pfx.list_all_certificates; callback(firstId) when done (errors go into `errors`). */
    _findPfxs2: function (itemIdGen, itemUiGen, items, errors, callback) {
      var firstId = null;
      global.CAPIWS.callFunction({ plugin: 'pfx', name: 'list_all_certificates' }, function (event, data) {
        if (data.success) {
          var certificates = data.certificates || [];
          for (var index = 0; index < certificates.length; index++) {
            var vo = EIMZOClient._pfxItem(certificates[index]);
            if (!vo) continue;
            var id = itemIdGen(vo, index);
            if (!firstId) firstId = id;
            items.push(itemUiGen(id, vo));
          }
        } else {
          errors.push({ e: null, r: data.reason });
        }
        callback(firstId);
      }, function (e) {
        errors.push({ e: e, r: null });
        callback(firstId);
      });
    }
  };

  global.EIMZOClient = EIMZOClient;
  global.Base64 = Base64;
})(typeof window !== 'undefined' ? window : globalThis);
