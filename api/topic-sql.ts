/**
 * MQTT topic filter → SQL condition on a topic column, as a parameter (never spliced into SQL).
 * The filter becomes an anchored PostgreSQL regular expression with every literal character
 * escaped, so %, _, quotes and regex characters in topics match literally.
 */
import { isValidFilter } from '../auth/acl.js';
import { ApiErrors } from './errors.js';

const REGEX_SPECIAL = /[\\^$.|?*+()[\]{}]/g;

export function filterToRegex(filter: string): string {
  if (!isValidFilter(filter)) throw new ApiErrors.badRequest(`filter "${filter}" is not a valid MQTT topic filter`);
  const levels = filter.split('/');
  let regex = '';
  levels.forEach((level, i) => {
    const sep = i === 0 ? '' : '/';
    if (level === '#') {
      // MQTT-4.7.1-2: "a/#" also matches "a" itself.
      regex += i === 0 ? '.*' : `(/.*)?`;
    } else if (level === '+') {
      regex += sep + '[^/]*';
    } else {
      regex += sep + level.replace(REGEX_SPECIAL, '\\$&');
    }
  });
  // MQTT-4.7.2-1: a filter starting with a wildcard does not match topics starting with $.
  const noDollar = levels[0] === '#' || levels[0] === '+' ? '(?!\\$)' : '';
  return `^${noDollar}${regex}$`;
}

/** `column ~ $n` (or `column = $n` for a filter without wildcards) and its parameter. */
export function topicCondition(column: string, filter: string, paramIndex: number): { sql: string; param: string } {
  if (!filter.includes('+') && !filter.includes('#')) {
    if (!isValidFilter(filter)) throw new ApiErrors.badRequest(`filter "${filter}" is not a valid MQTT topic filter`);
    return { sql: `${column} = $${paramIndex}`, param: filter };
  }
  return { sql: `${column} ~ $${paramIndex}`, param: filterToRegex(filter) };
}
