/**
 * Which web pages may open an MQTT WebSocket: the Origin header of the upgrade request against
 * ROOST_WS_ALLOWED_ORIGINS. Browsers always send Origin on a WebSocket handshake (RFC 6455 4.1,
 * item 8) and a page cannot forge it; other clients (devices, MQTT.js in Node) usually send none
 * and are not browsers, so the check does not apply to them — their credentials do.
 */
import type { IncomingMessage } from 'node:http';
import type { VerifyClientCallbackAsync } from 'ws';

/** The origin of a header value, normalised like the configured list (`null` for an opaque one). */
function normalise(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return 'null';
  }
}

/** Whether an upgrade request with this Origin header may proceed. */
export function originAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  if (allowed.length === 0 || origin === undefined) return true;
  return allowed.includes(normalise(origin));
}

/**
 * A ws `verifyClient` for the WebSocket listeners: a page from another origin gets HTTP 403 before
 * any MQTT is spoken. Undefined (no check) when the list is empty.
 */
export function verifyOrigin(allowed: readonly string[], onRefused?: (origin: string, req: IncomingMessage) => void): VerifyClientCallbackAsync | undefined {
  if (allowed.length === 0) return undefined;
  return (info, done) => {
    const origin = info.req.headers.origin;
    if (originAllowed(allowed, origin)) return done(true);
    onRefused?.(String(origin), info.req);
    done(false, 403, 'Origin not allowed');
  };
}
