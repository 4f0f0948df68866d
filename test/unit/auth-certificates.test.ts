import { describe, expect, it } from 'vitest';
import { certificateUsername } from '../../auth/certificates.js';

const cert = {
  subject: { CN: 'meter-7' },
  subjectaltname: 'DNS:meter-7.devices.example, email:meter-7@devices.example, URI:urn:dev:meter-7, DNS:second.example',
};

describe('device name from a client certificate', () => {
  it.each([
    ['CN', 'meter-7'],
    ['SAN_DNS', 'meter-7.devices.example'],
    ['SAN_EMAIL', 'meter-7@devices.example'],
    ['SAN_URI', 'urn:dev:meter-7'],
  ] as const)('reads %s', (field, expected) => {
    expect(certificateUsername(cert, field)).toBe(expected);
  });

  it('takes the first CN when the subject has several', () => {
    expect(certificateUsername({ subject: { CN: ['a', 'b'] } }, 'CN')).toBe('a');
  });

  it('finds no name when the field is absent or empty', () => {
    expect(certificateUsername({ subject: { CN: 'x' } }, 'SAN_EMAIL')).toBeUndefined();
    expect(certificateUsername({ subject: {} }, 'CN')).toBeUndefined();
    expect(certificateUsername({ subject: { CN: '' } }, 'CN')).toBeUndefined();
    expect(certificateUsername(undefined, 'CN')).toBeUndefined();
  });

  it('does not take a DNS name for an email or a URI for a DNS name', () => {
    expect(certificateUsername({ subjectaltname: 'DNS:a.example' }, 'SAN_URI')).toBeUndefined();
    expect(certificateUsername({ subjectaltname: 'URI:urn:x' }, 'SAN_DNS')).toBeUndefined();
  });
});
