// store.js — Everything the client remembers, in one `state` object, and the functions
// that change it. One place means one reset() forgets a whole session (timers included)
// and a newcomer can read here what there is to know. Changes are announced on a small
// event bus: views subscribe and re-render, so the code that changes data never needs to
// know which parts of the page show it. Ids are kept as strings internally so "12" and
// 12 are the same chat.
//
// Events (detail in braces):
//   me                  the signed-in user changed
//   limits              the server's limits arrived (see setLimits)
//   connection {state}  the socket's state changed
//   chats               the chat list, an unread count or the open chat changed
//   active {chatId, same}  a chat was opened (same: it already was) or closed (chatId null)
//   details {chatId, kind}  members or read markers of a chat changed (kind 'read': markers)
//   presence {userId}   someone came online or went offline
//   messages {chatId, kind, mine}  a history cache changed; kind is 'reset' | 'prepend' |
//                       'append' | 'status', which decides how the view scrolls
//   outbox {chatId, added}  a message we sent changed state (added: just typed; the
//                       outbox itself is kept by outbox.js)
//   typing {chatId}     who is typing in a chat changed
//   tick                time passed (relative times like "5 min ago" need redrawing)

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
  // The session
  me: null,               // {id, username, email}
  limits: null,           // the server's limits ({max_message_chars, ...}); null until /ws says
  connection: 'closed',   // socket state: 'connecting' | 'open' | 'renewing' | 'reconnecting' | 'closed'

  // What the server told us
  chats: new Map(),       // chatKey -> summary from GET /chats
  chatsLoaded: false,
  details: new Map(),     // chatKey -> GET /chats/{id} (members, read markers)
  messages: new Map(),    // chatKey -> message cache (see createCache)
  users: new Map(),       // userKey -> freshest known {id, username, is_online, last_seen}
  typing: new Map(),      // chatKey -> Map(userKey -> {username, timer}) of other people

  // What this client is doing
  activeChatId: null,     // chatKey of the open chat
  drafts: new Map(),      // chatKey -> unsent composer text
  outbox: [],             // messages typed here and not yet acknowledged (see outbox.js)

  // Bookkeeping no view shows: written, without events, only where named.
  readSent: new Map(),    // receipts.js, noteRead(): chatKey -> newest message id read, here or elsewhere
  readTimer: 0,           // receipts.js: a read receipt waiting for messages to settle
  leaving: new Set(),     // chats.js: chats we are leaving ourselves; their member_left is no news
  myTyping: { chatKey: null, lastSent: 0, idleTimer: 0 }, // typing.js: what we last told others
  chatsRequest: null,     // chats.js: the GET /chats in flight (reset() orphans it: its answer is dropped)
  chatsAgain: false,      // chats.js: the list was asked for again meanwhile, so fetch once more
  detailReloads: new Map(), // chats.js: chatKey -> timer of a coalesced GET /chats/{id}
};

/** Forget the session. The server's limits stay: they belong to the server, not to us. */
export function reset() {
  for (const perChat of state.typing.values()) for (const t of perChat.values()) clearTimeout(t.timer);
  for (const item of state.outbox) clearTimeout(item.timer);
  for (const t of state.detailReloads.values()) clearTimeout(t);
  clearTimeout(state.myTyping.idleTimer);
  clearTimeout(state.readTimer);
  Object.assign(state, {
    me: null,
    connection: 'closed',
    chats: new Map(),
    chatsLoaded: false,
    activeChatId: null,
    outbox: [],
    myTyping: { chatKey: null, lastSent: 0, idleTimer: 0 },
    chatsRequest: null,
    chatsAgain: false,
    readTimer: 0,
  });
  for (const m of [state.details, state.messages, state.users, state.typing, state.drafts,
    state.readSent, state.leaving, state.detailReloads]) m.clear();
}

export const isMe = (userId) => sameId(userId, state.me?.id);

/** Emits 'me'. */
export function setMe(me) {
  state.me = me;
  emit('me');
}

/**
 * Take the limits the server announces in its `ready` greeting. Only positive numbers are
 * kept, so a missing or odd value means "not enforced here" rather than "zero allowed".
 * Emits 'limits'.
 */
