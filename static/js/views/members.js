// views/members.js — The group members panel beside the conversation: members with
// presence and roles, "Add member" for private groups, "Leave group", and the owner's
// remove buttons. Non-modal, so the conversation stays usable while it is open.

import { $, h, avatar, icon } from '../dom.js';
import { lastSeen } from '../format.js';
import * as S from '../store.js';

let els = null;
let actions = null;
let openFor = null;         // chatKey the panel shows, or null when closed
let picker = null;          // add-member picker state: {users, query, loading, error}
let listEl = null;
let pickerEl = null;

/** actions: { users() -> Promise<users>, addMember(chatKey, user), removeMember(chatKey, member), leave(chatKey) } */
export function initMembers(a) {
  actions = a;
  els = { panel: $('#members-panel'), button: $('#members-button') };
  els.panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      closeMembers(true);
    }
  });
  S.on('details', ({ chatId }) => { if (chatId === openFor) render(); });
  S.on('presence', () => { if (openFor) render(); });
  S.on('tick', () => { if (openFor) render(); });
  S.on('active', ({ chatId, same }) => { if (!same && openFor && chatId !== openFor) closeMembers(false); });
}

export const membersOpen = () => openFor !== null;

export function toggleMembers() {
  if (openFor) closeMembers(true);
  else openMembers();
}

export function openMembers() {
  const k = S.state.activeChatId;
  if (!k) return;
  openFor = k;
  picker = null;
  buildSkeleton();
  els.panel.hidden = false;
  els.button.setAttribute('aria-expanded', 'true');
  render();
  els.panel.querySelector('.panel-close').focus();
}

export function closeMembers(returnFocus) {
  if (!openFor) return;
  openFor = null;
  picker = null;
  els.panel.hidden = true;
  els.panel.replaceChildren();
  els.button.setAttribute('aria-expanded', 'false');
  if (returnFocus && !els.button.hidden) els.button.focus();
}

function buildSkeleton() {
  listEl = h('ul', { class: 'member-list', 'aria-label': 'Members' });
  pickerEl = h('div', { class: 'add-picker' });
  els.panel.replaceChildren(
    h('div', { class: 'panel-head' },
      h('h3', { id: 'members-heading', class: 'panel-title' }, 'Members'),
      h('button', {
        type: 'button', class: 'icon-btn panel-close', 'aria-label': 'Close members', title: 'Close (Esc)',
        onclick: () => closeMembers(true),
      }, icon('x'))),
    h('div', { class: 'panel-body' },
      h('p', { class: 'panel-sub' }),
      listEl,
      pickerEl),
    h('div', { class: 'panel-foot' }),
  );
}

function render() {
  const k = openFor;
  const details = S.state.details.get(k);
  const sub = els.panel.querySelector('.panel-sub');
  const foot = els.panel.querySelector('.panel-foot');
  if (!details) {
    sub.textContent = 'Loading members…';
    return;
  }
  const members = [...(details.members || [])];
  const me = members.find((m) => S.isMe(m.id));
  const iAmOwner = me?.role === 'owner';
  const isPublic = details.visibility === 'public';

  els.panel.querySelector('.panel-title').textContent = `Members · ${members.length}`;
  sub.replaceChildren(icon(isPublic ? 'globe' : 'lock', 'sub-icon'),
    isPublic ? 'Public group: anyone can join' : 'Private group: members add people');

  // Owner first, then online people, then by name.
  members.sort((a, b) => (b.role === 'owner') - (a.role === 'owner')
    || (!!S.presence(b).is_online - !!S.presence(a).is_online)
    || a.username.localeCompare(b.username));

  const focusedUser = document.activeElement?.closest?.('.member')?.dataset.username;
  const focusedAction = document.activeElement?.dataset?.action;
  listEl.replaceChildren(...members.map((m) => memberItem(m, k, iAmOwner)));
  if (focusedUser && focusedAction) {
    listEl.querySelector(`.member[data-username="${CSS.escape(focusedUser)}"] [data-action="${focusedAction}"]`)?.focus();
  }

  // Footer: add (private groups we belong to) and leave.
  const canAdd = !isPublic && !!me;
  if (!foot.firstChild) {
    foot.append(
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-block add-member-btn', testid: 'add-member',
        'aria-expanded': 'false', onclick: togglePicker,
      }, icon('plus'), 'Add member'),
      h('button', {
        type: 'button', class: 'btn btn-danger-ghost btn-block', testid: 'leave-chat',
        onclick: async (e) => {
          const btn = e.currentTarget;
          btn.disabled = true;
          const ok = await actions.leave(openFor);
          if (!ok) btn.disabled = false;
        },
      }, icon('logout'), 'Leave group'));
  }
  foot.querySelector('.add-member-btn').hidden = !canAdd;
  if (picker) renderPicker(details);
}

