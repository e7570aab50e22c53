// actions/receipts.js — Telling the server what we have read. Only a chat on screen in a
// visible tab counts as read (a message in a background tab hasn't been seen), each chat
// is reported only when its newest message moves past what we reported before, and
// while the socket is down the report goes over REST so other people's "Seen" stays true.

import { api } from '../api.js';
import { socket } from '../socket.js';
import * as S from '../store.js';

/** Is this chat in front of the user right now? */
export function isVisible(chatKey) {
  return S.state.activeChatId === chatKey && document.visibilityState === 'visible';
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
