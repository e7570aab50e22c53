// app.js — Entry point. Checks the session, switches between the auth and app screens,
// keeps the URL in step with the open chat, handles global shortcuts, and wires the views
// to the controller's actions: views never import actions themselves, so this file is
// the one map of which control does what.

import { api, setUnauthorizedHandler, setRenewHandler, ApiError } from './api.js';
import { keepAlive, stopKeepAlive, renew } from './session.js';
import * as S from './store.js';
import * as chat from './chat.js';
import { $, installIcons, isNarrow, finePointer } from './dom.js';
import { initAuth, showAuth, hideAuth } from './views/auth.js';
import { initChatList, resetChatList, focusSearch, visibleChatKeys } from './views/chatlist.js';
import { initChatView, resetChatView, focusComposer } from './views/chatview.js';
import { initMembers, toggleMembers, closeMembers, membersOpen } from './views/members.js';
import {
  openNewChatDialog, openNewGroupDialog, openRoomsDialog, closeAllDialogs, dialogOpen,
} from './views/dialogs.js';
import { initStatus, resetStatus } from './views/status.js';
import { openSessionsDialog } from './views/sessions.js';
import { toast, clearToasts, reportError } from './views/feedback.js';

const SESSION_ENDED = 'Your session has ended. Please log in again.';
const TICK_MS = 30_000; // refresh relative times ("5 min ago")

let tickTimer = 0;
let lastProbe = 0;

// ---------------------------------------------------------------------------
// Actions handed to the views

const dialogActions = {
  users: () => api.users(),
  rooms: () => api.rooms(),
  startDirect: (user) => chat.startDirect(user),
  createGroup: (name, ids, visibility) => chat.createGroup(name, ids, visibility),
  joinRoom: (room) => chat.joinRoom(room),
  newGroup: (preset) => openNewGroupDialog(dialogActions, preset),
  focusChat: () => { if (finePointer()) focusComposer(); },
  error: reportError,
};

const showNewChat = () => openNewChatDialog(dialogActions);
const showNewGroup = () => openNewGroupDialog(dialogActions);
const showRooms = () => openRoomsDialog(dialogActions);
const showSessions = () => openSessionsDialog({
  sessions: () => api.sessions(),
  endSession: (id) => api.endSession(id),
  logoutAll: () => api.logoutAll(),
  changePassword: (current, next) => api.changePassword(current, next),
  error: reportError,
});

// ---------------------------------------------------------------------------
// Boot and session

async function boot() {
  installIcons();
  initAuth({ login, register });
  initChatList({ openChat: (k) => chat.openChat(k), newChat: showNewChat, browseRooms: showRooms });
  initChatView({
    send: chat.sendMessage,
    composerChanged: chat.composerChanged,
    loadOlder: chat.loadOlder,
    retryLoad: chat.retryLoad,
    retryPending: chat.retryPending,
    discardPending: chat.discardPending,
    edit: chat.editMessage,
    remove: chat.deleteMessage,
    react: chat.react,
    recentEmoji: chat.recentEmoji,
    loadUntil: chat.loadUntil,
    back: goBack,
    toggleMembers,
  });
  initMembers({
    users: () => api.users(),
    addMember: chat.addMember,
    removeMember: chat.removeMember,
    leave: chat.leaveChat,
  });
  initStatus({ retryNow: () => chat.reconnectNow() });
  wireGlobalControls();
  setUnauthorizedHandler(sessionEnded);
  setRenewHandler(renew);

  // Asked in a way that answers 200 either way, so a first visit logs no failed request.
  // A page opened after its access token expired renews the session if it still lives.
  let session;
  let me = null;
  try {
    session = await api.session();
    if (session.authenticated) {
      me = session.user;
      keepAlive(session.expires_at);
    } else if (session.can_refresh && await renewSession()) {
      me = await api.me();
    }
  } catch (err) {
    hideSplash();
    showAuth(err.detail);
    return;
  }
  hideSplash();
  if (me) enterApp(me);
  else showAuth('');
}

/** Renews the session and keeps it alive; false when it has ended. */
async function renewSession() {
  const tokens = await api.refresh().catch(() => null);
  if (!tokens) return false;
  keepAlive(tokens.expires_at);
  return true;
}

function hideSplash() {
  $('#splash')?.remove();
}

async function login(username, password) {
  const tokens = await api.login(username, password);
  let me;
  try {
    me = await api.me();
  } catch (err) {
    if (err.status === 401) {
      // Logged in, yet the cookie didn't stick (e.g. a Secure cookie over plain http).
      throw new ApiError(401, { detail: "You're logged in, but your browser didn't keep the session cookie." });
    }
    throw err;
  }
  keepAlive(tokens.expires_at);
  enterApp(me);
}

async function register(data) {
  await api.register(data);
  try {
    await login(data.username, data.password);
  } catch (err) {
    err.stage = 'login';
    throw err;
  }
}

