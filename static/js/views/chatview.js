// views/chatview.js — The open conversation: header (title, presence or member count),
// message history (day separators, sender grouping, seen receipts, pending bubbles,
// infinite scroll upwards, replies, reactions, edited and deleted messages, the actions on
// a message), typing line and composer (which also replies to and edits a message).

import { $, h, avatar, colourIndex, icon, linkify, reconcile, finePointer } from '../dom.js';
import {
  parseTime, hhmm, dayKey, dayLabel, fullDateTime, lastSeen, typingText, plural, charCount,
} from '../format.js';
import * as S from '../store.js';

const GROUP_GAP_MS = 5 * 60_000;   // messages further apart than this start a new group
const NEAR_BOTTOM_PX = 120;        // "at the bottom" tolerance for auto-scroll
const LOAD_OLDER_PX = 300;         // start loading older messages this close to the top
const COUNTER_FROM = 0.875;        // show the character counter from this share of the limit
const JUMBO_RE = /^(?:\p{Extended_Pictographic}|\p{Emoji_Modifier}|\u200d|\ufe0f|\s){1,12}$/u;

let els = null;
let actions = null;
let currentKey = null;
let nodes = new Map();        // message id -> {m, el}: the element drawn for that message object
let dayNodes = new Map();     // day key -> separator element
let pendingNodes = new Map(); // outbox clientId -> element
let emptyEl = null;
let seenEl = null;
let unseenBelow = 0;          // new messages that arrived while scrolled up
let mode = null;              // the composer replies to or edits a message: {kind, m}
let modeBar = null;           // the line above the composer that says which
let pressTimer = 0;           // a long press on a message (touch) shows its actions

const COMMON_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const LONG_PRESS_MS = 500;

/**
 * actions: { send(text, replyTo) -> bool, composerChanged(hasText), loadOlder(), retryLoad(),
 *            retryPending(id), discardPending(id), edit(chat, id, text) -> Promise<bool>,
 *            remove(chat, id), react(chat, id, emoji, on), recentEmoji() -> [emoji],
 *            loadUntil(chat, id) -> Promise<bool>, back(), toggleMembers() }
 */
export function initChatView(a) {
  actions = a;
  els = {
    app: $('#app-screen'),
    noChat: $('#no-chat'),
    chat: $('#chat'),
    back: $('#chat-back'),
    avatar: $('#chat-avatar'),
    title: $('#chat-title'),
    status: $('#chat-status'),
    membersBtn: $('#members-button'),
    membersCount: $('#members-count'),
    list: $('#message-list'),
    top: $('#history-top'),
    jump: $('#jump-bottom'),
    jumpCount: $('#jump-count'),
    typing: $('#typing-indicator'),
    form: $('#composer'),
    input: $('#composer-input'),
    count: $('#composer-count'),
    send: $('#send-button'),
  };

  els.back.addEventListener('click', () => actions.back());
  els.membersBtn.addEventListener('click', () => actions.toggleMembers());
  els.jump.addEventListener('click', () => {
    scrollToBottom(true);
    els.input.focus({ preventScroll: true });
  });
  els.list.addEventListener('scroll', onScroll, { passive: true });
  els.list.addEventListener('click', onListClick);
  els.list.addEventListener('pointerdown', onPointerDown);
  for (const end of ['pointerup', 'pointercancel', 'pointerleave']) {
    els.list.addEventListener(end, () => clearTimeout(pressTimer));
  }
  document.addEventListener('click', (e) => {
    if (!e.target.closest?.('.react-picker, [data-action="react-picker"]')) closePickers();
  });

  modeBar = h('div', { class: 'composer-mode', testid: 'composer-mode', hidden: true });
  els.form.before(modeBar);

  els.input.addEventListener('input', onInput);
  els.input.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter is a new line; never interrupt an IME composition.
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && mode) {
      e.preventDefault();
      setMode(null);
    } else if (e.key === 'ArrowUp' && !mode && !els.input.value && !e.isComposing) {
      const last = lastOwnMessage();
      if (last) {
        e.preventDefault();
        setMode('edit', last);
      }
    }
  });
  els.form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });

  S.on('active', onActive);
  S.on('messages', ({ chatId, kind, mine }) => { if (chatId === currentKey) renderMessages(kind, { mine }); });
  S.on('outbox', ({ chatId, added }) => {
    if (!chatId || chatId === currentKey) renderMessages(added ? 'sent' : 'status');
  });
  S.on('details', ({ chatId }) => {
    if (chatId !== currentKey) return;
    renderHeader();
    renderMessages('status');
  });
  S.on('presence', () => { if (currentKey) renderHeader(); });
  S.on('chats', () => { if (currentKey) renderHeader(); });
  S.on('typing', ({ chatId }) => { if (chatId === currentKey) renderTyping(); });
  S.on('limits', updateComposer);
  S.on('tick', () => {
    if (!currentKey) return;
    renderHeader();
    renderMessages('status');
  });
  window.addEventListener('resize', () => { if (currentKey && isAtBottom(240)) scrollToBottom(); });
}

