// api.js — fetch wrapper for the Parley REST API. Sends the session cookie (never a
// stored token), turns error bodies {detail, code, field} into ApiError, renews the
// session once when an authenticated call gets a 401 and retries it, and reports a 401
// that renewing did not cure so the app can return to the login screen.

const TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  constructor(status, body = {}) {
    const detail = readableDetail(body.detail) || defaultDetail(status);
    super(detail);
    this.name = 'ApiError';
    this.status = status; // 0 means the request never got an HTTP answer
    this.detail = detail;
    this.code = body.code || null;
    this.field = body.field || null;
  }
}

function readableDetail(detail) {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail) && detail.length) return readableDetail(detail[0].msg ?? detail[0]);
  return '';
}

function defaultDetail(status) {
  if (status === 0) return navigator.onLine === false
    ? "You're offline. Check your connection."
    : "Can't reach Parley right now. Please try again.";
  if (status === 401) return 'Please log in.';
  if (status === 403) return "You don't have access to that.";
  if (status === 404) return "That doesn't exist any more.";
  if (status === 429) return 'Too many attempts. Wait a moment and try again.';
  if (status >= 500) return 'Something went wrong on our side. Please try again.';
  return 'Something went wrong. Please try again.';
}

let unauthorizedHandler = null;
let renewHandler = null;

/** Called with the ApiError whenever an authenticated request gets a 401 renewing does not cure. */
export function setUnauthorizedHandler(fn) {
  unauthorizedHandler = fn;
}

/** `fn()` renews the session, resolving true when it goes on; tried once on a 401. */
export function setRenewHandler(fn) {
  renewHandler = fn;
}

/**
 * Perform a request. `auth: false` marks calls where 401 is an expected answer
 * (login, the start-up session check) and must not end the session.
 */
export async function request(method, path, { body, auth = true, renewed = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  init.signal = controller.signal;

  let res;
  let text = '';
  try {
    res = await fetch(path, init);
    text = res.status === 204 ? '' : await res.text();
  } catch {
    throw new ApiError(0, { code: 'network' });
  } finally {
    clearTimeout(timer);
  }

  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;

  const err = new ApiError(res.status, data && typeof data === 'object' ? data : {});
  if (res.status === 401 && auth && !renewed && renewHandler && await renewHandler()) {
    return request(method, path, { body, auth, renewed: true });
  }
  if (res.status === 401 && auth && unauthorizedHandler) unauthorizedHandler(err);
  throw err;
}

const seg = (id) => encodeURIComponent(String(id));

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const api = {
  // Session
  me: ({ auth = false } = {}) => request('GET', '/auth/me', { auth }),
  // Answers 200 signed in or not: { authenticated, user? }.
  session: () => request('GET', '/auth/session', { auth: false }),
  login: (username, password) =>
    request('POST', '/auth/login', { body: { username, password }, auth: false }),
  register: ({ username, email, password, password_confirm }) =>
    request('POST', '/auth/register', { body: { username, email, password, password_confirm }, auth: false }),
  logout: () => request('POST', '/auth/logout', { auth: false }),
  // Renews the session with the refresh token cookie: { access_token, expires_at, ... }.
  refresh: () => request('POST', '/auth/refresh', { auth: false }),
  sessions: () => request('GET', '/auth/sessions'),
  endSession: (id) => request('DELETE', `/auth/sessions/${seg(id)}`),
  logoutAll: () => request('POST', '/auth/logout-all'),
  changePassword: (currentPassword, newPassword) =>
    request('POST', '/auth/password', { body: { current_password: currentPassword, new_password: newPassword } }),

  // People and chats
  users: () => request('GET', '/users'),
  chats: () => request('GET', '/chats'),
  chat: (chatId) => request('GET', `/chats/${seg(chatId)}`),
  openDirect: (userId) => request('POST', `/chats/${seg(userId)}`),
  createGroup: (name, memberIds, visibility) =>
    request('POST', '/chats', { body: { name, member_ids: memberIds, visibility } }),
  addMember: (chatId, userId) =>
    request('POST', `/chats/${seg(chatId)}/members`, { body: { user_id: userId } }),
  leave: (chatId) => request('DELETE', `/chats/${seg(chatId)}/members/me`),
  removeMember: (chatId, userId) => request('DELETE', `/chats/${seg(chatId)}/members/${seg(userId)}`),
  rooms: () => request('GET', '/rooms'),
  join: (chatId) => request('POST', `/chats/${seg(chatId)}/join`),

  // Messages
  // Pages by seq (each chat numbers its messages 1, 2, 3...) or, for older servers, by id.
  messages: (chatId, { beforeSeq, afterSeq, before, after, limit = 50 } = {}) =>
    request('GET', `/chats/${seg(chatId)}/messages${query({
      before_seq: beforeSeq, after_seq: afterSeq, before, after, limit,
    })}`),
  // What changed (edits, deletes, reactions) after change number `after`, oldest change first.
  changes: (chatId, after, limit = 200) =>
    request('GET', `/chats/${seg(chatId)}/messages${query({ changed_after: after, limit })}`),
  editMessage: (chatId, id, message) =>
    request('PATCH', `/chats/${seg(chatId)}/messages/${seg(id)}`, { body: { message } }),
  deleteMessage: (chatId, id) => request('DELETE', `/chats/${seg(chatId)}/messages/${seg(id)}`),
  react: (chatId, id, emoji, on) =>
    request(on ? 'PUT' : 'DELETE', `/chats/${seg(chatId)}/messages/${seg(id)}/reactions/${seg(emoji)}`),
  markRead: (chatId, messageId) =>
    request('POST', `/chats/${seg(chatId)}/read`, { body: { message_id: messageId } }),
};
