// chat.js — The controller: it starts the socket and hands each server event to the
// action that applies it, and it holds the steps that span several of them (opening a
// chat touches the list, its members, its history and read receipts at once). The
// actions themselves live in actions/; views call them through app.js.

import { api } from './api.js';
import { socket } from './socket.js';
import * as S from './store.js';
import { refreshChats, loadDetails, onMembership, onRead } from './actions/chats.js';
import {
  loadInitial, resumeAll, onResync, flushOutbox, requeueOutbox, onAck, onNewMessage, onServerError,
} from './actions/messages.js';
import { restoreOutbox, clearStoredOutbox } from './outbox.js';
import { markReadIfVisible } from './actions/receipts.js';
import { stopTyping, reannounceTyping, onTyping } from './actions/typing.js';
import { onMessageChanged } from './actions/edits.js';

export { refreshChats, closeChat, addMember, removeMember, leaveChat } from './actions/chats.js';
export {
  sendMessage, loadOlder, loadUntil, retryLoad, retryPending, discardPending,
} from './actions/messages.js';
export { editMessage, deleteMessage, react, recentEmoji } from './actions/edits.js';
export { composerChanged, stopTyping } from './actions/typing.js';

/**
 * Open the socket. `renew` runs if it closes for auth reasons and resolves true when the
 * session goes on (the socket then reconnects and resumes); `dropped` runs on any other
 * drop. What a previous page of this user left unsent goes out once connected.
 */
export function connect({ renew, dropped }) {
  restoreOutbox();
  socket.start({
    state: onConnectionState,
    ready: onReady,
    message: onNewMessage,
    ack: onAck,
    resync: onResync,
    typing: onTyping,
    userStatus: onUserStatus,
    membership: onMembership,
    chatCreated: () => refreshChats(),
    read: onRead,
    messageChanged: onMessageChanged,
    error: onServerError,
    authClose: renew,
    drop: dropped,
  });
}

export function disconnect() {
  socket.stop();
}

/** Logging out on purpose: messages still unsent are not left behind on this device. */
export function forgetUnsent() {
  clearStoredOutbox();
}

/** Reconnect now instead of after the backoff (the network came back, the tab was shown). */
export function reconnectNow() {
  socket.retryNow();
}

function onConnectionState(state) {
  if (state !== 'open') requeueOutbox();
  S.setConnection(state);
}

/**
 * The server greets every (re)connection. It brings the limits the server enforces, and
 * means we are live, so whatever happened while we were away can now be caught up: each
 * loaded chat resumes from the last message it holds without a gap (the server replays
 * the rest, then the live ones), and the outbox goes again.
 */
function onReady(ev) {
  S.setLimits(ev.limits);
  S.clearAllTyping();
  reannounceTyping();
  resumeAll(ev.chat_ids);
  flushOutbox();
  const k = S.state.activeChatId;
  const jobs = [refreshChats()];
  if (k) jobs.push(loadDetails(k));
  return Promise.allSettled(jobs);
}

function onUserStatus(ev) {
  S.upsertUser({ id: ev.user_id, username: ev.username, is_online: !!ev.is_online, last_seen: ev.last_seen ?? null });
  if (!ev.is_online) S.stopTypingEverywhere(ev.user_id);
  S.emit('presence', { userId: S.key(ev.user_id) });
}

/** Call when the page becomes visible again. */
export function onVisible() {
  markReadIfVisible();
}

// ---------------------------------------------------------------------------
// Opening chats

/**
 * Open a chat. `hint` is a summary to show when the chat isn't in the list yet
 * (just created or joined, before GET /chats has it).
 */
export function openChat(id, hint) {
  const k = S.key(id);
  if (!k) return;
  if (hint) S.addChatHint(k, hint);
  if (S.state.activeChatId === k) {
    S.emit('active', { chatId: k, same: true });
    return;
  }
  stopTyping();
  S.setActiveChat(k);
  loadDetails(k);
  const cache = S.state.messages.get(k);
  if (!cache || (!cache.loaded && !cache.loading)) loadInitial(k);
  else markReadIfVisible(k);
}

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
