// actions/typing.js — "Someone is typing", both ways. Ours is throttled (one "typing"
// every few seconds while keys are pressed, "stop_typing" after a pause, on sending and
// on switching chats) because every frame wakes every member's socket. Theirs expires on
// its own, because their "stop_typing" never comes if their tab closes mid-sentence.

import { socket } from '../socket.js';
import * as S from '../store.js';

const TYPING_REPEAT_MS = 3000;     // send "typing" at most this often while typing
const TYPING_IDLE_MS = 4000;       // send "stop_typing" after this long without a keystroke
const REMOTE_TYPING_TTL_MS = 6000; // forget someone's "typing" if it isn't refreshed

/** Call on every composer edit. */
export function composerChanged(hasText) {
  const k = S.state.activeChatId;
  if (!k) return;
  if (!hasText) {
    stopTyping();
    return;
  }
  const mine = S.state.myTyping;
  if (mine.chatKey && mine.chatKey !== k) stopTyping();
  const now = Date.now();
  if (now - mine.lastSent >= TYPING_REPEAT_MS && socket.sendTyping(k, true)) {
    mine.lastSent = now;
    mine.chatKey = k;
  }
  clearTimeout(mine.idleTimer);
  mine.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

export function stopTyping() {
  const mine = S.state.myTyping;
  clearTimeout(mine.idleTimer);
  if (mine.chatKey) socket.sendTyping(mine.chatKey, false);
  mine.chatKey = null;
  mine.lastSent = 0;
}

/** A new connection: say again that we are typing, if we are. */
export function reannounceTyping() {
  if (S.state.myTyping.chatKey) S.state.myTyping.lastSent = 0;
}

/** Socket event: someone else started or stopped typing. */
export function onTyping(ev) {
  if (S.isMe(ev.user_id)) return;
  S.setTyping(S.key(ev.chat_id), ev.user_id, ev.username, ev.action === 'typing', REMOTE_TYPING_TTL_MS);
}

/** Their message arrived, so they are done typing it. */
export function typingDone(chatKey, userId) {
  S.setTyping(chatKey, userId, null, false);
}
