/**
 * A compact DER/BER reader for the demo portal: enough of ASN.1 to show who signed a CMS (PKCS#7) SignedData —
 * signer certificate subject, serial, signing time, digest and signature algorithms, attached content.
 * It displays; it does not verify (the agent's signatures are checked with `openssl cms -verify` in the tests).
 */

/** Names of the object identifiers the demo shows. */
export const OID_NAMES = Object.freeze({
  '1.2.840.113549.1.7.1': 'data',
  '1.2.840.113549.1.7.2': 'signedData',
  '1.2.840.113549.1.9.3': 'contentType',
  '1.2.840.113549.1.9.4': 'messageDigest',
  '1.2.840.113549.1.9.5': 'signingTime',
  '1.2.840.113549.1.9.16.2.47': 'signingCertificateV2',
  '1.3.14.3.2.26': 'SHA-1',
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
  '1.2.860.3.15.1.3.2.1.1': "O'zDSt 1106:2009-2",
  '1.2.860.3.15.2.3.2.1.1': "O'zMSt 286:2024-2",
  '1.2.840.113549.1.1.1': 'RSA',
  '1.2.840.113549.1.1.11': 'SHA-256 with RSA',
  '1.2.840.113549.1.1.12': 'SHA-384 with RSA',
  '1.2.840.113549.1.1.13': 'SHA-512 with RSA',
  '1.2.840.10045.2.1': 'EC',
  '1.2.840.10045.4.3.2': 'ECDSA with SHA-256',
  '1.2.840.10045.4.3.3': 'ECDSA with SHA-384',
  '1.2.860.3.15.1.1.2.2.2.2': "O'zDSt 1092:2009-2 with O'zDSt 1106:2009-2",
  '1.2.860.3.15.2.1.2.2.2.2': "O'zMSt 285:2024-2 with O'zMSt 286:2024-2",
});

/** Labels of name attributes, as E-IMZO writes them. */
export const NAME_LABELS = Object.freeze({
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SURNAME',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'T',
  '2.5.4.15': 'BusinessCategory',
  '2.5.4.42': 'Name',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.860.3.16.1.1': 'TIN',
  '1.2.860.3.16.1.2': 'PINFL',
  '1.2.840.113549.1.9.1': 'E',
});

/**
 * @typedef {object} Node
 * @property {number} tag the identifier octet (class, constructed bit and tag number < 31)
 * @property {boolean} constructed
 * @property {number} start offset of the content
 * @property {number} end offset after the content (before the end-of-contents octets of an indefinite length)
 * @property {number} next offset after the whole element
 * @property {Uint8Array} bytes the whole buffer
 */

/**
 * Read the element at `offset`.
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @returns {Node}
 */
export function readNode(bytes, offset = 0) {
  if (offset + 2 > bytes.length) throw new Error(`DER: truncated at ${offset}`);
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: high tag numbers are not supported');
  const constructed = (tag & 0x20) !== 0;
  let pos = offset + 1;
  const first = bytes[pos++];
  if (first === 0x80) {
    // BER indefinite length (E-IMZO's streaming output): children up to the end-of-contents octets 00 00.
    if (!constructed) throw new Error('DER: indefinite length on a primitive element');
    let child = pos;
    while (!(bytes[child] === 0 && bytes[child + 1] === 0)) {
      if (child >= bytes.length) throw new Error('DER: missing end-of-contents');
      child = readNode(bytes, child).next;
    }
    return { tag, constructed, start: pos, end: child, next: child + 2, bytes };
  }
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new Error('DER: length too large');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[pos++];
  }
  const end = pos + length;
  if (end > bytes.length) throw new Error(`DER: element at ${offset} runs past the end`);
  return { tag, constructed, start: pos, end, next: end, bytes };
}

/**
 * The children of a constructed element.
 * @param {Node} node
 * @returns {Node[]}
 */
export function children(node) {
  const list = [];
  for (let pos = node.start; pos < node.end; ) {
    const child = readNode(node.bytes, pos);
    list.push(child);
    pos = child.next;
  }
  return list;
}

/** @param {Node} node @returns {Uint8Array} */
function content(node) {
  return node.bytes.subarray(node.start, node.end);
}

/**
 * The bytes of an OCTET STRING, primitive or (BER) constructed from pieces.
 * @param {Node} node
 * @returns {Uint8Array}
 */
