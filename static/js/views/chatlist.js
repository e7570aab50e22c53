// views/chatlist.js — The left pane: the chat list (title, presence, preview, time,
// unread badge, most recent first), its filter box, and keyboard navigation.

import { $, h, avatar, reconcile } from '../dom.js';
import { listTime, typingText } from '../format.js';
import * as S from '../store.js';

let els = null;
let actions = null;
let filter = '';
const items = new Map(); // chatKey -> <li>

/** actions: { openChat(chatKey), newChat(), browseRooms() } */
export function initChatList(a) {
  actions = a;
  els = { list: $('#chat-list'), search: $('#chat-search'), empty: $('#chat-list-empty') };

  els.search.addEventListener('input', () => {
    filter = els.search.value;
    render();
  });
  els.search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && els.search.value) {
      e.preventDefault();
      e.stopPropagation();
      els.search.value = '';
      filter = '';
      render();
    } else if (e.key === 'ArrowDown' || e.key === 'Enter') {
      // Straight from the filter box into the results.
      const first = els.list.querySelector('.chat-item');
      if (!first) return;
      e.preventDefault();
      if (e.key === 'Enter') first.click();
      else first.focus();
    }
  });

  els.list.addEventListener('click', (e) => {
    const btn = e.target.closest('.chat-item');
    if (btn) actions.openChat(btn.dataset.chatId);
  });
  els.list.addEventListener('keydown', onListKeydown);

  for (const type of ['chats', 'presence', 'typing', 'active', 'tick']) S.on(type, render);
}

export function resetChatList() {
  filter = '';
  if (els) {
    els.search.value = '';
    els.list.replaceChildren();
    els.empty.hidden = true;
  }
  items.clear();
  document.title = 'Parley';
}

export function focusSearch() {
  els.search.focus();
  els.search.select();
}

function onListKeydown(e) {
  const buttons = [...els.list.querySelectorAll('.chat-item')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  let next = null;
  if (e.key === 'ArrowDown') next = buttons[i + 1];
  else if (e.key === 'ArrowUp') next = buttons[i - 1] || els.search;
  else if (e.key === 'Home') next = buttons[0];
  else if (e.key === 'End') next = buttons[buttons.length - 1];
  if (!next) return;
  e.preventDefault();
  next.focus();
}

/** Chat keys in display order (for Alt+Up/Down switching). */
export function visibleChatKeys() {
  return [...els.list.querySelectorAll('.chat-item')].map((b) => b.dataset.chatId);
}

function render() {
  if (!els || !S.state.me) return;
  const all = S.sortedChats();
  const needle = filter.trim().toLowerCase();
  const shown = needle ? all.filter((c) => S.chatTitle(c).toLowerCase().includes(needle)) : all;

  // Remember focus: moving a focused node in the DOM blurs it.
  const focusedKey = document.activeElement?.closest?.('.chat-item')?.dataset.chatId;

  const live = new Set(all.map((c) => S.key(c.chat_id)));
  for (const k of [...items.keys()]) if (!live.has(k)) items.delete(k);

  const nodes = shown.map((chat) => {
    const k = S.key(chat.chat_id);
    let li = items.get(k);
    if (!li) {
      // The button persists across renders (only its contents change) so a click that
      // straddles a re-render still lands on it.
      li = h('li', { class: 'chat-row' }, h('button', { type: 'button', testid: 'chat-item' }));
      items.set(k, li);
    }
    fillItem(li.firstChild, chat, k);
    return li;
  });
  reconcile(els.list, nodes);
  if (focusedKey) {
    const btn = items.get(focusedKey)?.firstChild;
    if (btn?.isConnected && document.activeElement !== btn) btn.focus({ preventScroll: true });
  }

  renderEmpty(all.length, shown.length);
  const unread = S.totalUnread();
  document.title = unread ? `(${unread}) Parley` : 'Parley';
}

function fillItem(btn, chat, k) {
  const title = S.chatTitle(chat);
  const group = S.isGroup(chat);
  const peer = group ? null : S.peerOf(k);
  const online = !!peer?.is_online;
  const active = S.state.activeChatId === k;
  const unread = Number(chat.unread) || 0;

  btn.className = `chat-item${active ? ' active' : ''}${unread ? ' has-unread' : ''}`;
  btn.dataset.chatId = k;
  btn.dataset.title = title;
  if (active) btn.setAttribute('aria-current', 'true');
  else btn.removeAttribute('aria-current');

  const typers = S.typingNames(k);
  let preview;
  if (typers.length) {
    preview = h('span', { class: 'ci-preview typing-preview' }, group ? typingText(typers) : 'typing...');
  } else if (chat.last_message) {
    const m = chat.last_message;
    const who = S.isMe(m.user_id) ? 'You: ' : group ? `${m.username}: ` : '';
    preview = h('span', { class: 'ci-preview' },
      who ? h('span', { class: 'ci-who' }, who) : null,
      m.deleted ? h('em', null, 'Message deleted') : firstLine(m.message));
  } else {
    preview = h('span', { class: 'ci-preview empty' }, group ? 'No messages yet' : 'Say hello');
  }

  btn.replaceChildren(
    avatar(title, { presence: group ? null : online, group }),
    h('span', { class: 'ci-body' },
      h('span', { class: 'ci-top' },
        h('span', { class: 'ci-title' }, title),
        online ? h('span', { class: 'sr-only' }, ', online') : null,
        chat.last_message ? h('time', { class: 'ci-time', datetime: chat.last_message.created_at }, listTime(chat.last_message.created_at)) : null),
      h('span', { class: 'ci-bottom' },
        preview,
        unread ? h('span', { class: 'sr-only' }, `, ${unread} unread`) : null,
        unread ? h('span', { class: 'badge', testid: 'unread-badge', 'aria-hidden': 'true' },
          unread > 99 ? '99+' : String(unread)) : null)),
  );
}

function firstLine(text) {
  return String(text || '').replace(/\s+/g, ' ').trim();
}

function renderEmpty(total, shownCount) {
  const empty = els.empty;
  if (shownCount) {
    empty.hidden = true;
    return;
  }
  empty.hidden = false;
  if (total) {
    empty.replaceChildren(h('p', null, `No chats match “${filter.trim()}”.`));
    return;
  }
  empty.replaceChildren(
    h('p', { class: 'list-empty-title' }, 'No conversations yet'),
    h('p', null, 'Message someone, or find a public room to join.'),
    h('div', { class: 'list-empty-actions' },
      h('button', { type: 'button', class: 'btn btn-primary btn-sm', onclick: () => actions.newChat() }, 'New chat'),
      h('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: () => actions.browseRooms() }, 'Browse rooms')),
  );
}
