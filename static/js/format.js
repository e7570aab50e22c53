// format.js — Turning timestamps and counts into the words people read: list times,
// day separators, "last seen" phrases and the typing line. All times shown in local time.

const DAY_MS = 86_400_000;

/** Parse an RFC 3339 timestamp. Timestamps without a zone are taken as UTC. */
export function parseTime(value) {
  if (!value) return null;
  if (value instanceof Date) return value;
  let s = String(value).trim();
  if (/^\d{4}-\d{2}-\d{2} \d/.test(s)) s = s.replace(' ', 'T');
  if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s += 'Z';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n) => String(n).padStart(2, '0');

/** "14:03", 24-hour local time. */
export const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;

function startOfDay(d) {
  const x = new Date(d);
  x.setHours(0, 0, 0, 0);
  return x;
}

/** Whole calendar days from d to now: 0 today, 1 yesterday; negative in the future. */
export function daysAgo(d, now = new Date()) {
  return Math.round((startOfDay(now) - startOfDay(d)) / DAY_MS); // round absorbs DST shifts
}

function shortDate(d, now = new Date()) {
  const opts = { day: 'numeric', month: 'short' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** Chat list time: HH:MM today, weekday within a week, otherwise a date. */
export function listTime(value) {
  const d = parseTime(value);
  if (!d) return '';
  const days = daysAgo(d);
  if (days <= 0) return hhmm(d);
  if (days < 7) return d.toLocaleDateString(undefined, { weekday: 'short' });
  return shortDate(d);
}

/** Day separator label: "Today", "Yesterday" or a full date. */
export function dayLabel(d) {
  const days = daysAgo(d);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const opts = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** Stable key of a local calendar day. */
export const dayKey = (d) => `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;

/** Full date and time, for tooltips. */
export const fullDateTime = (d) =>
  d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'short' });

/**
 * Presence line for a user: "online", "last seen just now", "last seen 5 min ago",
 * "last seen today at 14:03", "last seen yesterday at 09:10", "last seen 3 Mar".
 */
export function lastSeen(user, now = new Date()) {
  if (!user) return '';
  if (user.is_online) return 'online';
  const d = parseTime(user.last_seen);
  if (!d) return 'last seen a long time ago';
  const seconds = (now - d) / 1000;
  if (seconds < 60) return 'last seen just now';
  if (seconds < 3600) return `last seen ${Math.floor(seconds / 60)} min ago`;
  const days = daysAgo(d, now);
  if (days <= 0) return `last seen today at ${hhmm(d)}`;
  if (days === 1) return `last seen yesterday at ${hhmm(d)}`;
  return `last seen ${shortDate(d, now)}`;
}

/** "Ann is typing...", "Ann and Ben are typing...", "Several people are typing...". */
export function typingText(names) {
  if (!names.length) return '';
  if (names.length === 1) return `${names[0]} is typing...`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing...`;
  return 'Several people are typing...';
}

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Shorten to n characters (by code point), adding an ellipsis. */
export function truncate(text, n) {
  const chars = Array.from(String(text || ''));
  return chars.length > n ? `${chars.slice(0, n - 1).join('')}…` : chars.join('');
}

/** Length as the server counts it: Unicode scalar values, not UTF-16 units. */
export const charCount = (text) => {
  let n = 0;
  for (const _ of text) n++; // eslint-disable-line no-unused-vars
  return n;
};
