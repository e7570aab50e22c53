// actions/edits.js — What people do with a message once it is posted: edit it, delete it
// and react to it. Each goes to the server over HTTP (whose answer says at once whether it
// was refused); the server then tells every socket of the chat, this one included, and the
// event updates the history (store.patchMessage), so another tab shows the same.

import { api } from '../api.js';
import * as S from '../store.js';
import { reportError } from '../views/feedback.js';

const RECENT_KEY = 'parley.recentEmoji';
const RECENT_MAX = 6;

/** An edit, a delete or a reaction, from anyone, as the server announces it. */
export function onMessageChanged(ev) {
  const k = S.key(ev.chat_id);
  const patch = { change_seq: ev.change_seq };
  if (ev.action === 'message_edited') {
    Object.assign(patch, { message: ev.message, edited_at: ev.edited_at });
  } else if (ev.action === 'message_deleted') {
    Object.assign(patch, { message: '', deleted: true, reactions: [] });
  } else {
    patch.reactions = Array.isArray(ev.reactions) ? ev.reactions : [];
  }
  const cache = S.state.messages.get(k);
  if (cache && S.patchMessage(cache, ev.id, patch)) S.emit('messages', { chatId: k, kind: 'status' });
  const chat = S.state.chats.get(k);
  if (chat?.last_message && S.sameId(chat.last_message.id, ev.id) && 'message' in patch) {
    chat.last_message = { ...chat.last_message, ...patch };
    S.emit('chats');
  }
}

/** Take the server's answer (the message as it now is) before its event comes. */
function took(chatKey, message) {
  const cache = S.state.messages.get(chatKey);
  if (cache && message && S.patchMessage(cache, message.id, message)) {
    S.emit('messages', { chatId: chatKey, kind: 'status' });
  }
}

export async function editMessage(chatKey, id, text) {
  try {
    took(chatKey, await api.editMessage(chatKey, id, text));
    return true;
  } catch (err) {
    reportError(err, "Couldn't edit the message.");
    return false;
  }
}

export async function deleteMessage(chatKey, id) {
  try {
    await api.deleteMessage(chatKey, id);
  } catch (err) {
    reportError(err, "Couldn't delete the message.");
  }
}

/** Give (`on`) or take back our reaction. */
export async function react(chatKey, id, emoji, on) {
  if (on) rememberEmoji(emoji);
  try {
    took(chatKey, await api.react(chatKey, id, emoji, on));
  } catch (err) {
    reportError(err, "Couldn't react to the message.");
  }
}

/** The emoji this browser reacted with lately, newest first. */
export function recentEmoji() {
  try {
    const list = JSON.parse(window.localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

function rememberEmoji(emoji) {
  const next = [emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
  try {
    window.localStorage.setItem(RECENT_KEY, JSON.stringify(next));
  } catch {
    // Private mode or a full quota: the picker shows the common ones only.
  }
}
