// actions/messages.js — Messages in and out. History comes a page at a time: the latest
// page when a chat opens, older ones as you scroll up. Nothing is missed across a drop or
// a server restart: on every new connection each loaded chat is resumed from the last
// `seq` it holds without a gap, and the server replays what came meanwhile before the live
// stream (or says `resync` when that is too far back: the open chat then pages forward
// with after_seq). What you send waits in the outbox (outbox.js), shown as "sending"
// bubbles, until the server acknowledges its client_id; unacknowledged messages go again,
// in order and under the same client_id, on every new connection, so a retry never
// stores a message twice.

import { api } from '../api.js';
import { socket } from '../socket.js';
import * as S from '../store.js';
import {
  queueOutgoing, outboxItem, saveOutgoing, dropOutgoing,
} from '../outbox.js';
import { toast, announce, reportError } from '../views/feedback.js';
import { charCount, truncate } from '../format.js';
import { chatGone, refreshChats } from './chats.js';
import { isVisible, markReadIfVisible, markReadSoon } from './receipts.js';
import { stopTyping, typingDone } from './typing.js';

const PAGE_SIZE = 50;
const ACK_TIMEOUT_MS = 10_000;    // a sent message not acknowledged by then shows as not delivered
const RETRY_BASE_MS = 1000;       // after `rate_limited`: 1 s, doubling...
const RETRY_MAX_MS = 10_000;      // ...up to this
const FILL_MAX_PAGES = 5;         // after `resync`, page forward this far before showing the latest page
// A refused message is final (it is not sent again by itself) unless the refusal was the
// server's own trouble; one for a chat we are no longer in is dropped if no chat shows it.
const TRANSIENT_CODES = new Set(['internal_error']);
const GONE_CODES = new Set(['not_a_member', 'chat_not_found']);

// ---------------------------------------------------------------------------
// History

