// chat.js — Chat controller. Loads chats, history and members; sends messages, typing
// and read receipts; applies socket events to the store; catches up after reconnects.
// Views call the exported actions and re-render from store events.

import { api } from './api.js';
import * as S from './store.js';
import { toast, announce } from './views/feedback.js';
import { charCount, truncate } from './format.js';

export const PAGE_SIZE = 50;
const CATCH_UP_PAGE = 200;
export const MAX_MESSAGE_CHARS = 4000;
const TYPING_REPEAT_MS = 3000;     // send "typing" at most this often while typing
const TYPING_IDLE_MS = 4000;       // send "stop_typing" after this long without a keystroke
const REMOTE_TYPING_TTL_MS = 6000; // forget someone's "typing" if it isn't refreshed
const SEND_TIMEOUT_MS = 10_000;    // a sent message not echoed by then is marked failed

let socket = null;
let pendingSeq = 0;
const lastReadSent = new Map();    // chatKey -> last message id we reported as read
const leaving = new Set();         // chats we are leaving ourselves (no "you were removed" toast)
const detailTimers = new Map();
const typingOut = { chatKey: null, lastSent: 0, idleTimer: 0 };

export function setSocket(s) {
  socket = s;
}

export function reset() {
  socket = null;
  lastReadSent.clear();
  leaving.clear();
  for (const t of detailTimers.values()) clearTimeout(t);
  detailTimers.clear();
  clearTimeout(typingOut.idleTimer);
  typingOut.chatKey = null;
  typingOut.lastSent = 0;
  chatsInFlight = null;
}

const send = (frame) => !!socket && socket.send(frame);

function isVisible(chatKey) {
  return S.state.activeChatId === chatKey && document.visibilityState === 'visible';
}

function reportError(err, fallback) {
  if (err?.status === 401) return; // the session handler takes over
  toast(err?.detail || fallback || 'Something went wrong.', { kind: 'error' });
}

// ---------------------------------------------------------------------------
// Chat list

let chatsInFlight = null;
let chatsAgain = false;

/** Refetch GET /chats. Concurrent calls coalesce into one more fetch after the current one. */
export function refreshChats() {
  if (chatsInFlight) {
    chatsAgain = true;
    return chatsInFlight;
  }
  const run = (async () => {
    try {
      do {
        chatsAgain = false;
        const list = await api.chats();
        if (chatsInFlight !== run) return; // logged out meanwhile
        applyChats(list);
      } while (chatsAgain);
    } catch (err) {
      if (err.status !== 401 && !S.state.chatsLoaded) reportError(err, "Couldn't load your chats.");
    } finally {
      if (chatsInFlight === run) chatsInFlight = null;
    }
  })();
  chatsInFlight = run;
  return run;
}

function applyChats(list) {
  const active = S.state.activeChatId;
  const previousActive = active ? S.state.chats.get(active) : null;
  S.setChats(list);
  if (active) {
    const chat = S.state.chats.get(active);
    if (!chat && previousActive) {
      // Keep the open chat rather than yanking it away; membership is re-checked below
      // (a 403/404 there removes it properly).
      S.state.chats.set(active, previousActive);
      loadDetails(active);
    } else if (chat && isVisible(active)) {
      chat.unread = 0;
    }
  }
  S.emit('chats');
  if (active) markReadIfVisible(active);
}

/** Drop a chat we are no longer in (left, removed, or gone). */
export function removeChatLocally(chatKey, message) {
  const chat = S.state.chats.get(chatKey);
  S.state.chats.delete(chatKey);
  S.state.details.delete(chatKey);
  S.state.messages.delete(chatKey);
  S.state.drafts.delete(chatKey);
  clearTypingFor(chatKey);
  S.state.outbox = S.state.outbox.filter((item) => {
    if (item.chatId !== chatKey) return true;
    clearTimeout(item.timer);
    return false;
  });
  if (S.state.activeChatId === chatKey) closeChat();
  S.emit('chats');
  if (message && chat) toast(message.replace('{title}', S.chatTitle(chat)));
}

// ---------------------------------------------------------------------------
// Opening and closing chats

/**
 * Open a chat. `hint` is a summary to show when the chat isn't in the list yet
 * (just created or joined, before GET /chats has it).
 */
