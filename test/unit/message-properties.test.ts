/**
 * What the store writes of a PUBLISH's MQTT 5 properties (broker/message-properties.ts), and when a
 * payload counts as declared JSON (broker/payload-json.ts): the pure logic under
 * test/integration/api-message-properties.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PROPERTY_COLUMNS, isJsonContentType, storedProperties } from '../../broker/message-properties.js';
import { declaredJsonPayload } from '../../broker/payload-json.js';

describe('storedProperties', () => {
  it('is null for a message without properties Roost stores: 3.1.1, or only a topic alias or subscription identifier', () => {
    expect(storedProperties(undefined)).toBeNull();
    expect(storedProperties({})).toBeNull();
    expect(storedProperties({ topicAlias: undefined })).toBeNull();
    expect(storedProperties({ subscriptionIdentifier: 7 })).toBeNull();
    expect(storedProperties({ userProperties: Object.create(null) })).toBeNull();
  });

  it('gives every column in PROPERTY_COLUMNS order, user properties as pairs with a repeated key in its order', () => {
    // As mqtt-packet parses them: a prototype-less object, a repeated key's values in an array.
    const userProperties = Object.assign(Object.create(null), { b: '2', a: ['1', '3'], constructor: 'x' });
    const stored = storedProperties({
      contentType: 'application/json',
      payloadFormatIndicator: true,
      userProperties,
      responseTopic: 'r/1',
      correlationData: Buffer.from([9, 8]),
      messageExpiryInterval: 4_294_967_295,
      topicAlias: undefined,
    });
    expect(PROPERTY_COLUMNS.map((c) => c.name)).toEqual(['content_type', 'payload_format', 'user_properties', 'response_topic', 'correlation_data', 'message_expiry_interval']);
    expect(stored).toEqual({
      columns: ['application/json', 1, '[["b","2"],["a","1"],["a","3"],["constructor","x"]]', 'r/1', Buffer.from([9, 8]), 4_294_967_295],
      declaresJson: true,
    });
  });

  it('stores what is present only, payload format 0 as 0, correlation data from any Uint8Array as bytes, U+0000 removed', () => {
    const stored = storedProperties({ payloadFormatIndicator: false, correlationData: new Uint8Array([1, 2]), responseTopic: 'a\0b' });
    expect(stored?.columns).toEqual([null, 0, null, 'ab', Buffer.from([1, 2]), null]);
    expect(Buffer.isBuffer(stored?.columns[4])).toBe(true);
    expect(stored?.declaresJson).toBe(false);
    expect(storedProperties({ userProperties: { 'k\0': 'v\0' } })?.columns[2]).toBe('[["k","v"]]');
  });

  it('declares JSON only with Payload Format Indicator 1 and a JSON content type', () => {
    expect(storedProperties({ payloadFormatIndicator: true, contentType: 'application/json' })?.declaresJson).toBe(true);
    expect(storedProperties({ payloadFormatIndicator: false, contentType: 'application/json' })?.declaresJson).toBe(false);
    expect(storedProperties({ contentType: 'application/json' })?.declaresJson).toBe(false);
    expect(storedProperties({ payloadFormatIndicator: true, contentType: 'text/plain' })?.declaresJson).toBe(false);
    expect(storedProperties({ payloadFormatIndicator: true })?.declaresJson).toBe(false);
  });
});

describe('isJsonContentType', () => {
  it.each([
    'application/json',
    'APPLICATION/JSON',
    'application/json; charset=utf-8',
    'application/json;charset="UTF-8"',
    ' application/json ; charset=utf8',
    'application/json; profile=x',
    'application/ld+json',
    'application/vnd.api+json; charset=utf-8',
  ])('accepts %j', (type) => expect(isJsonContentType(type)).toBe(true));

  it.each(['text/plain', 'text/json', 'application/jsonx', 'application/json-seq', 'application/+json', 'application/json; charset=iso-8859-1', 'json', ''])(
    'refuses %j',
    (type) => expect(isJsonContentType(type)).toBe(false),
  );
});

describe('declaredJsonPayload', () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  it('is the JSON text jsonb takes, read past a leading byte order mark', () => {
    expect(declaredJsonPayload(Buffer.from('{"a":1}'))?.toString()).toBe('{"a":1}');
    expect(declaredJsonPayload(Buffer.concat([BOM, Buffer.from(' 42')]))?.toString()).toBe(' 42');
    expect(declaredJsonPayload(Buffer.from('"42"'))?.toString()).toBe('"42"');
  });

  it('is null when jsonb would refuse it: not JSON, not UTF-8, U+0000, empty, only a mark, two marks', () => {
    for (const payload of [Buffer.from('{"a":'), Buffer.from([0x22, 0xff, 0x22]), Buffer.from('"\\u0000"'), Buffer.alloc(0), BOM, Buffer.concat([BOM, BOM, Buffer.from('1')])]) {
      expect(declaredJsonPayload(payload)).toBeNull();
    }
  });
});