export function resetChatView() {
  currentKey = null;
  setMode(null);
  clearHistory();
  els.input.value = '';
  autoGrow();
  updateComposer();
  els.chat.hidden = true;
  els.noChat.hidden = false;
  els.app.classList.remove('chat-open');
}

export function focusComposer() {
  if (currentKey) els.input.focus();
}

// ---------------------------------------------------------------------------
// Switching chats

function onActive({ chatId, same }) {
  if (same) {
    els.app.classList.toggle('chat-open', !!chatId);
    if (finePointer()) els.input.focus({ preventScroll: true });
    return;
  }
  currentKey = chatId;
  setMode(null);
  clearHistory();
  if (!chatId) {
    els.chat.hidden = true;
    els.noChat.hidden = false;
    els.app.classList.remove('chat-open');
    return;
  }
  els.chat.hidden = false;
  els.noChat.hidden = true;
  els.app.classList.add('chat-open');

  els.input.value = S.state.drafts.get(chatId) || '';
  autoGrow();
  updateComposer();
  renderHeader();
  renderTyping();
  renderMessages('reset');
  // On touch devices focusing would pop the keyboard over the history; don't.
  if (finePointer()) els.input.focus({ preventScroll: true });
}

function clearHistory() {
  nodes = new Map();
  dayNodes = new Map();
  pendingNodes = new Map();
  emptyEl = null;
  seenEl = null;
  unseenBelow = 0;
  els.jump.hidden = true;
  reconcile(els.list, [], els.top);
  els.top.replaceChildren();
  els.typing.textContent = '';
  els.typing.hidden = true;
}

// ---------------------------------------------------------------------------
// Header

function renderHeader() {
  const k = currentKey;
  const chat = S.state.chats.get(k);
  const details = S.state.details.get(k);
  const group = chat ? S.isGroup(chat) : details?.kind === 'group';
  const title = chat ? S.chatTitle(chat) : details?.name || 'Conversation';
  if (els.title.textContent !== title) els.title.textContent = title;

  if (group) {
    const members = details?.members || [];
    const online = members.filter((m) => S.presence(m)?.is_online).length;
    els.avatar.replaceChildren(avatar(title, { group: true }));
    els.status.setAttribute('data-testid', 'chat-subtitle');
    els.status.classList.remove('online');
    const kind = details?.visibility === 'public' ? 'Public group' : 'Private group';
    els.status.textContent = details
      ? `${kind} · ${plural(members.length, 'member')}${online ? `, ${online} online` : ''}`
      : 'Group';
    els.membersBtn.hidden = false;
    els.membersCount.textContent = details ? String(members.length) : '';
    els.membersBtn.setAttribute('aria-label', details ? `Members (${members.length})` : 'Members');
    els.membersBtn.title = 'Members';
  } else {
    const peer = S.peerOf(k);
    els.avatar.replaceChildren(avatar(title, { presence: !!peer?.is_online }));
    els.status.setAttribute('data-testid', 'chat-status');
    els.status.textContent = peer ? lastSeen(peer) : '';
    els.status.classList.toggle('online', !!peer?.is_online);
    els.membersBtn.hidden = true;
  }
}