function enterApp(me) {
  S.reset(); // drop anything a request from a previous session wrote late
  S.setMe(me);
  hideAuth();
  resetChatView();
  $('#app-screen').hidden = false;

  const fromUrl = chatFromUrl();
  chat.refreshChats().then(() => {
    if (fromUrl && S.state.chats.has(fromUrl) && !S.state.activeChatId) chat.openChat(fromUrl);
    else if (!S.state.activeChatId) syncUrl(null);
  });

  chat.connect({ renew: renewOrEnd, dropped: probeSession });

  clearInterval(tickTimer);
  tickTimer = setInterval(() => S.emit('tick'), TICK_MS);
  if (finePointer()) focusSearch();
}

/** Tear the app down to a blank state (log out or session end). */
function teardown() {
  stopKeepAlive();
  chat.disconnect();
  clearInterval(tickTimer);
  closeAllDialogs();
  closeMembers(false);
  S.reset();
  resetChatList();
  resetChatView();
  resetStatus();
  clearToasts();
  $('#app-screen').hidden = true;
  syncUrl(null);
}

/**
 * The socket closed for auth reasons: its token expired, or its session ended. Renew; the
 * socket reconnects (and resumes) if that works, and the page signs out if it does not.
 */
async function renewOrEnd() {
  const ok = await renew();
  if (!ok) sessionEnded();
  return ok;
}

/** Any 401 renewing did not cure, or a socket whose session ended, lands here. */
function sessionEnded() {
  if (!S.state.me) return;
  teardown();
  showAuth(SESSION_ENDED);
}

async function logout() {
  const btn = $('#logout');
  btn.disabled = true;
  chat.stopTyping();
  try {
    await api.logout();
  } catch (err) {
    if (err.status !== 401) {
      toast(err.detail || "Couldn't log out. Please try again.", { kind: 'error' });
      btn.disabled = false;
      return;
    }
  }
  btn.disabled = false;
  chat.forgetUnsent();
  teardown();
  showAuth('');
}

/**
 * The socket dropped. A refused handshake looks like any other failure to the browser,
 * so ask the API whether the session is still valid; if not, renew it, and if that fails
 * the session has ended.
 */
function probeSession() {
  const now = Date.now();
  if (now - lastProbe < 4000) return;
  lastProbe = now;
  api.session()
    .then(async (session) => {
      if (session.authenticated) return;
      if (await renew()) chat.reconnectNow();
      else sessionEnded();
    })
    .catch(() => { /* network errors: keep reconnecting */ });
}

// ---------------------------------------------------------------------------
// URL: #chat/<id> reflects the open chat. On phones opening a chat pushes a history
// entry so the system back button returns to the list.

function chatFromUrl() {
  const m = window.location.hash.match(/^#chat\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function syncUrl(k) {
  const base = window.location.pathname + window.location.search;
  const url = k ? `${base}#chat/${encodeURIComponent(k)}` : base;
  const pushed = !!window.history.state?.pushed;
  if (k && isNarrow() && !pushed) window.history.pushState({ chat: k, pushed: true }, '', url);
  else window.history.replaceState(k ? { chat: k, pushed } : null, '', url);
}

function goBack() {
  if (window.history.state?.pushed) window.history.back();
  else chat.closeChat();
}

// ---------------------------------------------------------------------------
// Global controls and shortcuts

function wireGlobalControls() {
  $('#new-chat').addEventListener('click', showNewChat);
  $('#new-group').addEventListener('click', showNewGroup);
  $('#browse-rooms').addEventListener('click', showRooms);
  $('#no-chat-new').addEventListener('click', showNewChat);
  $('#no-chat-rooms').addEventListener('click', showRooms);
  $('#logout').addEventListener('click', logout);
  $('#sessions').addEventListener('click', showSessions);
  if (/Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent)) $('.search-kbd').textContent = '⌘K';

  $('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    if (S.state.activeChatId) focusComposer();
    else if (S.state.me) focusSearch();
  });

  S.on('active', ({ chatId, same }) => { if (!same) syncUrl(chatId); });

  window.addEventListener('popstate', (e) => {
    if (!S.state.me) return;
    const k = e.state?.chat;
    if (k && S.state.chats.has(k)) chat.openChat(k);
    else chat.closeChat();
  });

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    chat.onVisible();
    chat.reconnectNow();
  });
  window.addEventListener('online', () => chat.reconnectNow());

  document.addEventListener('keydown', (e) => {
    if (!S.state.me || dialogOpen()) return;
    const key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === 'k') {
      e.preventDefault();
      if (isNarrow() && S.state.activeChatId) goBack();
      focusSearch();
    } else if (e.altKey && (key === 'ArrowUp' || key === 'ArrowDown')) {
      // Alt+Up/Down: previous/next chat in the list.
      const keys = visibleChatKeys();
      if (!keys.length) return;
      e.preventDefault();
      const i = keys.indexOf(S.state.activeChatId);
      const next = key === 'ArrowDown' ? keys[Math.min(keys.length - 1, i + 1)] : keys[Math.max(0, i - 1)];
      chat.openChat(next);
    } else if (key === 'Escape' && !e.defaultPrevented) {
      if (membersOpen()) {
        e.preventDefault();
        closeMembers(true);
      } else if (isNarrow() && S.state.activeChatId && !e.target.closest?.('input, textarea')) {
        e.preventDefault();
        goBack();
      }
    }
  });
}

boot();