export function openChat(id, hint) {
  const k = S.key(id);
  if (!k) return;
  if (hint && !S.state.chats.has(k)) {
    S.state.chats.set(k, { unread: 0, last_message: null, ...hint, chat_id: hint.chat_id ?? id });
  }
  if (S.state.activeChatId === k) {
    S.emit('active', { chatId: k, same: true });
    return;
  }
  stopTyping();
  S.state.activeChatId = k;
  const chat = S.state.chats.get(k);
  if (chat) chat.unread = 0;
  S.emit('active', { chatId: k });
  S.emit('chats');
  loadDetails(k);
  const cache = S.state.messages.get(k);
  if (!cache || (!cache.loaded && !cache.loading)) loadInitial(k);
  else markReadIfVisible(k);
}

export function closeChat() {
  if (!S.state.activeChatId) return;
  stopTyping();
  S.state.activeChatId = null;
  S.emit('active', { chatId: null });
  S.emit('chats');
}

// ---------------------------------------------------------------------------
// Members and details

export async function loadDetails(chatKey) {
  try {
    const details = await api.chat(chatKey);
    if (!S.state.chats.has(chatKey) && S.state.activeChatId !== chatKey) return;
    for (const m of details.members || []) S.upsertUser(m);
    S.state.details.set(chatKey, details);
    const mine = (details.members || []).find((m) => S.isMe(m.id));
    if (mine?.last_read_message_id != null) {
      const prev = lastReadSent.get(chatKey);
      if (prev == null || S.cmpId(mine.last_read_message_id, prev) > 0) {
        lastReadSent.set(chatKey, mine.last_read_message_id);
      }
    }
    S.emit('details', { chatId: chatKey });
    S.emit('presence', {});
    markReadIfVisible(chatKey);
  } catch (err) {
    if (err.status === 403 || err.status === 404) {
      removeChatLocally(chatKey, 'You are no longer a member of {title}.');
    }
  }
}

/** Reload members soon; bursts of member events collapse into one request. */
function reloadDetailsSoon(chatKey) {
  if (!S.state.details.has(chatKey) && S.state.activeChatId !== chatKey) return;
  clearTimeout(detailTimers.get(chatKey));
  detailTimers.set(chatKey, setTimeout(() => {
    detailTimers.delete(chatKey);
    loadDetails(chatKey);
  }, 250));
}

export async function addMember(chatKey, user) {
  try {
    await api.addMember(S.wireId(chatKey), S.wireId(user.id));
    toast(`${user.username} was added to the group.`, { kind: 'success' });
    await loadDetails(chatKey);
    return true;
  } catch (err) {
    reportError(err, "Couldn't add that person.");
    return false;
  }
}

export async function removeMember(chatKey, member) {
  try {
    await api.removeMember(chatKey, member.id);
    toast(`${member.username} was removed from the group.`);
    await loadDetails(chatKey);
    return true;
  } catch (err) {
    reportError(err, "Couldn't remove that member.");
    return false;
  }
}

export async function leaveChat(chatKey) {
  const title = S.chatTitle(S.state.chats.get(chatKey)) || 'the group';
  leaving.add(chatKey);
  try {
    await api.leave(chatKey);
    removeChatLocally(chatKey); // may already be gone if the member_left event came first
    toast(`You left ${title}.`);
    return true;
  } catch (err) {
    reportError(err, "Couldn't leave the group.");
    return false;
  } finally {
    setTimeout(() => leaving.delete(chatKey), 5000); // the event may trail the response
  }
}

// ---------------------------------------------------------------------------
// Creating and joining

export async function startDirect(user) {
  const { chat_id: chatId } = await api.openDirect(user.id);
  await refreshChats();
  openChat(chatId, { kind: 'direct', username: user.username, name: null, peer: user });
  return chatId;
}

export async function createGroup(name, memberIds, visibility) {
  const { chat_id: chatId } = await api.createGroup(name, memberIds.map(S.wireId), visibility);
  await refreshChats();
  openChat(chatId, { kind: 'group', username: name, name });
  return chatId;
}

export async function joinRoom(room) {
  if (!room.is_member) await api.join(room.chat_id);
  await refreshChats();
  openChat(room.chat_id, { kind: 'group', username: room.name, name: room.name });
}

// ---------------------------------------------------------------------------
// History

function loadInitial(chatKey) {
  const cache = S.state.messages.get(chatKey) || S.createCache(chatKey);
  cache.loading = true;
  cache.error = null;
  S.emit('messages', { chatId: chatKey, kind: 'reset' });
  const run = (async () => {
    try {
      const page = await api.messages(chatKey, { limit: PAGE_SIZE });
      if (S.state.messages.get(chatKey) !== cache) return;
      S.mergeMessages(cache, page);
      cache.hasMore = Array.isArray(page) && page.length >= PAGE_SIZE;
      cache.loaded = true;
    } catch (err) {
      cache.error = err;
      if (err.status === 403 || err.status === 404) {
        removeChatLocally(chatKey, 'You are no longer a member of {title}.');
        return;
      }
    } finally {
      cache.loading = false;
      cache.loadingPromise = null;
    }
    S.emit('messages', { chatId: chatKey, kind: 'reset' });
    markReadIfVisible(chatKey);
  })();
  cache.loadingPromise = run;
  return run;
}

