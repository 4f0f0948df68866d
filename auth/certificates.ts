/**
 * The device name in a verified TLS client certificate: its CN, or the first subjectAltName of a
 * configured kind (ROOST_TLS_CERT_USERNAME_FIELD).
 */

export type CertUsernameField = 'CN' | 'SAN_DNS' | 'SAN_EMAIL' | 'SAN_URI';

/** The parts of node's PeerCertificate this reads. */
export interface CertificateNames {
  subject?: { CN?: string | string[] } | null;
  subjectaltname?: string;
}

const SAN_PREFIX: Record<Exclude<CertUsernameField, 'CN'>, string> = {
  SAN_DNS: 'DNS:',
  SAN_EMAIL: 'email:',
  SAN_URI: 'URI:',
};

export function certificateUsername(cert: CertificateNames | undefined, field: CertUsernameField): string | undefined {
  if (!cert) return undefined;
  if (field === 'CN') {
    const cn = cert.subject?.CN;
    const value = Array.isArray(cn) ? cn[0] : cn;
    return value ? value : undefined;
  }
  const prefix = SAN_PREFIX[field];
  // node formats it as "DNS:a.example, email:x@y, URI:urn:dev:1"; quoted entries hold no ", ".
  for (const entry of (cert.subjectaltname ?? '').split(', ')) {
    if (entry.startsWith(prefix)) {
      const value = entry.slice(prefix.length).replace(/^"(.*)"$/, '$1');
      if (value) return value;
    }
  }
  return undefined;
}