function renderTyping() {
  const names = S.typingNames(currentKey);
  els.typing.textContent = typingText(names);
  els.typing.hidden = !names.length;
}

// ---------------------------------------------------------------------------
// History

function isAtBottom(tolerance = NEAR_BOTTOM_PX) {
  const l = els.list;
  return l.scrollHeight - l.scrollTop - l.clientHeight < tolerance;
}

function scrollToBottom(smooth = false) {
  const l = els.list;
  const reduce = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  if (smooth && !reduce) l.scrollTo({ top: l.scrollHeight, behavior: 'smooth' });
  else l.scrollTop = l.scrollHeight;
  unseenBelow = 0;
  updateJump();
}

function onScroll() {
  if (els.list.scrollTop < LOAD_OLDER_PX) actions.loadOlder();
  if (isAtBottom()) unseenBelow = 0;
  updateJump();
}

function updateJump() {
  const far = !isAtBottom(240);
  els.jump.hidden = !far;
  els.jumpCount.textContent = unseenBelow ? String(unseenBelow) : '';
  els.jump.classList.toggle('has-count', !!unseenBelow);
  els.jump.setAttribute('aria-label', unseenBelow
    ? `Jump to latest messages, ${unseenBelow} new`
    : 'Jump to latest messages');
}

/**
 * Bring the DOM in line with the cache. kind says what changed, which decides the
 * scroll: 'reset' (new chat or reload) goes to the bottom, 'prepend' (older page) keeps
 * the visible message in place, 'append'/'sent' follow the bottom if we were there.
 */
function renderMessages(kind = 'status', { mine = false } = {}) {
  const k = currentKey;
  if (!k) return;
  const cache = S.state.messages.get(k);
  const list = els.list;
  const before = { top: list.scrollTop, height: list.scrollHeight, atBottom: isAtBottom() };

  renderHistoryTop(cache);

  const desired = [];
  const items = cache?.loaded ? cache.items : [];
  const chat = S.state.chats.get(k);
  const group = chat ? S.isGroup(chat) : S.state.details.get(k)?.kind === 'group';
  const seen = seenInfo(items, group);

  let prev = null;
  let prevDay = null;
  for (let i = 0; i < items.length; i++) {
    const m = items[i];
    const when = parseTime(m.created_at) || new Date();
    const day = dayKey(when);
    if (day !== prevDay) desired.push(daySeparator(day, when));

    const id = S.key(m.id);
    // Drawn again when the message object changed (the server's copy of one we sent).
    let entry = nodes.get(id);
    if (!entry || entry.m !== m) {
      entry = { m, el: messageNode(m, group, moderates(group)) };
      nodes.set(id, entry);
    }
    const node = entry.el;
    const next = items[i + 1];
    const nextWhen = next && (parseTime(next.created_at) || new Date());
    const first = day !== prevDay || !continues(prev, m, when);
    const last = !next || dayKey(nextWhen) !== day || !continues({ m, when }, next, nextWhen);
    node.classList.toggle('grp-first', first);
    node.classList.toggle('grp-last', last);
    desired.push(node);
    if (seen && seen.afterId === id) desired.push(seen.el);

    prev = { m, when };
    prevDay = day;
  }

  const pending = S.state.outbox.filter((item) => item.chatId === k);
  const livePending = new Set();
  for (const item of pending) {
    livePending.add(item.clientId);
    desired.push(pendingNode(item));
  }
  for (const id of [...pendingNodes.keys()]) if (!livePending.has(id)) pendingNodes.delete(id);

  if (cache?.loaded && !items.length && !pending.length) {
    emptyEl ||= h('div', { class: 'empty-state' },
      icon('message-circle', 'empty-icon'),
      h('p', { testid: 'empty-state', class: 'empty-text' }, 'No messages yet. Say hello!'));
    desired.push(emptyEl);
  }

  reconcile(list, desired, els.top);
  list.setAttribute('aria-busy', String(!!cache?.loading));

  if (kind === 'reset') {
    scrollToBottom();
  } else if (kind === 'prepend') {
    list.scrollTop = before.top + (list.scrollHeight - before.height);
  } else if (kind === 'sent' || (kind === 'append' && mine)) {
    scrollToBottom();
  } else if (kind === 'append') {
    if (before.atBottom) scrollToBottom();
    else {
      unseenBelow += 1;
      updateJump();
    }
  } else if (before.atBottom) {
    scrollToBottom(); // keep pinned when something grew (seen line, pending state)
  }

  // A short first page may not fill the pane, so no scroll event would ever ask for more.
  if (cache?.loaded && cache.hasMore && !cache.loadingOlder && list.scrollHeight <= list.clientHeight + 40) {
    requestAnimationFrame(() => actions.loadOlder());
  }
}

