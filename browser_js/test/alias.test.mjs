import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseAlias, parseAliasDate, splitAlias } from '../eimzo-agent.mjs';
import { INDIVIDUAL_ALIAS, LEGAL_ALIAS } from '../testing/fakes.mjs';

// The real alias of a Windows E-IMZO key (public Didox sample), values made up by Didox.
const DIDOX_ALIAS =
  'cn=fio,name=имя,surname=фамилия,l=район,st=город,c=uz,o=название компании,uid=324543543,' +
  '1.2.860.3.16.1.2=32610793225581,t=direktor,1.2.860.3.16.1.1=242141224,' +
  'businesscategory=masʼuliyati cheklangan jamiyat,serialnumber=71c4eb12,validfrom=2022.04.25 17:42:58,' +
  'validto=2024.04.25 23:59:59';

test('splitAlias keeps an escaped comma inside its value', () => {
  const fields = splitAlias(LEGAL_ALIAS);
  assert.equal(fields.o, 'yangi texnologiyalar, mchj');
  assert.equal(fields.uid, '498765432'); // the field after the escaped comma is still found
  assert.equal(fields['1.2.860.3.16.1.1'], '301234567');
});

test('splitAlias: escaped backslash, equals sign and plus; keys lower-cased and trimmed; first value wins', () => {
  const fields = splitAlias('CN=a\\\\b\\=c\\+d, O=first,o=second,broken,=novalue,t=');
  assert.equal(fields.cn, 'a\\b=c+d');
  assert.equal(fields.o, 'first');
  assert.equal(fields.t, '');
  assert.equal('broken' in fields, false);
  assert.equal('' in fields, false);
});

test('splitAlias: a value may hold "=" and an escape at the very end is dropped', () => {
  assert.deepEqual(splitAlias('cn=a=b,o=x\\'), { cn: 'a=b', o: 'x' });
  assert.deepEqual(splitAlias(''), {});
});

test('parseAlias reads a legal-entity key', () => {
  const owner = parseAlias(LEGAL_ALIAS, new Date(2025, 0, 1));
  assert.equal(owner.cn, 'karimova nodira');
  assert.equal(owner.name, 'nodira');
  assert.equal(owner.surname, 'karimova');
  assert.equal(owner.pinfl, '41234567890124');
  assert.equal(owner.tin, '498765432');
  assert.equal(owner.orgTin, '301234567');
  assert.equal(owner.organisation, 'yangi texnologiyalar, mchj');
  assert.equal(owner.title, 'direktor');
  assert.equal(owner.locality, 'yunusobod tumani');
  assert.equal(owner.region, 'toshkent shahri');
  assert.equal(owner.country, 'uz');
  assert.equal(owner.businessCategory, 'mchj');
  assert.equal(owner.serial, '7283d8ca');
  assert.equal(owner.legalEntity, true);
  assert.equal(owner.expired, false);
  assert.equal(owner.notYetValid, false);
  assert.deepEqual(owner.validFrom, new Date(2024, 3, 25, 17, 42, 58));
  assert.deepEqual(owner.validTo, new Date(2099, 3, 25, 23, 59, 59));
});

test('parseAlias reads an individual key and judges expiry at the given moment', () => {
  const before = parseAlias(INDIVIDUAL_ALIAS, new Date(2020, 5, 1));
  assert.equal(before.legalEntity, false);
  assert.equal(before.orgTin, null);
  assert.equal(before.organisation, null);
  assert.equal(before.expired, false);
  const after = parseAlias(INDIVIDUAL_ALIAS, new Date(2021, 0, 1, 0, 0, 1));
  assert.equal(after.expired, true);
  const early = parseAlias(INDIVIDUAL_ALIAS, new Date(2019, 0, 1));
  assert.equal(early.notYetValid, true);
});

test('parseAlias reads the Didox sample, Cyrillic and modifier letters included', () => {
  const owner = parseAlias(DIDOX_ALIAS, new Date(2023, 0, 1));
  assert.equal(owner.name, 'имя');
  assert.equal(owner.organisation, 'название компании');
  assert.equal(owner.businessCategory, 'masʼuliyati cheklangan jamiyat');
  assert.equal(owner.pinfl, '32610793225581');
  assert.equal(owner.orgTin, '242141224');
  assert.equal(owner.legalEntity, true);
  assert.equal(owner.fields.validto, '2024.04.25 23:59:59');
});

test('parseAlias without dates or ids gives nulls, not Invalid Date', () => {
  const owner = parseAlias('cn=self made');
  assert.equal(owner.cn, 'self made');
  assert.equal(owner.validFrom, null);
  assert.equal(owner.validTo, null);
  assert.equal(owner.expired, false);
  assert.equal(owner.pinfl, null);
  assert.equal(owner.tin, null);
});

test('parseAliasDate is local time and refuses malformed text', () => {
  assert.deepEqual(parseAliasDate('2024.02.29 01:02:03'), new Date(2024, 1, 29, 1, 2, 3));
  assert.equal(parseAliasDate('2024-02-29 01:02:03'), null);
  assert.equal(parseAliasDate('2024.02.29'), null);
  assert.equal(parseAliasDate(undefined), null);
});
