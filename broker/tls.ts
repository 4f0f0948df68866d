/**
 * The TLS credentials of the MQTTS and WSS listeners, reloadable while Roost runs: on SIGHUP, on
 * POST /api/tls/reload, and when the files change (a Let's Encrypt renewal). A reload builds a
 * new secure context for new handshakes; established connections keep theirs and stay open.
 * A reload that fails (a key that does not match its certificate, a file half written) keeps the
 * credentials in use and is tried again at the next change.
 *
 * Several certificate pairs (e.g. ECDSA and RSA) are served at once: OpenSSL picks, per
 * handshake, the one the client supports.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from '../lib/log.js';

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface TlsSettings {
  /** The first pair, then any others (ROOST_TLS_EXTRA_PAIRS). */
  pairs: CertificatePair[];
  /** CA of client certificates; when set, clients are asked for a certificate. */
  ca?: string;
  requireClientCert?: boolean;
  minVersion: tls.SecureVersion;
  /** OpenSSL cipher list; undefined keeps Node's default. */
  ciphers?: string;
}

export interface CertificateInfo {
  file: string;
  subject: string;
  subject_alt_names: string | null;
  key_type: string;
  not_after: string;
  fingerprint_sha256: string;
}

export interface TlsState {
  loaded_at: string;
  min_version: string;
  certificates: CertificateInfo[];
  /** Set when the last reload failed (the previous credentials are still in use). */
  last_error: string | null;
}

export class TlsReloadError extends Error {
  readonly code = 'ROOST_ERR_TLS_RELOAD';
}

function describe(file: string, pem: Buffer): CertificateInfo {
  const x = new X509Certificate(pem);
  return {
    file,
    subject: x.subject.replace(/\n/g, ', '),
    subject_alt_names: x.subjectAltName ?? null,
    key_type: x.publicKey.asymmetricKeyType ?? 'unknown',
    not_after: new Date(x.validTo).toISOString(),
    fingerprint_sha256: x.fingerprint256,
  };
}

/** A fingerprint of the files as they are on disk now (stat follows the symlinks certbot uses). */
function filesSignature(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    try {
      const s = statSync(f);
      h.update(`${f}:${s.ino}:${s.size}:${s.mtimeMs};`);
    } catch {
      h.update(`${f}:missing;`);
    }
  }
  return h.digest('hex');
}

export class TlsCredentials {
  private current: tls.SecureContextOptions;
  private state: TlsState;
  private signature: string;
  private readonly listeners = new Set<(options: tls.SecureContextOptions) => void>();
  private watchTimer: NodeJS.Timeout | undefined;
  private failedSignature: string | undefined;
  private stopSignal = () => {};

  constructor(
    private readonly settings: TlsSettings,
    private readonly log: Logger,
  ) {
    // The first load fails loudly: Roost does not start with credentials it cannot use.
    const { options, certificates } = this.read();
    this.current = options;
    this.signature = filesSignature(this.files());
    this.state = { loaded_at: new Date().toISOString(), min_version: settings.minVersion, certificates, last_error: null };
  }

  private files(): string[] {
    return [...this.settings.pairs.flatMap((p) => [p.cert, p.key]), ...(this.settings.ca ? [this.settings.ca] : [])];
  }

  /** Reads every file and checks the result makes a secure context (keys match certificates). */
  private read(): { options: tls.SecureContextOptions; certificates: CertificateInfo[] } {
    const s = this.settings;
    let certificates: CertificateInfo[];
    let options: tls.SecureContextOptions;
    try {
      const certs = s.pairs.map((p) => readFileSync(p.cert));
      certificates = s.pairs.map((p, i) => describe(p.cert, certs[i]));
      options = {
        cert: certs,
        key: s.pairs.map((p) => readFileSync(p.key)),
        minVersion: s.minVersion,
        ...(s.ciphers ? { ciphers: s.ciphers } : {}),
        ...(s.ca ? { ca: readFileSync(s.ca) } : {}),
      };
      tls.createSecureContext(options);
    } catch (err) {
      throw new TlsReloadError(`cannot load the TLS certificates: ${(err as Error).message}`);
    }
    return { options, certificates };
  }

  /** Options for tls.createServer / https.createServer. */
  serverOptions(): tls.TlsOptions {
    const s = this.settings;
    return { ...this.current, ...(s.ca ? { requestCert: true, rejectUnauthorized: Boolean(s.requireClientCert) } : {}) };
  }

  /** Called with the new context options after each successful reload (listeners.ts swaps them in). */
  onReload(fn: (options: tls.SecureContextOptions) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get status(): TlsState {
    return this.state;
  }

  /** Loads the files again; throws TlsReloadError (the old credentials stay) when they are not usable. */
  reload(reason: string): TlsState {
    const signature = filesSignature(this.files());
    try {
      const { options, certificates } = this.read();
      this.current = options;
      for (const fn of this.listeners) fn(this.serverOptions());
      this.signature = signature;
      this.failedSignature = undefined;
      this.state = { loaded_at: new Date().toISOString(), min_version: this.settings.minVersion, certificates, last_error: null };
      this.log.info({ reason, certificates: certificates.map((c) => ({ subject: c.subject, not_after: c.not_after, key_type: c.key_type })) }, 'TLS certificates reloaded');
      return this.state;
    } catch (err) {
      this.failedSignature = signature;
      this.state = { ...this.state, last_error: (err as Error).message };
      this.log.error({ reason, err: (err as Error).message }, 'TLS reload failed; the previous certificates stay in use');
      throw err;
    }
  }

  /** Reloads when the files change; a failed reload is tried again at each later change. */
  watch(intervalMs: number): void {
    if (intervalMs <= 0 || this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      const signature = filesSignature(this.files());
      if (signature === this.signature || signature === this.failedSignature) return;
      try {
        this.reload('files changed');
      } catch {
        // logged by reload
      }
    }, intervalMs);
    this.watchTimer.unref();
  }

  /** Reloads when the process receives `signal` (SIGHUP: what operators and certbot hooks send). */
  reloadOnSignal(signal: NodeJS.Signals): void {
    const onSignal = () => {
      try {
        this.reload(signal);
      } catch {
        // logged by reload; the previous certificates stay in use
      }
    };
    process.on(signal, onSignal);
    this.stopSignal = () => process.off(signal, onSignal);
  }

  close(): void {
    clearInterval(this.watchTimer);
    this.stopSignal();
    this.listeners.clear();
  }
}

