/**
 * Every error the API answers with, defined once with a stable code and HTTP status.
 * Clients always receive { statusCode, code, error, message }; never a stack trace.
 */
import createError from '@fastify/error';

export const ApiErrors = {
  unauthorized: createError('ROOST_ERR_UNAUTHORIZED', 'A valid API token is required (Authorization: Bearer <token>)', 401),
  forbidden: createError('ROOST_ERR_FORBIDDEN', 'This needs the %s role; the token has %s', 403),
  notFound: createError('ROOST_ERR_NOT_FOUND', '%s not found', 404),
  conflict: createError('ROOST_ERR_CONFLICT', '%s', 409),
  badRequest: createError('ROOST_ERR_BAD_REQUEST', '%s', 400),
  unprocessable: createError('ROOST_ERR_UNPROCESSABLE', '%s', 422),
  badCursor: createError('ROOST_ERR_BAD_CURSOR', 'cursor is not one this API issued', 400),
  provisioning: createError('ROOST_ERR_PROVISIONING', '%s', 401),
  provisioningForbidden: createError('ROOST_ERR_PROVISIONING_FORBIDDEN', '%s', 403),
  aclDenied: createError('ROOST_ERR_ACL_DENIED', 'This credential may not read %s', 403),
  queryTimeout: createError('ROOST_ERR_QUERY_TIMEOUT', 'The query took longer than %s ms (ROOST_API_QUERY_TIMEOUT_MS): narrow the filter, the device or the time range', 503),
  brokerAbsent: createError('ROOST_ERR_NO_BROKER', 'This API process runs without a broker; ask the broker nodes', 503),
};