export function retryLoad() {
  const k = S.state.activeChatId;
  if (k) loadInitial(k);
}

/** Load the page before the oldest message shown (scrolling up). */
export async function loadOlder() {
  const k = S.state.activeChatId;
  const cache = k && S.state.messages.get(k);
  if (!cache || !cache.loaded || !cache.hasMore || cache.loadingOlder) return;
  const before = S.oldestId(cache);
  if (before == null) {
    cache.hasMore = false;
    return;
  }
  cache.loadingOlder = true;
  S.emit('messages', { chatId: k, kind: 'status' });
  let added = 0;
  try {
    const page = await api.messages(k, { before, limit: PAGE_SIZE });
    added = S.mergeMessages(cache, page);
    cache.hasMore = Array.isArray(page) && page.length >= PAGE_SIZE;
  } catch (err) {
    reportError(err, "Couldn't load earlier messages.");
  } finally {
    cache.loadingOlder = false;
  }
  S.emit('messages', { chatId: k, kind: added ? 'prepend' : 'status' });
}

/** Fetch everything newer than what we have (after a reconnect). */
async function catchUp(chatKey) {
  const cache = S.state.messages.get(chatKey);
  if (!cache) return;
  if (cache.loadingPromise) await cache.loadingPromise;
  if (S.state.messages.get(chatKey) !== cache) return;
  if (!cache.loaded) {
    await loadInitial(chatKey);
    return;
  }
  try {
    let after = S.newestId(cache);
    for (;;) {
      const page = after == null
        ? await api.messages(chatKey, { limit: PAGE_SIZE })
        : await api.messages(chatKey, { after, limit: CATCH_UP_PAGE });
      if (S.state.messages.get(chatKey) !== cache || !Array.isArray(page)) return;
      const added = S.mergeMessages(cache, page);
      for (const m of page) resolvePending(chatKey, m, false);
      if (added) S.emit('messages', { chatId: chatKey, kind: 'append' });
      S.emit('outbox', { chatId: chatKey });
      if (after == null || page.length < CATCH_UP_PAGE) break;
      after = page.reduce((max, m) => (S.cmpId(m.id, max) > 0 ? m.id : max), after);
    }
  } catch (err) {
    reportError(err, "Couldn't fetch missed messages.");
  }
  markReadIfVisible(chatKey);
}

// ---------------------------------------------------------------------------
// Sending: messages go into an outbox shown as "sending" bubbles; the server's echo
// (matched by chat and text) replaces them, so nothing ever shows twice.

export function sendMessage(text) {
  const k = S.state.activeChatId;
  const body = String(text || '').trim();
  if (!k || !body || charCount(body) > MAX_MESSAGE_CHARS) return false;
  const item = { tempId: `p${++pendingSeq}`, chatId: k, text: body, state: 'queued', timer: 0 };
  S.state.outbox.push(item);
  stopTyping();
  transmit(item);
  S.emit('outbox', { chatId: k, added: true });
  return true;
}

function transmit(item) {
  clearTimeout(item.timer);
  if (send({ chat_id: S.wireId(item.chatId), message: item.text })) {
    item.state = 'sent';
    item.sentAt = Date.now();
    item.timer = setTimeout(() => {
      if (!S.state.outbox.includes(item) || item.state !== 'sent') return;
      item.state = 'failed';
      S.emit('outbox', { chatId: item.chatId });
    }, SEND_TIMEOUT_MS);
  } else {
    item.state = 'queued'; // goes out when the socket reconnects
  }
}

function flushOutbox() {
  for (const item of S.state.outbox) if (item.state === 'queued') transmit(item);
  S.emit('outbox', {});
}

export function retryPending(tempId) {
  const item = S.state.outbox.find((i) => i.tempId === tempId);
  if (!item) return;
  transmit(item);
  S.emit('outbox', { chatId: item.chatId });
}

export function discardPending(tempId) {
  const item = S.state.outbox.find((i) => i.tempId === tempId);
  if (!item) return;
  clearTimeout(item.timer);
  S.state.outbox = S.state.outbox.filter((i) => i !== item);
  S.emit('outbox', { chatId: item.chatId });
}