/** Same sender and close in time: render as one visual group. */
function continues(prev, m, when) {
  if (!prev) return false;
  return S.sameId(prev.m.user_id, m.user_id) && when - prev.when < GROUP_GAP_MS;
}

function renderHistoryTop(cache) {
  const top = els.top;
  let state = 'idle';
  if (!cache || (!cache.loaded && !cache.error)) state = 'loading';
  else if (!cache.loaded && cache.error) state = 'error';
  else if (cache.loadingOlder) state = 'older';
  else if (!cache.hasMore && cache.items.length) state = 'start';
  if (top.dataset.state === state) return;
  top.dataset.state = state;

  if (state === 'loading') {
    top.replaceChildren(h('div', { class: 'skeleton', 'aria-hidden': 'true' },
      h('span', { class: 'sk sk-1' }), h('span', { class: 'sk sk-2' }),
      h('span', { class: 'sk sk-3 right' }), h('span', { class: 'sk sk-4' }),
      h('span', { class: 'sk sk-2 right' })),
    h('span', { class: 'sr-only' }, 'Loading messages'));
  } else if (state === 'error') {
    top.replaceChildren(h('div', { class: 'history-error' },
      h('p', null, "Couldn't load messages."),
      h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'retry-load' }, 'Try again')));
  } else if (state === 'older') {
    top.replaceChildren(h('div', { class: 'history-note' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading earlier messages…'));
  } else if (state === 'start') {
    top.replaceChildren(h('div', { class: 'history-note' }, 'This is the beginning of the conversation.'));
  } else {
    top.replaceChildren();
  }
}

function daySeparator(day, when) {
  let el = dayNodes.get(day);
  if (!el) {
    el = h('div', { class: 'day-sep' }, h('span', { class: 'day-label' }));
    dayNodes.set(day, el);
  }
  const label = dayLabel(when); // recomputed: "Today" becomes "Yesterday" at midnight
  if (el.firstChild.textContent !== label) el.firstChild.textContent = label;
  return el;
}

/** Whether we own the open group, and so may delete anyone's message in it. */
function moderates(group) {
  if (!group) return false;
  const members = S.state.details.get(currentKey)?.members || [];
  return members.some((x) => S.isMe(x.id) && x.role === 'owner');
}

function messageNode(m, group, owner = false) {
  const mine = S.isMe(m.user_id);
  const when = parseTime(m.created_at) || new Date();
  const deleted = !!m.deleted;
  const text = String(m.message ?? '');
  const el = h('div', {
    class: `msg ${mine ? 'mine' : 'theirs'}${deleted ? ' deleted' : ''}`,
    testid: 'message',
    'data-message-id': String(m.id),
  });
  const col = h('div', { class: 'msg-col' });
  if (mine) {
    col.append(h('span', { class: 'sr-only' }, 'You: '));
  } else if (group) {
    el.append(avatar(m.username, { size: 'sm' }));
    // Shown on the first message of a group; kept (visually hidden) on the others so
    // screen readers always hear who said what.
    col.append(h('div', { class: `msg-sender fg-${colourIndex(m.username)}` }, m.username));
  } else {
    col.append(h('span', { class: 'sr-only' }, `${m.username}: `));
  }
  const bubble = h('div', { class: `bubble${!deleted && JUMBO_RE.test(text) ? ' jumbo' : ''}` },
    m.reply_to ? quoteNode(m.reply_to) : null,
    deleted
      ? h('span', { class: 'msg-text tombstone', testid: 'message-text' }, 'This message was deleted')
      : h('span', { class: 'msg-text', testid: 'message-text', dir: 'auto' }, linkify(text)),
    h('span', { class: 'msg-meta' },
      m.edited_at && !deleted
        ? h('span', { class: 'msg-edited', testid: 'message-edited', title: `Edited ${fullDateTime(parseTime(m.edited_at) || when)}` }, 'edited')
        : null,
      h('time', { datetime: m.created_at, title: fullDateTime(when) }, hhmm(when)),
      mine ? icon('check', 'meta-icon') : null));
  col.append(bubble);
  const reactions = Array.isArray(m.reactions) ? m.reactions : [];
  if (reactions.length && !deleted) {
    col.append(h('div', { class: 'reactions', testid: 'reactions' }, reactions.map((r) => {
      const byMe = (r.user_ids || []).some((u) => S.isMe(u));
      return h('button', {
        type: 'button',
        class: `reaction-chip${byMe ? ' mine' : ''}`,
        testid: 'reaction-chip',
        'data-action': 'toggle-reaction',
        'data-emoji': r.emoji,
        'aria-pressed': String(byMe),
        'aria-label': `${r.emoji} ${r.count}${byMe ? ', yours' : ''}`,
      }, h('span', { class: 'reaction-emoji' }, r.emoji), h('span', { class: 'reaction-count' }, String(r.count)));
    })));
  }
  if (!deleted && !m.local) {
    const button = (action, name, label) => h('button', {
      type: 'button', class: 'msg-action', 'data-action': action, testid: `action-${action}`, 'aria-label': label, title: label,
    }, icon(name));
    col.append(h('div', { class: 'msg-actions', testid: 'message-actions' },
      button('reply', 'reply', 'Reply'),
      button('react-picker', 'smile', 'React'),
      mine ? button('edit', 'pencil', 'Edit') : null,
      mine || owner ? button('delete', 'trash', 'Delete') : null));
  }
  el.append(col);
  return el;
}

/** What a reply answers: who said it and how it began; clicking goes to it. */
function quoteNode(q) {
  return h('button', {
    type: 'button', class: 'msg-quote', testid: 'message-quote', 'data-action': 'jump', 'data-target-id': String(q.id),
  },
  h('span', { class: `quote-name fg-${colourIndex(q.username)}` }, q.username),
  h('span', { class: `quote-text${q.deleted ? ' tombstone' : ''}`, dir: 'auto' },
    q.deleted ? 'Deleted message' : q.message));
}

function pendingNode(item) {
  let el = pendingNodes.get(item.clientId);
  if (!el) {
    el = h('div', { class: 'msg mine pending grp-first grp-last', testid: 'message-pending', 'data-client-id': item.clientId },
      h('div', { class: 'msg-col' },
        h('div', { class: 'bubble' },
          h('span', { class: 'msg-text', dir: 'auto' }, linkify(item.text)),
          h('span', { class: 'msg-meta' })),
        h('div', { class: 'pending-status' })));
    pendingNodes.set(item.clientId, el);
  }
  if (el.dataset.state === item.state) return el;
  el.dataset.state = item.state;
  const failed = item.state === 'failed';
  el.classList.toggle('failed', failed);
  const meta = el.querySelector('.msg-meta');
  const status = el.querySelector('.pending-status');
  meta.replaceChildren(icon(failed ? 'alert' : 'clock', 'meta-icon'),
    h('span', { class: 'sr-only' }, failed ? 'Not delivered' : 'Sending'));
  if (failed) {
    status.replaceChildren('Not delivered. ',
      h('button', { type: 'button', class: 'link-btn', 'data-action': 'retry-send', 'data-client-id': item.clientId }, 'Retry'),
      ' · ',
      h('button', { type: 'button', class: 'link-btn', 'data-action': 'discard-send', 'data-client-id': item.clientId }, 'Delete'));
  } else if (item.state === 'queued') {
    status.replaceChildren('Waiting for connection…');
  } else {
    status.replaceChildren();
  }
  return el;
}

/** Where to put "Seen": under my newest message, once someone else has read it. */
function seenInfo(items, group) {
  const details = S.state.details.get(currentKey);
  if (!details || !items.length) return null;
  let mineLast = null;
  for (let i = items.length - 1; i >= 0; i--) {
    if (S.isMe(items[i].user_id)) {
      mineLast = items[i];
      break;
    }
  }
  if (!mineLast) return null;
  const readers = (details.members || []).filter((m) => !S.isMe(m.id)
    && m.last_read_message_id != null && S.cmpId(m.last_read_message_id, mineLast.id) >= 0);
  if (!readers.length) return null;
  let text = 'Seen';
  if (group) {
    text = readers.length <= 3
      ? `Seen by ${readers.map((r) => r.username).join(', ')}`
      : `Seen by ${readers.length}`;
  }
  seenEl ||= h('div', { class: 'seen', testid: 'seen-indicator' });
  if (seenEl.textContent !== text) seenEl.textContent = text;
  return { afterId: S.key(mineLast.id), el: seenEl };
}

function onListClick(e) {
  const btn = e.target.closest('[data-action]');
  if (!btn) return;
  const action = btn.dataset.action;
  if (action === 'retry-load') actions.retryLoad();
  else if (action === 'retry-send') actions.retryPending(btn.dataset.clientId);
  else if (action === 'discard-send') actions.discardPending(btn.dataset.clientId);
  else if (action === 'jump') jumpTo(btn.dataset.targetId);
  else onMessageAction(action, btn);
}

/** A button of a message: reply, react, edit, delete, or a reaction chip or picked emoji. */
function onMessageAction(action, btn) {
  const el = btn.closest('[data-message-id]');
  const m = el && nodes.get(el.dataset.messageId)?.m;
  if (!m || !currentKey) return;
  const k = currentKey;
  if (action === 'reply') setMode('reply', m);
  else if (action === 'edit') setMode('edit', m);
  else if (action === 'delete') {
    // A second click within a few seconds deletes: no dialog to dismiss, no accident.
    if (btn.dataset.confirm === 'yes') {
      actions.remove(k, m.id);
      return;
    }
    btn.dataset.confirm = 'yes';
    btn.classList.add('confirm');
    btn.setAttribute('aria-label', 'Delete for everyone? Click again');
    btn.title = 'Click again to delete for everyone';
    setTimeout(() => {
      delete btn.dataset.confirm;
      btn.classList.remove('confirm');
      btn.setAttribute('aria-label', 'Delete');
      btn.title = 'Delete';
    }, 3000);
  } else if (action === 'react-picker') togglePicker(el);
  else if (action === 'pick-reaction' || action === 'toggle-reaction') {
    const emoji = btn.dataset.emoji;
    const mine = (m.reactions || []).some((r) => r.emoji === emoji && (r.user_ids || []).some((u) => S.isMe(u)));
    closePickers();
    actions.react(k, m.id, emoji, action === 'pick-reaction' ? true : !mine);
  }
}

function togglePicker(el) {
  const open = el.querySelector('.react-picker');
  closePickers();
  if (open) return;
  const emoji = [...new Set([...actions.recentEmoji(), ...COMMON_EMOJI])].slice(0, 10);
  el.querySelector('.msg-col').append(h('div', { class: 'react-picker', role: 'menu', testid: 'react-picker' },
    emoji.map((e) => h('button', {
      type: 'button', class: 'picker-emoji', role: 'menuitem', testid: 'picker-emoji', 'data-action': 'pick-reaction', 'data-emoji': e, 'aria-label': `React with ${e}`,
    }, e))));
  el.classList.add('picking');
}

function closePickers() {
  for (const p of els.list.querySelectorAll('.react-picker')) {
    p.closest('.msg')?.classList.remove('picking');
    p.remove();
  }
}

/** A long press on a message (touch) shows its actions, as hovering does with a mouse. */
function onPointerDown(e) {
  if (e.pointerType !== 'touch') return;
  const el = e.target.closest('.msg[data-message-id]');
  clearTimeout(pressTimer);
  if (!el) return;
  pressTimer = setTimeout(() => {
    for (const other of els.list.querySelectorAll('.msg.show-actions')) other.classList.remove('show-actions');
    el.classList.add('show-actions');
  }, LONG_PRESS_MS);
}

/** Scroll to a message (what a reply answers), loading older history until it is there. */
async function jumpTo(id) {
  const k = currentKey;
  if (!nodes.has(S.key(id)) && !(await actions.loadUntil(k, id))) return;
  if (k !== currentKey) return;
  requestAnimationFrame(() => {
    const el = nodes.get(S.key(id))?.el;
    if (!el?.isConnected) return;
    el.scrollIntoView({ block: 'center' });
    el.classList.remove('flash');
    void el.offsetWidth; // restart the highlight
    el.classList.add('flash');
  });
}

// ---------------------------------------------------------------------------
// Replying and editing

function lastOwnMessage() {
  const items = S.state.messages.get(currentKey)?.items || [];
  for (let i = items.length - 1; i >= 0; i--) {
    if (S.isMe(items[i].user_id) && !items[i].deleted && !items[i].local) return items[i];
  }
  return null;
}

/** The composer replies to or edits `m` (kind 'reply' | 'edit'), or neither (null). */
function setMode(kind, m = null) {
  const was = mode;
  mode = kind ? { kind, m } : null;
  if (!modeBar) return;
  if (was?.kind === 'edit' && els.input) {
    els.input.value = currentKey ? S.state.drafts.get(currentKey) || '' : '';
  }
  if (!mode) {
    modeBar.hidden = true;
    modeBar.replaceChildren();
    if (els.input) {
      autoGrow();
      updateComposer();
    }
    return;
  }
  const label = kind === 'edit' ? 'Editing your message' : `Replying to ${m.username}`;
  modeBar.replaceChildren(
    icon(kind === 'edit' ? 'pencil' : 'reply', 'mode-icon'),
    h('div', { class: 'mode-text' },
      h('span', { class: 'mode-label' }, label),
      h('span', { class: 'mode-quote', dir: 'auto' }, String(m.message ?? ''))),
    h('button', {
      type: 'button', class: 'icon-btn mode-cancel', testid: 'composer-mode-cancel', 'aria-label': 'Cancel', title: 'Cancel (Esc)',
      onclick: () => { setMode(null); els.input.focus(); },
    }, icon('x')));
  modeBar.dataset.kind = kind;
  modeBar.hidden = false;
  if (kind === 'edit') els.input.value = String(m.message ?? '');
  autoGrow();
  updateComposer();
  els.input.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------
// Composer

function onInput() {
  autoGrow();
  updateComposer();
  if (currentKey && mode?.kind !== 'edit') S.setDraft(currentKey, els.input.value);
  actions.composerChanged(els.input.value.trim().length > 0);
}

function autoGrow() {
  const input = els.input;
  input.style.height = 'auto'; // CSSOM, allowed by the CSP; max-height in CSS caps it
  input.style.height = `${input.scrollHeight + 2}px`;
}

/** The server's message limit; until the socket brings it, the server alone judges length. */
const maxChars = () => S.limit('max_message_chars') ?? Infinity;

function updateComposer() {
  const n = charCount(els.input.value.trim());
  const max = maxChars();
  els.send.disabled = n === 0 || n > max;
  const showCount = n >= Math.floor(max * COUNTER_FROM);
  els.count.hidden = !showCount;
  if (showCount) {
    els.count.textContent = `${n.toLocaleString()} / ${max.toLocaleString()}`;
    els.count.classList.toggle('over', n > max);
  }
}

function submit() {
  const text = els.input.value;
  const n = charCount(text.trim());
  if (!n || n > maxChars()) return;
  if (mode?.kind === 'edit') {
    const { m } = mode;
    if (text.trim() !== String(m.message ?? '').trim()) actions.edit(currentKey, m.id, text);
    setMode(null);
    els.input.focus({ preventScroll: true });
    return;
  }
  if (!actions.send(text, mode?.kind === 'reply' ? mode.m : null)) return;
  setMode(null);
  els.input.value = '';
  if (currentKey) S.setDraft(currentKey, '');
  autoGrow();
  updateComposer();
  els.input.focus({ preventScroll: true });
}