export function setLimits(limits) {
  if (!limits || typeof limits !== 'object') return;
  const next = {};
  for (const [name, value] of Object.entries(limits)) {
    if (Number.isFinite(value) && value > 0) next[name] = value;
  }
  state.limits = next;
  emit('limits');
}

/** A server limit by name (e.g. 'max_message_chars'), or null while unknown. */
export const limit = (name) => state.limits?.[name] ?? null;

/** Emits 'connection'. */
export function setConnection(connection) {
  state.connection = connection;
  emit('connection', { state: connection });
}

// ---------------------------------------------------------------------------
// Presence

/** Record what we learnt about a user. No event: callers emit 'presence' once per batch. */
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

/**
 * Take a fresh GET /chats list. The open chat stays even when the list lacks it (rather
 * than being yanked away; the caller re-checks membership, and a 403/404 then removes it
 * properly): returns true in that case. `seenKey` names a chat on screen, whose unread
 * count is zero whatever the list says. Emits 'chats'.
 */
export function replaceChats(list, seenKey = null) {
  const active = state.activeChatId;
  const previousActive = active ? state.chats.get(active) : null;
  const next = new Map();
  for (const chat of Array.isArray(list) ? list : []) {
    if (!chat || chat.chat_id == null) continue;
    next.set(key(chat.chat_id), chat);
    if (chat.peer) upsertUser(chat.peer);
  }
  const kept = !!active && !next.has(active) && !!previousActive;
  if (kept) next.set(active, previousActive);
  else if (seenKey && next.has(seenKey)) next.get(seenKey).unread = 0;
  state.chats = next;
  state.chatsLoaded = true;
  emit('chats');
  return kept;
}

/** A chat not in the list yet (just created or joined): show `hint` until GET /chats has it. */
export function addChatHint(chatKey, hint) {
  if (state.chats.has(chatKey)) return;
  state.chats.set(chatKey, { unread: 0, last_message: null, ...hint, chat_id: hint.chat_id ?? chatKey });
}

/** Open a chat (null: close). Emits 'active' and 'chats'. */
export function setActiveChat(chatKey) {
  state.activeChatId = chatKey;
  const chat = chatKey && state.chats.get(chatKey);
  if (chat) chat.unread = 0;
  emit('active', { chatId: chatKey });
  emit('chats');
}

/** Zero a chat's unread count. Emits 'chats' when it was not zero already. */
export function clearUnread(chatKey) {
  const chat = state.chats.get(chatKey);
  if (!chat?.unread) return;
  chat.unread = 0;
  emit('chats');
}

/**
 * Forget a chat we are no longer in, cancelling its timers (what waits in the outbox for
 * it is outbox.js's to drop). Emits 'typing' and 'chats'.
 */
export function removeChat(chatKey) {
  state.chats.delete(chatKey);
  state.details.delete(chatKey);
  state.messages.delete(chatKey);
  state.drafts.delete(chatKey);
  clearTyping(chatKey);
  emit('chats');
}

