// actions/messages.js — Messages in and out. History comes a page at a time: the latest
// page when a chat opens, older ones as you scroll up, and after a reconnect everything
// newer than what we hold, because events sent while we were away are gone for good.
// What you send waits in an outbox, shown as "sending" bubbles, until the server's echo
// replaces it: nothing shows twice, and nothing typed is lost when the connection drops.

import { api } from '../api.js';
import { socket } from '../socket.js';
import * as S from '../store.js';
import { toast, announce, reportError } from '../views/feedback.js';
import { charCount, truncate } from '../format.js';
import { chatGone, refreshChats } from './chats.js';
import { isVisible, markReadIfVisible } from './receipts.js';
import { stopTyping, typingDone } from './typing.js';

const PAGE_SIZE = 50;
const SEND_TIMEOUT_MS = 10_000; // a sent message not echoed by then is marked failed

// ---------------------------------------------------------------------------
// History

export function loadInitial(chatKey) {
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
        chatGone(chatKey);
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

/** Fetch everything newer than what we have (after a reconnect), in the largest pages the server allows. */
export async function catchUp(chatKey) {
  const cache = S.state.messages.get(chatKey);
  if (!cache) return;
  if (cache.loadingPromise) await cache.loadingPromise;
  if (S.state.messages.get(chatKey) !== cache) return;
  if (!cache.loaded) {
    await loadInitial(chatKey);
    return;
  }
  const pageSize = S.limit('max_history_page') || PAGE_SIZE;
  try {
    let after = S.newestId(cache);
    for (;;) {
      const page = after == null
        ? await api.messages(chatKey, { limit: PAGE_SIZE })
        : await api.messages(chatKey, { after, limit: pageSize });
      if (S.state.messages.get(chatKey) !== cache || !Array.isArray(page)) return;
      const added = S.mergeMessages(cache, page);
      for (const m of page) S.confirmOutgoing(chatKey, m);
      if (added) S.emit('messages', { chatId: chatKey, kind: 'append' });
      S.emit('outbox', { chatId: chatKey });
      if (after == null || page.length < pageSize) break;
      after = page.reduce((max, m) => (S.cmpId(m.id, max) > 0 ? m.id : max), after);
    }
  } catch (err) {
    reportError(err, "Couldn't fetch missed messages.");
  }
  markReadIfVisible(chatKey);
}

// ---------------------------------------------------------------------------
// Sending

/** Send a message to the open chat. Returns false when there is nothing (sendable) to send. */
export function sendMessage(text) {
  const k = S.state.activeChatId;
  const body = String(text || '').trim();
  const max = S.limit('max_message_chars');
  if (!k || !body || (max && charCount(body) > max)) return false;
  const item = S.queueOutgoing(k, body);
  stopTyping();
  transmit(item);
  S.emit('outbox', { chatId: k, added: true });
  return true;
}

function transmit(item) {
  clearTimeout(item.timer);
  if (socket.sendMessage(item.chatId, item.text)) {
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

/** Send what was typed while offline. */
export function flushOutbox() {
  for (const item of S.state.outbox) if (item.state === 'queued') transmit(item);
  S.emit('outbox', {});
}

export function retryPending(tempId) {
  const item = S.outboxItem(tempId);
  if (!item) return;
  transmit(item);
  S.emit('outbox', { chatId: item.chatId });
}

export function discardPending(tempId) {
  const item = S.outboxItem(tempId);
  if (!item) return;
  S.dropOutgoing(item);
  S.emit('outbox', { chatId: item.chatId });
}

// ---------------------------------------------------------------------------
// Socket events

/** A new message, from anyone (ours come back as the confirmation of a send). */
export function onNewMessage(m) {
  const k = S.key(m.chat_id);
  const mine = S.isMe(m.user_id);
  const chat = S.state.chats.get(k);
  if (!chat) refreshChats(); // a chat we haven't heard of yet

  const cache = S.state.messages.get(k);
  const added = cache ? S.mergeMessages(cache, [m]) : 0;
  if (mine) S.confirmOutgoing(k, m);
  typingDone(k, m.user_id);
  if (added) S.emit('messages', { chatId: k, kind: 'append', mine });
  if (mine) S.emit('outbox', { chatId: k });

  if (chat && S.notePreview(chat, m, isVisible(k)) && !mine) {
    const where = S.isGroup(chat) ? ` in ${S.chatTitle(chat)}` : '';
    announce(S.state.activeChatId === k
      ? `${m.username}: ${truncate(m.message, 140)}`
      : `New message from ${m.username}${where}: ${truncate(m.message, 80)}`);
  }
  markReadIfVisible(k);
}

/** The server refused a frame. */
export function onServerError(ev) {
  // Frames are handled in order, so an error right after a send most likely concerns it.
  const inFlight = S.state.outbox.find((i) => i.state === 'sent' && Date.now() - i.sentAt < 5000);
  if (inFlight) {
    clearTimeout(inFlight.timer);
    inFlight.state = 'failed';
    S.emit('outbox', { chatId: inFlight.chatId });
  }
  toast(ev.detail || 'The server could not do that.', { kind: 'error' });
}
