// actions/receipts.js — Telling the server what we have read. Only a chat on screen in a
// visible tab counts as read (a message in a background tab hasn't been seen), each chat
// is reported only when its newest message moves past what we reported before, and
// while the socket is down the report goes over REST so other people's "Seen" stays true.
// Messages arriving one by one (a replay after a reconnect can bring hundreds) are
// reported once they settle, not one receipt each.

import { api } from '../api.js';
import { socket } from '../socket.js';
import * as S from '../store.js';

/** Is this chat in front of the user right now? */
export function isVisible(chatKey) {
  return S.state.activeChatId === chatKey && document.visibilityState === 'visible';
}

const SETTLE_MS = 250;

/** markReadIfVisible, once messages stop arriving for a moment. */
export function markReadSoon(chatKey) {
  if (!isVisible(chatKey)) return;
  S.clearUnread(chatKey);
  clearTimeout(S.state.readTimer);
  S.state.readTimer = setTimeout(() => markReadIfVisible(chatKey), SETTLE_MS);
}

/** Report the newest message of the open chat as read, if it moved forward. */
export function markReadIfVisible(chatKey = S.state.activeChatId) {
  if (!chatKey || !isVisible(chatKey)) return;
  S.clearUnread(chatKey);
  const latest = S.newestId(S.state.messages.get(chatKey));
  if (latest == null) return;
  const prev = S.state.readSent.get(chatKey);
  if (prev != null && S.cmpId(latest, prev) <= 0) return;
  S.state.readSent.set(chatKey, latest);
  if (!socket.sendRead(chatKey, latest)) {
    api.markRead(chatKey, S.wireId(latest)).catch(() => {
      // Not recorded: let the next chance try again.
      if (S.state.readSent.get(chatKey) === latest) S.state.readSent.set(chatKey, prev);
    });
  }
}