export function loadInitial(chatKey) {
  const cache = S.state.messages.get(chatKey) || S.createCache(chatKey);
  cache.loading = true;
  cache.error = null;
  cache.loadEpoch = socket.epoch;
  S.emit('messages', { chatId: chatKey, kind: 'reset' });
  const run = (async () => {
    try {
      const page = await api.messages(chatKey, { limit: PAGE_SIZE });
      if (S.state.messages.get(chatKey) !== cache) return;
      S.mergeMessages(cache, page);
      S.noteLatestPage(cache, page);
      confirmFrom(page);
      cache.hasMore = Array.isArray(page) && page.length >= PAGE_SIZE;
      cache.loaded = true;
    } catch (err) {
      cache.error = err;
      if (err.status === 403 || err.status === 404) {
        chatGone(chatKey);
        return;
      }
    } finally {
      cache.loading = false;
      cache.loadingPromise = null;
    }
    // A connection greeted while the page was on its way may have missed what came between
    // the two: resume from the page (the server skips what we hold).
    if (cache.loaded && socket.ready && socket.epoch !== cache.loadEpoch) resumeChat(chatKey);
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
  const first = S.oldest(cache);
  if (!first) {
    cache.hasMore = false;
    return;
  }
  const where = Number.isFinite(first.seq) ? { beforeSeq: first.seq } : { before: first.id };
  cache.loadingOlder = true;
  S.emit('messages', { chatId: k, kind: 'status' });
  let added = 0;
  try {
    const page = await api.messages(k, { ...where, limit: PAGE_SIZE });
    if (S.state.messages.get(k) !== cache) return;
    added = S.mergeMessages(cache, page);
    cache.hasMore = Array.isArray(page) && page.length >= PAGE_SIZE;
  } catch (err) {
    reportError(err, "Couldn't load earlier messages.");
  } finally {
    cache.loadingOlder = false;
  }
  S.emit('messages', { chatId: k, kind: added ? 'prepend' : 'status' });
}

/**
 * Ask the server for whatever a loaded chat is missing, then its live messages; and for the
 * messages changed (edited, deleted, reacted to) since the last change we saw, whose events
 * may have been lost with the connection.
 */
function resumeChat(chatKey) {
  const cache = S.state.messages.get(chatKey);
  if (!cache?.loaded || cache.lastSeq == null) return;
  socket.sendResume(chatKey, cache.lastSeq);
  catchUpChanges(chatKey, cache);
}

async function catchUpChanges(chatKey, cache) {
  const pageSize = S.limit('max_history_page') || PAGE_SIZE;
  try {
    for (let n = 0; n < FILL_MAX_PAGES; n++) {
      const page = await api.changes(chatKey, cache.lastChange, pageSize);
      if (S.state.messages.get(chatKey) !== cache || !Array.isArray(page) || !page.length) return;
      let changed = false;
      for (const m of page) changed = S.patchMessage(cache, m.id, m) || changed;
      if (changed) S.emit('messages', { chatId: chatKey, kind: 'status' });
      if (page.length < pageSize) return;
    }
  } catch {
    // The next connection asks again; live events keep coming meanwhile.
  }
}

/**
 * Page back until the message `id` is loaded (to show what a reply answers). Returns whether
 * it is.
 */
export async function loadUntil(chatKey, id) {
  for (let n = 0; n < 20; n++) {
    const cache = S.state.messages.get(chatKey);
    if (!cache) return false;
    if (cache.ids.has(S.key(id))) return true;
    if (!cache.hasMore) return false;
    if (cache.loadingOlder) {
      await new Promise((resolve) => { setTimeout(resolve, 100); });
      continue;
    }
    await loadOlder();
  }
  return false;
}

/**
 * A new connection is greeted: resume every loaded chat that is still ours (`chatIds`, from
 * the greeting). Caches of chats we are no longer in are dropped; a chat still loading
 * resumes when its page arrives; the open chat, if it failed to load, tries again.
 */
export function resumeAll(chatIds = null) {
  const ours = Array.isArray(chatIds) ? new Set(chatIds.map(S.key)) : null;
  for (const [k, cache] of [...S.state.messages]) {
    if (ours && !ours.has(k)) {
      if (k !== S.state.activeChatId) S.state.messages.delete(k); // loadDetails settles the open one
    } else if (cache.loaded) {
      resumeChat(k);
    } else if (!cache.loading && k === S.state.activeChatId) {
      loadInitial(k);
    }
  }
}

/**
 * The server would not replay that far back. The open chat pages forward from where it
 * stops (live messages keep arriving meanwhile); any other chat's cache goes, to reload
 * on opening.
 */
export function onResync(ev) {
  const k = S.key(ev.chat_id);
  const cache = S.state.messages.get(k);
  if (!cache) return;
  if (k === S.state.activeChatId && cache.loaded) fillForward(k, cache);
  else S.state.messages.delete(k);
}

/**
 * Fetch what the open chat missed with `after_seq`, in the largest pages the server allows.
 * When even that is too much to page through, show the latest page instead (older pages
 * load on scrolling up, as always).
 */
async function fillForward(chatKey, cache) {
  const pageSize = S.limit('max_history_page') || PAGE_SIZE;
  try {
    for (let n = 0; n < FILL_MAX_PAGES; n++) {
      const page = await api.messages(chatKey, { afterSeq: cache.lastSeq, limit: pageSize });
      if (S.state.messages.get(chatKey) !== cache || !Array.isArray(page)) return;
      if (S.mergeMessages(cache, page)) S.emit('messages', { chatId: chatKey, kind: 'append' });
      confirmFrom(page);
      if (page.length < pageSize) {
        markReadIfVisible(chatKey);
        return;
      }
    }
  } catch (err) {
    if (err.status === 403 || err.status === 404) {
      chatGone(chatKey);
      return;
    }
  }
  if (S.state.messages.get(chatKey) !== cache) return;
  S.createCache(chatKey);
  loadInitial(chatKey);
}

// ---------------------------------------------------------------------------
// Sending. Each chat's messages go one at a time, the next when the previous is stored (or
// refused for good), so they are stored in the order they were typed even when the server
// drops a frame; messages of different chats do not wait for each other.

/**
 * Send a message to the open chat, answering `replyTo` (a message shown) when given. Returns
 * false when there is nothing (sendable) to send.
 */
export function sendMessage(text, replyTo = null) {
  const k = S.state.activeChatId;
  const body = String(text || '').trim();
  const max = S.limit('max_message_chars');
  if (!k || !body || (max && charCount(body) > max)) return false;
  const quote = replyTo ? {
    id: replyTo.id, user_id: replyTo.user_id, username: replyTo.username,
    message: truncate(replyTo.message, 101), deleted: !!replyTo.deleted,
  } : null;
  queueOutgoing(k, body, quote);
  stopTyping();
  pump(k);
  S.emit('outbox', { chatId: k, added: true });
  return true;
}

/**
 * Send the first message waiting in each chat (or in `chatKey`'s), unless it is on its way
 * already; the ones behind it wait in line. No event.
 */
function pump(chatKey = null) {
  const heads = new Set();
  for (const item of S.state.outbox) {
    if (item.final || (chatKey && item.chatId !== chatKey)) continue;
    if (heads.has(item.chatId)) {
      if (item.state !== 'failed') item.state = socket.ready ? 'sending' : 'queued';
      continue;
    }
    heads.add(item.chatId);
    // A head that timed out stays "not delivered" until Retry or the next connection.
    if (!item.inFlight && item.state !== 'failed') transmit(item);
  }
}

/** Send an item on the current connection, or leave it queued for the next one. No event. */
function transmit(item) {
  clearTimeout(item.timer);
  item.timer = 0;
  item.inFlight = socket.ready
    && socket.sendMessage(item.chatId, item.text, item.clientId, item.quote?.id ?? null);
  if (!item.inFlight) {
    item.state = 'queued';
    return;
  }
  item.state = 'sending';
  item.timer = setTimeout(() => {
    if (!S.state.outbox.includes(item) || !item.inFlight) return;
    // Not final: it goes again with the next connection, or on "Retry".
    item.inFlight = false;
    item.state = 'failed';
    S.emit('outbox', { chatId: item.chatId });
  }, ACK_TIMEOUT_MS);
}

/** The connection dropped: everything not refused for good waits for the next one. */
export function requeueOutbox() {
  let changed = false;
  for (const item of S.state.outbox) {
    if (item.final || item.state === 'queued') continue;
    clearTimeout(item.timer);
    Object.assign(item, { timer: 0, inFlight: false, state: 'queued' });
    changed = true;
  }
  if (changed) S.emit('outbox', {});
}

/** A new connection: send again, in order, everything not acknowledged nor refused for good. */
export function flushOutbox() {
  for (const item of S.state.outbox) {
    if (item.final) continue;
    clearTimeout(item.timer);
    Object.assign(item, { timer: 0, inFlight: false, state: 'queued' });
  }
  pump();
  S.emit('outbox', {});
}

/** Send an in-flight item again after a while (the server asked us to slow down). */
function transmitLater(item) {
  clearTimeout(item.timer);
  const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** item.retries);
  item.retries += 1;
  item.timer = setTimeout(() => {
    if (!S.state.outbox.includes(item) || !item.inFlight) return;
    transmit(item);
    S.emit('outbox', { chatId: item.chatId });
  }, delay);
}

/**
 * Messages of ours that name their client_id (history, a replay, an echo) confirm the
 * outbox items still waiting for an ack that went missing. Emits 'outbox' when any did.
 */
function confirmFrom(messages) {
  const chats = new Set();
  for (const m of Array.isArray(messages) ? messages : []) {
    if (m?.client_id == null || !S.isMe(m.user_id)) continue;
    const item = outboxItem(String(m.client_id));
    if (!item) continue;
    dropOutgoing(item);
    chats.add(item.chatId);
  }
  for (const chatId of chats) {
    pump(chatId);
    S.emit('outbox', { chatId });
  }
}

export function retryPending(clientId) {
  const item = outboxItem(clientId);
  if (!item) return;
  clearTimeout(item.timer);
  Object.assign(item, { timer: 0, final: false, detail: null, retries: 0, inFlight: false, state: 'queued' });
  saveOutgoing(item);
  pump(item.chatId);
  S.emit('outbox', { chatId: item.chatId });
}

export function discardPending(clientId) {
  const item = outboxItem(clientId);
  if (!item) return;
  dropOutgoing(item);
  pump(item.chatId);
  S.emit('outbox', { chatId: item.chatId });
}

// ---------------------------------------------------------------------------
// Socket events

/**
 * A message we sent is stored: it leaves the outbox and joins the history under the id and
 * seq the server gave it (its echo, before or after, is the same message and shows once).
 */
export function onAck(ev) {
  const item = outboxItem(String(ev.client_id));
  if (!item) return; // a second ack for a message sent twice, or another tab's
  dropOutgoing(item);
  const k = item.chatId;
  const me = S.state.me;
  const m = {
    id: ev.id,
    seq: ev.seq,
    chat_id: ev.chat_id,
    user_id: me.id,
    username: me.username,
    message: item.text,
    created_at: new Date().toISOString(),
    reply_to: item.quote || undefined,
    reactions: [],
    local: true, // the server's copy replaces it when it comes
  };
  const cache = S.state.messages.get(k);
  const added = cache ? S.mergeMessages(cache, [m]) : 0;
  if (added) S.emit('messages', { chatId: k, kind: 'append', mine: true });
  pump(k); // the next message of the chat may go
  S.emit('outbox', { chatId: k });
  const chat = S.state.chats.get(k);
  if (chat) S.notePreview(chat, m, true);
}

/** A message, from anyone: live, replayed after a resume, or the echo of one of ours. */
export function onNewMessage(m) {
  const k = S.key(m.chat_id);
  const mine = S.isMe(m.user_id);
  const chat = S.state.chats.get(k);
  if (!chat) refreshChats(); // a chat we haven't heard of yet

  const cache = S.state.messages.get(k);
  const replaced = !!cache && S.replaceLocal(cache, m);
  const added = cache && !replaced ? S.mergeMessages(cache, [m]) : 0;
  typingDone(k, m.user_id);
  if (added) S.emit('messages', { chatId: k, kind: 'append', mine });
  else if (replaced) S.emit('messages', { chatId: k, kind: 'status' });
  if (mine) confirmFrom([m]);

  if (chat && S.notePreview(chat, m, isVisible(k)) && !mine) {
    const where = S.isGroup(chat) ? ` in ${S.chatTitle(chat)}` : '';
    announce(S.state.activeChatId === k
      ? `${m.username}: ${truncate(m.message, 140)}`
      : `New message from ${m.username}${where}: ${truncate(m.message, 80)}`);
  }
  markReadSoon(k);
}

let resendTimer = 0;

/**
 * The server refused a frame. A refused message (named by its client_id) is marked not
 * delivered, or sent again later when the server only asked us to slow down; a dropped
 * frame it does not name may have been any of ours, so what matters (unacknowledged
 * messages, resumes) goes again a moment later: both are safe to repeat.
 */
export function onServerError(ev) {
  const item = ev.client_id != null ? outboxItem(String(ev.client_id)) : null;
  if (ev.code === 'rate_limited') {
    if (item) transmitLater(item);
    else if (ev.client_id == null && !resendTimer) {
      resendTimer = setTimeout(() => {
        resendTimer = 0;
        if (!socket.ready) return; // the next connection sends all of it anyway
        for (const i of S.state.outbox) if (i.inFlight) transmit(i);
        resumeAll();
      }, RETRY_BASE_MS * 2);
    }
    return;
  }
  if (item) {
    clearTimeout(item.timer);
    if (GONE_CODES.has(ev.code) && S.state.chatsLoaded && !S.state.chats.has(item.chatId)) {
      dropOutgoing(item); // for a chat no longer in our list, where nobody would ever see it
    } else {
      Object.assign(item, {
        timer: 0, inFlight: false, state: 'failed', final: !TRANSIENT_CODES.has(ev.code), detail: ev.detail || null,
      });
      saveOutgoing(item);
    }
    pump(item.chatId); // the next one in line goes, unless this one may still be sent
    S.emit('outbox', { chatId: item.chatId });
  } else if (ev.client_id != null) {
    return; // about a message that is no longer waiting here
  }
  toast(ev.detail || 'The server could not do that.', { kind: 'error' });
}