export function setDraft(chatKey, text) {
  if (text) state.drafts.set(chatKey, text);
  else state.drafts.delete(chatKey);
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
// Members and read markers

/** Take GET /chats/{id}: its members' presence and our own read marker. Emits 'details', 'presence'. */
export function setDetails(chatKey, details) {
  for (const m of details.members || []) upsertUser(m);
  state.details.set(chatKey, details);
  const mine = (details.members || []).find((m) => isMe(m.id));
  if (mine?.last_read_message_id != null) noteRead(chatKey, mine.last_read_message_id);
  emit('details', { chatId: chatKey });
  emit('presence', {});
}

/**
 * Someone's read receipt. Returns false when we hold the chat's members but not this one
 * (they are new to us: reload the members). Emits 'details' when a marker moved.
 */
export function moveReadMarker(chatKey, userId, messageId) {
  const details = state.details.get(chatKey);
  if (!details) return true;
  const member = (details.members || []).find((m) => sameId(m.id, userId));
  if (!member) return false;
  if (member.last_read_message_id == null || cmpId(messageId, member.last_read_message_id) > 0) {
    member.last_read_message_id = messageId;
    emit('details', { chatId: chatKey, kind: 'read' });
  }
  return true;
}

/** We have read up to messageId (here or on another device). Markers only move forward. */
export function noteRead(chatKey, messageId) {
  const prev = state.readSent.get(chatKey);
  if (prev == null || cmpId(messageId, prev) > 0) state.readSent.set(chatKey, messageId);
}

// ---------------------------------------------------------------------------
// Message caches: one per chat that has been loaded, in `seq` order (the server numbers
// each chat's messages 1, 2, 3... in commit order), de-duplicated by id and by seq, so a
// message that arrives twice (a page and a live event, a replay after a reconnect, an
// ack and its echo) shows once. `lastSeq` is how far a cache holds its chat without a
// gap, from its latest page on: a resume asks the server for everything after it.

export function createCache(chatKey) {
  const cache = {
    chatId: chatKey,
    items: [],
    ids: new Set(),
    seqs: new Set(),
    locals: new Set(),    // ids of messages written in from an ack, until the server's copy comes
    lastSeq: null,        // the contiguous high-water mark; null until the first page arrived
    loaded: false,        // first page arrived
    loading: false,
    loadingPromise: null,
    loadEpoch: 0,         // the socket connection (socket.epoch) the first page was asked on
    loadingOlder: false,
    hasMore: true,        // older messages may exist on the server
    error: null,
    lastChange: 0,        // the highest change number (edit, delete, reaction) seen in the chat
  };
  state.messages.set(chatKey, cache);
  return cache;
}

const hasSeq = (m) => Number.isFinite(m?.seq);

/** Message order: by seq (one chat's commit order), by id where a seq is missing. */
export function cmpMessages(a, b) {
  if (hasSeq(a) && hasSeq(b)) return a.seq - b.seq;
  return cmpId(a.id, b.id);
}

/** Add messages not seen before. Returns how many were new. No event: callers say how it changed. */
export function mergeMessages(cache, messages) {
  let added = 0;
  let ordered = true;
  for (const m of messages || []) {
    if (!m || m.id == null) continue;
    const k = key(m.id);
    noteChange(cache, m.change_seq);
    if (cache.ids.has(k) || (hasSeq(m) && cache.seqs.has(m.seq))) {
      if (!replaceLocal(cache, m)) replaceNewer(cache, m);
      continue;
    }
    const last = cache.items[cache.items.length - 1];
    if (last && cmpMessages(m, last) < 0) ordered = false;
    cache.ids.add(k);
    if (hasSeq(m)) cache.seqs.add(m.seq);
    if (m.local) cache.locals.add(k);
    cache.items.push(m);
    added += 1;
  }
  if (!ordered) cache.items.sort(cmpMessages);
  advanceSeq(cache);
  return added;
}

/**
 * The server's copy of a message takes the place of the one written in from its ack (whose
 * time was the client's guess). Returns whether it did. No event.
 */
export function replaceLocal(cache, message) {
  const k = key(message.id);
  if (message.local || !cache.locals.has(k)) return false;
  const i = cache.items.findIndex((m) => key(m.id) === k);
  cache.locals.delete(k);
  if (i < 0) return false;
  cache.items[i] = message;
  return true;
}

// Changes to messages already posted (edits, deletes, reactions) carry the chat's change
// number, `change_seq`. A message only ever moves to a newer state, so a change that comes
// twice or late (an event and a catch-up page) cannot undo a later one; the cache keeps the
// highest number it has seen, to ask after a reconnect what changed since.

const changeOf = (m) => (Number.isFinite(m?.change_seq) ? m.change_seq : 0);

function noteChange(cache, changeSeq) {
  if (Number.isFinite(changeSeq) && changeSeq > cache.lastChange) cache.lastChange = changeSeq;
}

/** A copy of a message we hold, in a newer state, takes its place. Returns whether it did. No event. */
export function replaceNewer(cache, message) {
  const i = cache.items.findIndex((m) => sameId(m.id, message.id));
  if (i < 0 || changeOf(message) <= changeOf(cache.items[i])) return false;
  cache.items[i] = { ...message, local: cache.items[i].local };
  return true;
}

/**
 * A change to message `id` (the fields of an event), unless we hold it in a newer state;
 * quotes of it in replies follow. Returns whether anything shown changed. No event.
 */
export function patchMessage(cache, id, patch) {
  noteChange(cache, patch.change_seq);
  let changed = false;
  const i = cache.items.findIndex((m) => sameId(m.id, id));
  if (i >= 0 && changeOf(patch) > changeOf(cache.items[i])) {
    cache.items[i] = { ...cache.items[i], ...patch };
    changed = true;
  }
  if (!('message' in patch)) return changed;
  for (let j = 0; j < cache.items.length; j++) {
    const quote = cache.items[j].reply_to;
    if (!quote || !sameId(quote.id, id)) continue;
    const deleted = !!patch.deleted;
    cache.items[j] = {
      ...cache.items[j],
      reply_to: { ...quote, deleted, message: deleted ? '' : shorten(patch.message, QUOTE_CHARS) },
    };
    changed = true;
  }
  return changed;
}

const QUOTE_CHARS = 100; // as the server quotes

function shorten(text, n) {
  const chars = Array.from(String(text || ''));
  return chars.length > n ? `${chars.slice(0, n).join('')}…` : chars.join('');
}

/** A message of a loaded chat by id, or null. */
export function findMessage(chatKey, id) {
  const cache = state.messages.get(chatKey);
  return cache?.items.find((m) => sameId(m.id, id)) || null;
}

/** The chat's latest page arrived: from it on, the cache holds the chat without a gap. */
export function noteLatestPage(cache, page) {
  let top = 0;
  for (const m of page || []) if (hasSeq(m) && m.seq > top) top = m.seq;
  cache.lastSeq = Math.max(top, cache.lastSeq ?? 0);
  advanceSeq(cache);
}

function advanceSeq(cache) {
  if (cache.lastSeq == null) return;
  while (cache.seqs.has(cache.lastSeq + 1)) cache.lastSeq += 1;
}

/**
 * A new message arrived live: it becomes the chat's preview, and counts as unread unless
 * it is ours or `seen` (on screen). Returns whether it is newer than the preview we had.
 * Emits 'chats' when the preview changed.
 */
export function notePreview(chat, message, seen) {
  const last = chat.last_message;
  if (last && sameId(last.id, message.id)) {
    // The same message again; the server's copy replaces one written in from an ack.
    if (last.local && !message.local) {
      chat.last_message = message;
      emit('chats');
    }
    return false;
  }
  if (last && cmpMessages(message, last) <= 0) return false;
  chat.last_message = message;
  if (!isMe(message.user_id) && !seen) chat.unread = (Number(chat.unread) || 0) + 1;
  emit('chats');
  return true;
}

export const newestId = (cache) => (cache?.items.length ? cache.items[cache.items.length - 1].id : null);
export const oldest = (cache) => (cache?.items.length ? cache.items[0] : null);

// ---------------------------------------------------------------------------
// Typing (other people's)

/**
 * Mark someone as typing in a chat, forgotten after ttlMs unless refreshed (their
 * "stop_typing" may never come), or as not typing. Emits 'typing' when anything changed.
 */
export function setTyping(chatKey, userId, username, typing, ttlMs = 0) {
  const uk = key(userId);
  let perChat = state.typing.get(chatKey);
  const existing = perChat?.get(uk);
  if (existing) clearTimeout(existing.timer);
  if (typing) {
    if (!perChat) {
      perChat = new Map();
      state.typing.set(chatKey, perChat);
    }
    perChat.set(uk, {
      username: username || existing?.username,
      timer: setTimeout(() => setTyping(chatKey, userId, null, false), ttlMs),
    });
  } else {
    if (!existing) return;
    perChat.delete(uk);
    if (!perChat.size) state.typing.delete(chatKey);
  }
  emit('typing', { chatId: chatKey });
}

/** Nobody is typing in a chat any more. Emits 'typing'. */
export function clearTyping(chatKey) {
  const perChat = state.typing.get(chatKey);
  if (!perChat) return;
  for (const t of perChat.values()) clearTimeout(t.timer);
  state.typing.delete(chatKey);
  emit('typing', { chatId: chatKey });
}

/** Forget who was typing anywhere (after a reconnect their "stop_typing" may be lost). */
export function clearAllTyping() {
  for (const k of [...state.typing.keys()]) clearTyping(k);
}

/** Someone stopped typing everywhere (they went offline). */
export function stopTypingEverywhere(userId) {
  for (const k of [...state.typing.keys()]) setTyping(k, userId, null, false);
}

/** Names of other people typing in a chat, in the order they started. */
export function typingNames(chatKey) {
  const perChat = state.typing.get(chatKey);
  return perChat ? [...perChat.values()].map((t) => t.username || 'Someone') : [];
}