function memberItem(m, chatKey, iAmOwner) {
  const p = S.presence(m);
  const me = S.isMe(m.id);
  const status = me ? 'online' : lastSeen(p);
  const li = h('li', { class: 'member', testid: 'member-item', 'data-username': m.username },
    avatar(m.username, { presence: me ? true : !!p.is_online, size: 'sm' }),
    h('span', { class: 'member-text' },
      h('span', { class: 'member-name' }, m.username, me ? h('span', { class: 'you' }, ' (you)') : null),
      h('span', { class: `member-status${p.is_online || me ? ' online' : ''}` }, status)),
    m.role === 'owner' ? h('span', { class: 'role-badge' }, 'Owner') : null);
  if (iAmOwner && !me) {
    li.append(h('button', {
      type: 'button', class: 'icon-btn icon-btn-sm danger', testid: 'remove-member', 'data-action': 'remove',
      'aria-label': `Remove ${m.username} from the group`, title: 'Remove from group',
      onclick: async (e) => {
        const btn = e.currentTarget;
        btn.disabled = true;
        if (!(await actions.removeMember(chatKey, m))) btn.disabled = false;
      },
    }, icon('user-minus')));
  }
  return li;
}

// ---------------------------------------------------------------------------
// Add-member picker

async function togglePicker(e) {
  const btn = e.currentTarget;
  if (picker) {
    picker = null;
    pickerEl.replaceChildren();
    btn.setAttribute('aria-expanded', 'false');
    return;
  }
  picker = { users: null, query: '', error: null };
  btn.setAttribute('aria-expanded', 'true');
  renderPicker(S.state.details.get(openFor));
  const chatKey = openFor;
  try {
    const users = await actions.users();
    if (!picker || openFor !== chatKey) return;
    picker.users = users;
  } catch (err) {
    if (!picker) return;
    picker.error = err.detail || "Couldn't load people.";
  }
  renderPicker(S.state.details.get(openFor));
}

function renderPicker(details) {
  if (!picker || !details) return;
  let search = pickerEl.querySelector('input');
  let results = pickerEl.querySelector('.picker-results');
  if (!search) {
    search = h('input', {
      type: 'search', class: 'input input-sm', placeholder: 'Search people', 'aria-label': 'Search people to add',
      testid: 'add-member-search', autocomplete: 'off', spellcheck: 'false',
    });
    search.addEventListener('input', () => {
      picker.query = search.value;
      renderPicker(S.state.details.get(openFor));
    });
    results = h('ul', { class: 'picker-results', 'aria-label': 'People you can add' });
    pickerEl.replaceChildren(search, results);
    search.focus();
  }
  if (picker.error) {
    results.replaceChildren(h('li', { class: 'picker-note' }, picker.error));
    return;
  }
  if (!picker.users) {
    results.replaceChildren(h('li', { class: 'picker-note' }, h('span', { class: 'spinner' }), 'Loading people…'));
    return;
  }
  const memberIds = new Set((details.members || []).map((m) => S.key(m.id)));
  const q = picker.query.trim().toLowerCase();
  const candidates = picker.users
    .filter((u) => !memberIds.has(S.key(u.id)) && !S.isMe(u.id))
    .filter((u) => !q || u.username.toLowerCase().includes(q))
    .sort((a, b) => a.username.localeCompare(b.username));
  if (!candidates.length) {
    results.replaceChildren(h('li', { class: 'picker-note' }, q ? 'No one matches.' : 'Everyone is already here.'));
    return;
  }
  const chatKey = openFor;
  results.replaceChildren(...candidates.map((u) => {
    const p = S.presence(u);
    return h('li', null, h('button', {
      type: 'button', class: 'person', testid: 'add-member-item', 'data-username': u.username,
      onclick: async (e) => {
        const btn = e.currentTarget;
        btn.disabled = true;
        if (!(await actions.addMember(chatKey, u))) btn.disabled = false;
      },
    }, avatar(u.username, { presence: !!p.is_online, size: 'sm' }),
    h('span', { class: 'person-text' },
      h('span', { class: 'person-name' }, u.username),
      h('span', { class: 'person-status' }, lastSeen(p))),
    h('span', { class: 'person-action', 'aria-hidden': 'true' }, icon('plus'))));
  }));
}