/** Remove the outbox entry a server message of ours confirms. */
function resolvePending(chatKey, message, notify = true) {
  if (!S.isMe(message.user_id)) return;
  const candidates = S.state.outbox.filter((i) => i.chatId === chatKey && i.state !== 'queued');
  if (!candidates.length) return;
  // Exact text first; otherwise the oldest in flight (the server may normalise text).
  const item = candidates.find((i) => i.text === message.message)
    || candidates.find((i) => i.state === 'sent');
  if (!item) return;
  clearTimeout(item.timer);
  S.state.outbox = S.state.outbox.filter((i) => i !== item);
  if (notify) S.emit('outbox', { chatId: chatKey });
}

// ---------------------------------------------------------------------------
// Typing (outgoing)

/** Call on every composer edit. */
export function composerChanged(hasText) {
  const k = S.state.activeChatId;
  if (!k) return;
  if (!hasText) {
    stopTyping();
    return;
  }
  if (typingOut.chatKey && typingOut.chatKey !== k) stopTyping();
  const now = Date.now();
  if (now - typingOut.lastSent >= TYPING_REPEAT_MS) {
    if (send({ chat_id: S.wireId(k), action: 'typing' })) {
      typingOut.lastSent = now;
      typingOut.chatKey = k;
    }
  }
  clearTimeout(typingOut.idleTimer);
  typingOut.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

export function stopTyping() {
  clearTimeout(typingOut.idleTimer);
  if (typingOut.chatKey) send({ chat_id: S.wireId(typingOut.chatKey), action: 'stop_typing' });
  typingOut.chatKey = null;
  typingOut.lastSent = 0;
}

// Typing (incoming)

function setRemoteTyping(chatKey, userId, username, typing) {
  const uk = S.key(userId);
  let perChat = S.state.typing.get(chatKey);
  const existing = perChat?.get(uk);
  if (existing) clearTimeout(existing.timer);
  if (typing) {
    if (!perChat) {
      perChat = new Map();
      S.state.typing.set(chatKey, perChat);
    }
    perChat.set(uk, {
      username: username || existing?.username,
      timer: setTimeout(() => setRemoteTyping(chatKey, userId, null, false), REMOTE_TYPING_TTL_MS),
    });
  } else {
    if (!existing) return;
    perChat.delete(uk);
    if (!perChat.size) S.state.typing.delete(chatKey);
  }
  S.emit('typing', { chatId: chatKey });
}

function clearTypingFor(chatKey) {
  const perChat = S.state.typing.get(chatKey);
  if (!perChat) return;
  for (const t of perChat.values()) clearTimeout(t.timer);
  S.state.typing.delete(chatKey);
  S.emit('typing', { chatId: chatKey });
}

// ---------------------------------------------------------------------------
// Read receipts

/** Report the newest message of the open chat as read, if it moved forward. */
export function markReadIfVisible(chatKey = S.state.activeChatId) {
  if (!chatKey || !isVisible(chatKey)) return;
  const chat = S.state.chats.get(chatKey);
  if (chat?.unread) {
    chat.unread = 0;
    S.emit('chats');
  }
  const latest = S.newestId(S.state.messages.get(chatKey));
  if (latest == null) return;
  const prev = lastReadSent.get(chatKey);
  if (prev != null && S.cmpId(latest, prev) <= 0) return;
  lastReadSent.set(chatKey, latest);
  const frame = { action: 'read', chat_id: S.wireId(chatKey), message_id: S.wireId(latest) };
  if (!send(frame)) {
    api.markRead(chatKey, S.wireId(latest)).catch(() => {
      if (lastReadSent.get(chatKey) === latest) lastReadSent.set(chatKey, prev);
    });
  }
}

// ---------------------------------------------------------------------------
// Socket events

export function onSocketOpen() {
  // Caches of chats that aren't open missed whatever was said while we were away:
  // drop them, they reload on open. The open chat is caught up instead.
  for (const k of [...S.state.messages.keys()]) {
    if (k !== S.state.activeChatId) S.state.messages.delete(k);
  }
  for (const k of [...S.state.typing.keys()]) clearTypingFor(k);
  if (typingOut.chatKey) typingOut.lastSent = 0; // re-announce typing on the new connection
  flushOutbox();
  const k = S.state.activeChatId;
  const jobs = [refreshChats()];
  if (k) jobs.push(catchUp(k), loadDetails(k));
  return Promise.allSettled(jobs);
}

export function handleEvent(ev) {
  if (!ev || typeof ev !== 'object') return;
  const chatKey = S.key(ev.chat_id);
  switch (ev.action) {
    case undefined:
    case null:
      if (ev.id != null && chatKey) onNewMessage(ev);
      break;
    case 'typing':
    case 'stop_typing':
      if (chatKey && !S.isMe(ev.user_id)) setRemoteTyping(chatKey, ev.user_id, ev.username, ev.action === 'typing');
      break;
    case 'user_status':
      S.upsertUser({ id: ev.user_id, username: ev.username, is_online: !!ev.is_online, last_seen: ev.last_seen ?? null });
      if (!ev.is_online) setRemoteTypingOffEverywhere(ev.user_id);
      S.emit('presence', { userId: S.key(ev.user_id) });
      break;
    case 'member_joined':
    case 'member_left':
      onMembership(ev, chatKey);
      break;
    case 'chat_created':
      refreshChats();
      break;
    case 'read':
      onRead(ev, chatKey);
      break;
    case 'error':
      onServerError(ev);
      break;
    default:
      break; // unknown events are ignored so newer servers don't break older clients
  }
}

function onNewMessage(m) {
  const k = S.key(m.chat_id);
  const mine = S.isMe(m.user_id);
  const chat = S.state.chats.get(k);
  if (!chat) refreshChats(); // a chat we haven't heard of yet

  const cache = S.state.messages.get(k);
  const added = cache ? S.mergeMessages(cache, [m]) : 0;
  if (mine) resolvePending(k, m, false);
  setRemoteTyping(k, m.user_id, m.username, false);
  if (added) S.emit('messages', { chatId: k, kind: 'append', mine });
  if (mine) S.emit('outbox', { chatId: k });

  if (chat) {
    const isNew = !chat.last_message || S.cmpId(m.id, chat.last_message.id) > 0;
    if (isNew) {
      chat.last_message = m;
      if (!mine && !isVisible(k)) chat.unread = (Number(chat.unread) || 0) + 1;
      S.emit('chats');
      if (!mine) {
        const where = S.isGroup(chat) ? ` in ${S.chatTitle(chat)}` : '';
        announce(S.state.activeChatId === k
          ? `${m.username}: ${truncate(m.message, 140)}`
          : `New message from ${m.username}${where}: ${truncate(m.message, 80)}`);
      }
    }
  }
  markReadIfVisible(k);
}

function setRemoteTypingOffEverywhere(userId) {
  for (const k of [...S.state.typing.keys()]) setRemoteTyping(k, userId, null, false);
}

function onMembership(ev, chatKey) {
  if (!chatKey) return;
  if (S.isMe(ev.user_id)) {
    if (ev.action === 'member_left') {
      if (!S.state.chats.has(chatKey)) return;
      removeChatLocally(chatKey, leaving.has(chatKey) ? null : 'You were removed from {title}.');
    } else if (!S.state.chats.has(chatKey)) {
      refreshChats();
    }
    return;
  }
  if (!S.state.chats.has(chatKey)) {
    if (ev.action === 'member_joined') refreshChats();
    return;
  }
  if (ev.action === 'member_left') setRemoteTyping(chatKey, ev.user_id, null, false);
  reloadDetailsSoon(chatKey);
}

function onRead(ev, chatKey) {
  if (!chatKey || ev.message_id == null) return;
  const details = S.state.details.get(chatKey);
  if (details) {
    const member = (details.members || []).find((m) => S.sameId(m.id, ev.user_id));
    if (!member) {
      reloadDetailsSoon(chatKey);
    } else if (member.last_read_message_id == null || S.cmpId(ev.message_id, member.last_read_message_id) > 0) {
      member.last_read_message_id = ev.message_id;
      S.emit('details', { chatId: chatKey, kind: 'read' });
    }
  }
  if (S.isMe(ev.user_id)) {
    // Read on another device/tab: clear the badge when it covers the latest message.
    const prev = lastReadSent.get(chatKey);
    if (prev == null || S.cmpId(ev.message_id, prev) > 0) lastReadSent.set(chatKey, ev.message_id);
    const chat = S.state.chats.get(chatKey);
    if (chat?.unread && (!chat.last_message || S.cmpId(ev.message_id, chat.last_message.id) >= 0)) {
      chat.unread = 0;
      S.emit('chats');
    }
  }
}

function onServerError(ev) {
  // Frames are handled in order, so an error right after a send most likely concerns it.
  const inFlight = S.state.outbox.find((i) => i.state === 'sent' && Date.now() - i.sentAt < 5000);
  if (inFlight) {
    clearTimeout(inFlight.timer);
    inFlight.state = 'failed';
    S.emit('outbox', { chatId: inFlight.chatId });
  }
  toast(ev.detail || 'The server could not do that.', { kind: 'error' });
}

/** Call when the page becomes visible again. */
export function onVisible() {
  markReadIfVisible();
}
