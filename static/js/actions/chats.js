// actions/chats.js — The chat list and who is in each chat. The list is refetched rather
// than patched from events (events can be missed while offline; GET /chats cannot), so
// bursts of events coalesce into one request. The same goes for members. A chat we are
// no longer in (left, removed, deleted) is dropped here, wherever that was noticed.

import { api } from '../api.js';
import * as S from '../store.js';
import { dropChatOutgoing, dropOutgoing } from '../outbox.js';
import { toast, reportError } from '../views/feedback.js';
import { stopTyping, typingDone } from './typing.js';
import { isVisible, markReadIfVisible } from './receipts.js';

// ---------------------------------------------------------------------------
// The list

/** Refetch GET /chats. Concurrent calls coalesce into one more fetch after the current one. */
export function refreshChats() {
  if (S.state.chatsRequest) {
    S.state.chatsAgain = true;
    return S.state.chatsRequest;
  }
  const run = (async () => {
    try {
      do {
        S.state.chatsAgain = false;
        const list = await api.chats();
        if (S.state.chatsRequest !== run) return; // logged out meanwhile
        applyChats(list);
      } while (S.state.chatsAgain);
    } catch (err) {
      if (err.status !== 401 && !S.state.chatsLoaded) reportError(err, "Couldn't load your chats.");
    } finally {
      if (S.state.chatsRequest === run) S.state.chatsRequest = null;
    }
  })();
  S.state.chatsRequest = run;
  return run;
}

function applyChats(list) {
  const active = S.state.activeChatId;
  const kept = S.replaceChats(list, active && isVisible(active) ? active : null);
  if (kept) loadDetails(active); // is the open chat still ours? 403/404 there removes it
  if (active) markReadIfVisible(active);
  // A message refused for a chat no longer listed could never be seen again: forget it.
  for (const item of [...S.state.outbox]) {
    if (item.final && !S.state.chats.has(item.chatId)) dropOutgoing(item);
  }
}

export function closeChat() {
  if (!S.state.activeChatId) return;
  stopTyping();
  S.setActiveChat(null);
}

/** Drop a chat we are no longer in (left, removed, or gone); `message` is toasted. */
function removeChatLocally(chatKey, message) {
  const chat = S.state.chats.get(chatKey);
  if (S.state.activeChatId === chatKey) closeChat();
  S.removeChat(chatKey);
  dropChatOutgoing(chatKey); // it could never be delivered now
  if (message && chat) toast(message.replace('{title}', S.chatTitle(chat)));
}

/** The server says a chat isn't ours (403/404): we were removed while away, or it is gone. */
export function chatGone(chatKey) {
  removeChatLocally(chatKey, 'You are no longer a member of {title}.');
}

// ---------------------------------------------------------------------------
// Members

export async function loadDetails(chatKey) {
  try {
    const details = await api.chat(chatKey);
    if (!S.state.chats.has(chatKey) && S.state.activeChatId !== chatKey) return;
    S.setDetails(chatKey, details);
    markReadIfVisible(chatKey);
  } catch (err) {
    if (err.status === 403 || err.status === 404) chatGone(chatKey);
  }
}

/** Reload members soon; bursts of member events collapse into one request. */
function reloadDetailsSoon(chatKey) {
  if (!S.state.details.has(chatKey) && S.state.activeChatId !== chatKey) return;
  const timers = S.state.detailReloads;
  clearTimeout(timers.get(chatKey));
  timers.set(chatKey, setTimeout(() => {
    timers.delete(chatKey);
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
  S.state.leaving.add(chatKey);
  try {
    await api.leave(chatKey);
    removeChatLocally(chatKey); // may already be gone if the member_left event came first
    toast(`You left ${title}.`);
    return true;
  } catch (err) {
    reportError(err, "Couldn't leave the group.");
    return false;
  } finally {
    setTimeout(() => S.state.leaving.delete(chatKey), 5000); // the event may trail the response
  }
}

// ---------------------------------------------------------------------------
// Socket events

/** Someone (maybe us) joined or left a chat. */
export function onMembership(ev) {
  const chatKey = S.key(ev.chat_id);
  const known = S.state.chats.has(chatKey);
  if (S.isMe(ev.user_id)) {
    if (ev.action === 'member_left') {
      if (known) removeChatLocally(chatKey, S.state.leaving.has(chatKey) ? null : 'You were removed from {title}.');
    } else if (!known) {
      refreshChats();
    }
    return;
  }
  if (!known) {
    if (ev.action === 'member_joined') refreshChats();
    return;
  }
  if (ev.action === 'member_left') typingDone(chatKey, ev.user_id);
  reloadDetailsSoon(chatKey);
}

/** Someone read up to a message: move their marker (it drives "Seen"). */
export function onRead(ev) {
  const chatKey = S.key(ev.chat_id);
  if (!S.moveReadMarker(chatKey, ev.user_id, ev.message_id)) reloadDetailsSoon(chatKey);
  if (S.isMe(ev.user_id)) {
    // Read on another device or tab: clear the badge when it covers the latest message.
    S.noteRead(chatKey, ev.message_id);
    const chat = S.state.chats.get(chatKey);
    if (!chat?.last_message || S.cmpId(ev.message_id, chat.last_message.id) >= 0) S.clearUnread(chatKey);
  }
}