function octets(node) {
  if (!node.constructed) return content(node);
  const parts = children(node).map(octets);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

/**
 * Dotted text of an OBJECT IDENTIFIER.
 * @param {Node} node
 * @returns {string}
 */
export function oid(node) {
  const data = content(node);
  const parts = [];
  let value = 0;
  for (const byte of data) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * An INTEGER as lower-case hex without leading zeros (how E-IMZO writes certificate serials).
 * @param {Node} node
 * @returns {string}
 */
export function integerHex(node) {
  const hex = Array.from(content(node), (b) => b.toString(16).padStart(2, '0')).join('');
  return hex.replace(/^0+(?=.)/, '');
}

/**
 * A string of any ASN.1 string type.
 * @param {Node} node
 * @returns {string}
 */
export function text(node) {
  const data = content(node);
  switch (node.tag) {
    case 0x0c: // UTF8String
      return new TextDecoder('utf-8').decode(data);
    case 0x1e: { // BMPString: UTF-16BE
      let out = '';
      for (let i = 0; i + 1 < data.length; i += 2) out += String.fromCharCode((data[i] << 8) | data[i + 1]);
      return out;
    }
    case 0x1c: { // UniversalString: UTF-32BE
      let out = '';
      for (let i = 0; i + 3 < data.length; i += 4) {
        out += String.fromCodePoint(((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0);
      }
      return out;
    }
    default: // PrintableString, IA5String, NumericString, T61String, VisibleString: one byte per character
      return String.fromCharCode(...data);
  }
}

/**
 * UTCTime or GeneralizedTime as a Date.
 * @param {Node} node
 * @returns {Date | null}
 */
export function time(node) {
  const s = text(node);
  const m = node.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(s)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$/.exec(s);
  if (!m) return null;
  let year = Number(m[1]);
  if (node.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] || 0)));
}

/**
 * An X.500 Name as [label, value] pairs in certificate order.
 * @param {Node} node
 * @returns {Array<[string, string]>}
 */
export function nameFields(node) {
  /** @type {Array<[string, string]>} */
  const fields = [];
  for (const rdn of children(node)) {
    for (const attribute of children(rdn)) {
      const [type, value] = children(attribute);
      const id = oid(type);
      fields.push([NAME_LABELS[/** @type {keyof typeof NAME_LABELS} */ (id)] || id, text(value)]);
    }
  }
  return fields;
}

/** @param {Array<[string, string]>} fields @returns {string} */
export function formatName(fields) {
  return fields.map(([label, value]) => `${label}=${value.replace(/([,+\\])/g, '\\$1')}`).join(', ');
}

/** @param {string} id @returns {string} */
export function oidName(id) {
  return OID_NAMES[/** @type {keyof typeof OID_NAMES} */ (id)] || id;
}

/**
 * @typedef {object} CertificateSummary
 * @property {string} serial lower-case hex
 * @property {Array<[string, string]>} subject
 * @property {Array<[string, string]>} issuer
 * @property {Date | null} notBefore
 * @property {Date | null} notAfter
 *
 * @typedef {object} SignerSummary
 * @property {string | null} serial signer certificate serial (from issuerAndSerialNumber)
 * @property {Array<[string, string]>} issuer
 * @property {CertificateSummary | null} certificate the matching certificate from the CMS, if included
 * @property {Date | null} signingTime
 * @property {string} digestAlgorithm
 * @property {string} signatureAlgorithm
 *
 * @typedef {object} SignedDataSummary
 * @property {boolean} attached whether the document is inside
 * @property {Uint8Array | null} content the document, when attached
 * @property {string} contentType
 * @property {string[]} digestAlgorithms
 * @property {CertificateSummary[]} certificates
 * @property {SignerSummary[]} signers
 */

/**
 * @param {Node} node a Certificate
 * @returns {CertificateSummary}
 */
function certificateSummary(node) {
  const tbs = children(children(node)[0]);
  let i = 0;
  if (tbs[0].tag === 0xa0) i += 1; // [0] version
  const serial = integerHex(tbs[i]);
  const issuer = nameFields(tbs[i + 2]);
  const [notBefore, notAfter] = children(tbs[i + 3]).map(time);
  const subject = nameFields(tbs[i + 4]);
  return { serial, subject, issuer, notBefore, notAfter };
}

/**
 * Decode a CMS ContentInfo holding SignedData (DER, or E-IMZO's BER).
 * @param {Uint8Array} bytes
 * @returns {SignedDataSummary}
 */
export function decodeSignedData(bytes) {
  const contentInfo = readNode(bytes, 0);
  const [type, wrapped] = children(contentInfo);
  if (oid(type) !== '1.2.840.113549.1.7.2') throw new Error(`not a SignedData but ${oid(type)}`);
  const fields = children(children(wrapped)[0]);
  let i = 1; // after version
  const digestAlgorithms = children(fields[i++]).map((alg) => oidName(oid(children(alg)[0])));
  const encap = children(fields[i++]);
  const contentType = oidName(oid(encap[0]));
  const eContent = encap[1] ? octets(children(encap[1])[0]) : null;
  /** @type {CertificateSummary[]} */
  let certificates = [];
  if (fields[i].tag === 0xa0) {
    certificates = children(fields[i++]).filter((c) => c.tag === 0x30).map(certificateSummary);
  }
  if (fields[i].tag === 0xa1) i += 1; // CRLs
  const signers = children(fields[i]).map((signerInfo) => {
    const parts = children(signerInfo);
    const sid = parts[1];
    let serial = null;
    /** @type {Array<[string, string]>} */
    let issuer = [];
    if (sid.tag === 0x30) {
      const [issuerNode, serialNode] = children(sid);
      issuer = nameFields(issuerNode);
      serial = integerHex(serialNode);
    }
    const digestAlgorithm = oidName(oid(children(parts[2])[0]));
    let k = 3;
    let signingTime = null;
    if (parts[k].tag === 0xa0) {
      for (const attribute of children(parts[k])) {
        const [attrType, values] = children(attribute);
        if (oid(attrType) === '1.2.840.113549.1.9.5') signingTime = time(children(values)[0]);
      }
      k += 1;
    }
    const signatureAlgorithm = oidName(oid(children(parts[k])[0]));
    const certificate = certificates.find((c) => c.serial === serial) || null;
    return { serial, issuer, certificate, signingTime, digestAlgorithm, signatureAlgorithm };
  });
  return { attached: eContent !== null, content: eContent, contentType, digestAlgorithms, certificates, signers };
}
