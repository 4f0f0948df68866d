/**
 * Every error the auth package raises, defined once with a stable code, a human message, the
 * CONNACK return code a refused CONNECT gets (and its MQTT 5 reason code where that says more) and
 * the HTTP status the API answers with.
 */

interface AuthErrorSpec {
  message: string;
  /** MQTT 3.1.1 CONNACK return code (3.2.2.3) when the error refuses a CONNECT. */
  returnCode?: 2 | 3 | 4 | 5;
  /** MQTT 5 CONNACK reason code, where it says more than the return code's (4 → 0x86, 5 → 0x87, 2 → 0x85, 3 → 0x88). */
  reasonCode?: number;
  statusCode: number;
}

export const AUTH_ERRORS = {
  // The same answer for an unknown user and a wrong password, so neither is revealed.
  ROOST_ERR_BAD_CREDENTIALS: { message: 'Bad username or password', returnCode: 4, statusCode: 401 },
  ROOST_ERR_NOT_AUTHORIZED: { message: 'Not authorized', returnCode: 5, statusCode: 403 },
  ROOST_ERR_DEVICE_DISABLED: { message: 'Device is disabled', returnCode: 5, statusCode: 403 },
  ROOST_ERR_CLIENT_ID_REJECTED: { message: 'Client id does not match the device pattern', returnCode: 5, reasonCode: 0x85, statusCode: 403 },
  // 0x02 identifier rejected (3.2.2.3): the client id is not this credential's to use (issue 22 #5).
  ROOST_ERR_CLIENT_ID_PREFIX: { message: 'A browser token connects only with a client id under its client_id_prefix', returnCode: 2, statusCode: 403 },
  ROOST_ERR_CLIENT_ID_TAKEN: { message: 'Client id is held by another username', returnCode: 2, statusCode: 409 },
  ROOST_ERR_ANONYMOUS_REFUSED: { message: 'Anonymous clients are not allowed', returnCode: 5, statusCode: 401 },
  ROOST_ERR_CERT_MISMATCH: { message: 'Username differs from the client certificate', returnCode: 5, statusCode: 403 },
  ROOST_ERR_AUTH_THROTTLED: { message: 'Too many failed logins; try again later', returnCode: 5, reasonCode: 0x9f, statusCode: 429 },
  ROOST_ERR_AUTH_BUSY: { message: 'Too many logins waiting for a password check; try again', returnCode: 3, reasonCode: 0x89, statusCode: 503 },
  ROOST_ERR_ACL_DENIED: { message: 'Not allowed by the access rules', statusCode: 403 },
  ROOST_ERR_DEVICE_NOT_FOUND: { message: 'No such device', statusCode: 404 },
  ROOST_ERR_DEVICE_EXISTS: { message: 'A device with this username exists', statusCode: 409 },
  ROOST_ERR_ROLE_NOT_FOUND: { message: 'No such role', statusCode: 404 },
  ROOST_ERR_ROLE_EXISTS: { message: 'A role with this name exists', statusCode: 409 },
  ROOST_ERR_RULE_NOT_FOUND: { message: 'No such rule', statusCode: 404 },
  ROOST_ERR_INVALID_PATTERN: { message: 'Invalid topic pattern', statusCode: 400 },
  ROOST_ERR_INVALID_RULE: { message: 'Invalid rule', statusCode: 400 },
  ROOST_ERR_INVALID_USERNAME: { message: 'Invalid username', statusCode: 400 },
  ROOST_ERR_INVALID_ROLE_NAME: { message: 'Invalid role name', statusCode: 400 },
  // bcrypt reads only the first 72 bytes: a longer password would be as weak as its first 72.
  ROOST_ERR_PASSWORD_TOO_LONG: { message: 'A password may be at most 72 bytes (bcrypt reads no further)', statusCode: 400 },
  ROOST_ERR_UNSUPPORTED_HASH: { message: 'Unsupported password hash format', statusCode: 400 },
  ROOST_ERR_MOSQUITTO_FILE: { message: 'Cannot read the Mosquitto file', statusCode: 400 },
} as const satisfies Record<string, AuthErrorSpec>;

export type AuthErrorCode = keyof typeof AUTH_ERRORS;

export class AuthError extends Error {
  readonly statusCode: number;
  readonly returnCode: 2 | 3 | 4 | 5 | undefined;
  readonly reasonCode: number | undefined;

  /** `detail` is for the log and the CLI; it never carries a password. */
  constructor(
    readonly code: AuthErrorCode,
    readonly detail?: string,
  ) {
    const spec: AuthErrorSpec = AUTH_ERRORS[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message);
    this.name = 'AuthError';
    this.statusCode = spec.statusCode;
    this.returnCode = spec.returnCode;
    this.reasonCode = spec.reasonCode;
  }
}

export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}
