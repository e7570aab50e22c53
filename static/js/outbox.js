// outbox.js — Messages typed here that the server has not acknowledged yet. Each gets a
// client_id when the user presses send; the server stores a message once per client_id,
// so sending it again after a drop, a reconnect or a reload can never duplicate it. The
// outbox is mirrored to localStorage, one list per user, so a reload or a crash loses
// nothing typed. Only this module reads or writes that copy; each change rewrites just
// its own item there, so two tabs of the same person do not erase each other's messages.
//
// Items: {clientId, chatId, text, createdAt, state, final, detail, inFlight, retries, timer}
//   state    'queued' (waits for a connection) | 'sending' (connected: sent, or next in
//            line behind an earlier message of its chat) | 'failed' (see `detail`)
//   final    the server refused it for good (not a member, invalid): never re-sent by itself
//   inFlight sent on this connection, its ack awaited
//   retries  how often the server asked to try again later (rate_limited)
// Sending, acks and errors are actions/messages.js's business; it emits 'outbox'.

import { state } from './store.js';

const STORAGE_PREFIX = 'parley:outbox:';

function storageKey() {
  return state.me?.id == null ? null : `${STORAGE_PREFIX}${state.me.id}`;
}

/** The stored list of the signed-in user; [] when there is none or storage is unavailable. */
function readStored() {
  const k = storageKey();
  if (!k) return [];
  try {
    const list = JSON.parse(window.localStorage.getItem(k) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Apply `change` to the stored list and write it back (storage full or off: memory only). */
function updateStored(change) {
  const k = storageKey();
  if (!k) return;
  try {
    const next = change(readStored());
    if (next.length) window.localStorage.setItem(k, JSON.stringify(next));
    else window.localStorage.removeItem(k);
  } catch {
    // Private mode or a full quota: the outbox still works for this page's lifetime.
  }
}

const stored = (item) => ({
  clientId: item.clientId,
  chatId: item.chatId,
  text: item.text,
  quote: item.quote || null,
  createdAt: item.createdAt,
  final: !!item.final,
  detail: item.detail || null,
});

function saveItem(item) {
  updateStored((list) => {
    const i = list.findIndex((s) => s?.clientId === item.clientId);
    if (i >= 0) list[i] = stored(item);
    else list.push(stored(item));
    return list;
  });
}

function forgetStored(clientIds) {
  const gone = new Set(clientIds);
  updateStored((list) => list.filter((s) => !gone.has(s?.clientId)));
}

/** A fresh client_id (crypto.randomUUID needs a secure context; fall back to random bytes). */
function newClientId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function makeItem(fields) {
  return {
    state: fields.final ? 'failed' : 'queued',
    detail: null,
    inFlight: false,
    retries: 0,
    timer: 0,
    ...fields,
  };
}

/**
 * Take in what a previous page of this user left unsent (call once the user is known).
 * Unsent items come back queued; ones the server refused for good stay failed. No event:
 * views render the outbox when a chat opens.
 */
export function restoreOutbox() {
  const known = new Set(state.outbox.map((i) => i.clientId));
  for (const s of readStored()) {
    if (!s || typeof s.clientId !== 'string' || s.chatId == null || typeof s.text !== 'string') continue;
    if (known.has(s.clientId)) continue;
    known.add(s.clientId);
    state.outbox.push(makeItem({
      clientId: s.clientId,
      chatId: String(s.chatId),
      text: s.text,
      quote: s.quote || null,
      createdAt: s.createdAt || new Date().toISOString(),
      final: !!s.final,
      detail: s.detail || null,
    }));
  }
}

/** Put a typed message in the outbox (and in storage). No event: the sender emits. */
export function queueOutgoing(chatKey, text, quote = null) {
  const item = makeItem({
    clientId: newClientId(), chatId: chatKey, text, quote, createdAt: new Date().toISOString(),
  });
  state.outbox.push(item);
  saveItem(item);
  return item;
}

export const outboxItem = (clientId) => state.outbox.find((i) => i.clientId === clientId) || null;

/** Record a changed state (failed or not) so a reload shows the same. No event. */
export function saveOutgoing(item) {
  if (state.outbox.includes(item)) saveItem(item);
}

/** Take an item out of the outbox, here and in storage (acked or discarded). No event. */
export function dropOutgoing(item) {
  clearTimeout(item.timer);
  state.outbox = state.outbox.filter((i) => i !== item);
  forgetStored([item.clientId]);
}

/** Forget what waits for a chat we are no longer in: it can never be delivered. No event. */
export function dropChatOutgoing(chatKey) {
  const gone = state.outbox.filter((i) => i.chatId === chatKey);
  if (!gone.length) return;
  for (const item of gone) clearTimeout(item.timer);
  state.outbox = state.outbox.filter((i) => i.chatId !== chatKey);
  forgetStored(gone.map((i) => i.clientId));
}

/** Forget this user's stored outbox (an explicit log-out on a possibly shared device). */
export function clearStoredOutbox() {
  const k = storageKey();
  if (!k) return;
  try {
    window.localStorage.removeItem(k);
  } catch {
    // nothing stored, nothing to forget
  }
}
