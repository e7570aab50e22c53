// store.js — Client state (me, chats, message caches, presence, typing, outbox) and a
// tiny event bus. The controller (chat.js) mutates state and emits; views subscribe
// and re-render. Ids are kept as strings internally so "12" and 12 are the same chat.

const listeners = new Map();

/** Subscribe to an event; returns an unsubscribe function. */
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type).delete(fn);
}

export function emit(type, detail = {}) {
  for (const fn of listeners.get(type) || []) {
    try {
      fn(detail);
    } catch (err) {
      console.error(`listener for "${type}" failed`, err);
    }
  }
}

// ---------------------------------------------------------------------------
// Ids

export const key = (id) => (id == null ? null : String(id));
export const sameId = (a, b) => a != null && b != null && String(a) === String(b);
/** Back to the wire type: numeric ids go out as numbers. */
export const wireId = (id) => (/^\d+$/.test(String(id)) ? Number(id) : id);

export function cmpId(a, b) {
  const x = Number(a);
  const y = Number(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return String(a).localeCompare(String(b));
}

// ---------------------------------------------------------------------------
// State

export const state = {
  me: null,               // {id, username, email}
  chats: new Map(),       // chatKey -> summary from GET /chats
  chatsLoaded: false,
  details: new Map(),     // chatKey -> GET /chats/{id} (members, read markers)
  messages: new Map(),    // chatKey -> message cache (see createCache)
  users: new Map(),       // userKey -> freshest known {id, username, is_online, last_seen}
  typing: new Map(),      // chatKey -> Map(userKey -> {username, timer})
  outbox: [],             // messages typed here and not yet echoed by the server
  drafts: new Map(),      // chatKey -> unsent composer text
  activeChatId: null,     // chatKey of the open chat
  connection: 'closed',   // socket state
};

export function reset() {
  for (const perChat of state.typing.values()) for (const t of perChat.values()) clearTimeout(t.timer);
  for (const item of state.outbox) clearTimeout(item.timer);
  state.me = null;
  state.chats = new Map();
  state.chatsLoaded = false;
  state.details.clear();
  state.messages.clear();
  state.users.clear();
  state.typing.clear();
  state.outbox = [];
  state.drafts.clear();
  state.activeChatId = null;
  state.connection = 'closed';
}

export const isMe = (userId) => sameId(userId, state.me?.id);

// ---------------------------------------------------------------------------
// Presence

export function upsertUser(user) {
  if (!user || user.id == null) return;
  const k = key(user.id);
  const prev = state.users.get(k);
  const next = { ...prev, ...user };
  if (!('is_online' in next)) next.is_online = false;
  state.users.set(k, next);
}

/** The freshest presence we know for a user object (from any source). */
export function presence(user) {
  if (!user) return null;
  return state.users.get(key(user.id)) || user;
}

// ---------------------------------------------------------------------------
// Chats

export function setChats(list) {
  const next = new Map();
  for (const chat of Array.isArray(list) ? list : []) {
    if (!chat || chat.chat_id == null) continue;
    next.set(key(chat.chat_id), chat);
    if (chat.peer) upsertUser(chat.peer);
  }
  state.chats = next;
  state.chatsLoaded = true;
}

export function chatTitle(chat) {
  if (!chat) return '';
  return chat.username || chat.name || (chat.kind === 'group' ? 'Group' : 'Chat');
}

export const isGroup = (chat) => chat?.kind === 'group';

/** Direct chat's other member, preferring the freshest presence. */
export function peerOf(chatKey) {
  const chat = state.chats.get(chatKey);
  if (chat?.peer) return presence(chat.peer);
  const members = state.details.get(chatKey)?.members || [];
  const other = members.find((m) => !isMe(m.id));
  return other ? presence(other) : null;
}

function messageTime(message) {
  const t = message ? Date.parse(message.created_at) : NaN;
  return Number.isNaN(t) ? null : t;
}

/** Most recent message first; chats without messages last (newest chat first among them). */
export function sortedChats() {
  return [...state.chats.values()].sort((a, b) => {
    const ta = messageTime(a.last_message);
    const tb = messageTime(b.last_message);
    if (ta != null && tb != null) return tb - ta || cmpId(b.last_message.id, a.last_message.id);
    if (ta != null) return -1;
    if (tb != null) return 1;
    return cmpId(b.chat_id, a.chat_id);
  });
}

export function totalUnread() {
  let n = 0;
  for (const chat of state.chats.values()) n += Number(chat.unread) || 0;
  return n;
}

// ---------------------------------------------------------------------------
// Message caches: one per chat that has been opened, sorted by id, de-duplicated.

export function createCache(chatKey) {
  const cache = {
    chatId: chatKey,
    items: [],
    ids: new Set(),
    loaded: false,        // first page arrived
    loading: false,
    loadingPromise: null,
    loadingOlder: false,
    hasMore: true,        // older messages may exist on the server
    error: null,
  };
  state.messages.set(chatKey, cache);
  return cache;
}

/** Add messages not seen before. Returns how many were new. */
export function mergeMessages(cache, messages) {
  let added = 0;
  let ordered = true;
  for (const m of messages || []) {
    if (!m || m.id == null) continue;
    const k = key(m.id);
    if (cache.ids.has(k)) continue;
    const last = cache.items[cache.items.length - 1];
    if (last && cmpId(m.id, last.id) < 0) ordered = false;
    cache.ids.add(k);
    cache.items.push(m);
    added += 1;
  }
  if (!ordered) cache.items.sort((a, b) => cmpId(a.id, b.id));
  return added;
}

export const newestId = (cache) => (cache?.items.length ? cache.items[cache.items.length - 1].id : null);
export const oldestId = (cache) => (cache?.items.length ? cache.items[0].id : null);

// ---------------------------------------------------------------------------
// Typing

/** Names of other people typing in a chat, in the order they started. */
export function typingNames(chatKey) {
  const perChat = state.typing.get(chatKey);
  return perChat ? [...perChat.values()].map((t) => t.username || 'Someone') : [];
}
