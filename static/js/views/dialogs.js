// views/dialogs.js — Modal dialogs built on <dialog>: new direct chat, new group and
// browse public rooms (and the modal the sessions dialog of views/sessions.js is built on). showModal() makes the page behind inert (focus stays inside)
// and Escape closes natively; each dialog is created on open and removed on close.

import { h, icon, avatar } from '../dom.js';
import { lastSeen, plural } from '../format.js';
import * as S from '../store.js';

let counter = 0;

/**
 * Create and open a modal. build(body, footer, close) fills it.
 * Returns {dialog, close}.
 */
export function modal({ title, description, className = '', build }) {
  const id = `dlg-${++counter}`;
  const returnFocus = document.activeElement;
  const dialog = h('dialog', { class: `modal ${className}`.trim(), 'aria-labelledby': `${id}-title` });
  const close = () => { if (dialog.open) dialog.close(); };
  const body = h('div', { class: 'modal-body' });
  const footer = h('div', { class: 'modal-foot' });
  dialog.append(h('div', { class: 'modal-inner' },
    h('div', { class: 'modal-head' },
      h('div', null,
        h('h2', { id: `${id}-title`, class: 'modal-title' }, title),
        description ? h('p', { class: 'modal-desc' }, description) : null),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', title: 'Close (Esc)', onclick: close }, icon('x'))),
    body,
    footer));

  // Click on the backdrop closes; a drag that started inside (selecting text) does not.
  let downOnBackdrop = false;
  dialog.addEventListener('pointerdown', (e) => { downOnBackdrop = e.target === dialog; });
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog && downOnBackdrop) close();
    downOnBackdrop = false;
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (returnFocus?.isConnected && !dialog.dataset.keepFocus) returnFocus.focus({ preventScroll: true });
  });

  build(body, footer, close, dialog);
  if (!footer.childElementCount) footer.remove();
  document.body.append(dialog);
  dialog.showModal();
  // Put the caret in the first field (showModal may pick the close button).
  (dialog.querySelector('[data-autofocus]') || dialog.querySelector('input, select, textarea'))?.focus();
  return { dialog, close };
}

export function closeAllDialogs() {
  for (const d of document.querySelectorAll('dialog.modal')) {
    d.dataset.keepFocus = '1';
    if (d.open) d.close();
    else d.remove();
  }
}

export const dialogOpen = () => !!document.querySelector('dialog.modal[open]');

function searchField(label, testid, placeholder) {
  return h('div', { class: 'search-box in-dialog' },
    icon('search', 'search-icon'),
    h('input', {
      type: 'search', class: 'search-input', placeholder, 'aria-label': label, testid,
      autocomplete: 'off', spellcheck: 'false', 'data-autofocus': '',
    }));
}

export function note(text, cls = '') {
  return h('p', { class: `dialog-note ${cls}`.trim() }, text);
}

export function loadingNote(text) {
  return h('p', { class: 'dialog-note' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

function byPresenceThenName(a, b) {
  const pa = S.presence(a);
  const pb = S.presence(b);
  return (!!pb.is_online - !!pa.is_online) || a.username.localeCompare(b.username);
}

// ---------------------------------------------------------------------------
// New direct chat

/** actions: { users(), startDirect(user) } */
export function openNewChatDialog(actions) {
  modal({
    title: 'New chat',
    description: 'Start a private conversation.',
    className: 'modal-people',
    build(body, _footer, close, dialog) {
      const search = searchField('Search people', 'user-search', 'Search by username');
      const input = search.querySelector('input');
      const list = h('ul', { class: 'people-list', 'aria-label': 'People' });
      const status = h('div', { class: 'list-status', role: 'status' });
      body.append(search, status, list);

      let users = null;
      let busy = false;

      const render = () => {
        if (!users) return;
        const q = input.value.trim().toLowerCase();
        const shown = users.filter((u) => !q || u.username.toLowerCase().includes(q)).sort(byPresenceThenName);
        status.replaceChildren(shown.length ? '' : note(users.length
          ? `No one matches “${input.value.trim()}”.`
          : "No one else is here yet. Invite a friend to sign up!"));
        list.replaceChildren(...shown.map((u) => {
          const p = S.presence(u);
          return h('li', null, h('button', {
            type: 'button', class: 'person', testid: 'user-item', 'data-username': u.username,
            onclick: () => pick(u),
          }, avatar(u.username, { presence: !!p.is_online }),
          h('span', { class: 'person-text' },
            h('span', { class: 'person-name' }, u.username),
            h('span', { class: `person-status${p.is_online ? ' online' : ''}` }, lastSeen(p)))));
        }));
      };

      const pick = async (user) => {
        if (busy) return;
        busy = true;
        dialog.classList.add('busy');
        try {
          await actions.startDirect(user);
          dialog.dataset.keepFocus = '1';
          close();
          actions.focusChat?.();
        } catch (err) {
          actions.error(err, "Couldn't start that chat.");
        } finally {
          busy = false;
          dialog.classList.remove('busy');
        }
      };

      input.addEventListener('input', render);
      let enterWhenLoaded = false;
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          if (!users) enterWhenLoaded = true; // typed fast; pick once the list arrives
          else list.querySelector('.person')?.click();
        } else if (e.key === 'ArrowDown') {
          e.preventDefault();
          list.querySelector('.person')?.focus();
        }
      });
      list.addEventListener('keydown', (e) => arrowNav(e, list, input));

      status.replaceChildren(loadingNote('Loading people…'));
      actions.users().then((result) => {
        users = (Array.isArray(result) ? result : []).filter((u) => !S.isMe(u.id));
        for (const u of users) S.upsertUser(u);
        render();
        if (enterWhenLoaded) list.querySelector('.person')?.click();
      }).catch((err) => {
        status.replaceChildren(note(err.detail || "Couldn't load people.", 'error'));
      });
    },
  });
}

/** Up/Down between buttons of a list; Up from the first goes back to the search box. */
function arrowNav(e, list, input) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  const buttons = [...list.querySelectorAll('button, input[type=checkbox]')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  e.preventDefault();
  const next = e.key === 'ArrowDown' ? buttons[i + 1] : buttons[i - 1] || input;
  next?.focus();
}

// ---------------------------------------------------------------------------
// New group

/** actions: { users(), createGroup(name, ids, visibility) }; preset: { visibility } */
export function openNewGroupDialog(actions, preset = {}) {
  modal({
    title: 'New group',
    description: 'Bring people together around a topic.',
    className: 'modal-group',
    build(body, footer, close, dialog) {
      const form = h('form', { class: 'group-form', novalidate: true, id: 'group-form' });
      const nameInput = h('input', {
        id: 'group-name', name: 'name', class: 'input', type: 'text', maxlength: S.limit('max_group_name_chars'), required: true,
        autocomplete: 'off', testid: 'group-name', placeholder: 'e.g. Weekend hikers', 'data-autofocus': '',
      });
      const visibility = h('select', { id: 'group-visibility', name: 'visibility', class: 'input', testid: 'group-visibility' },
        h('option', { value: 'private' }, 'Private: only people you add'),
        h('option', { value: 'public' }, 'Public: anyone can find and join'));
      if (preset.visibility) visibility.value = preset.visibility;

      const memberSearch = h('input', {
        type: 'search', class: 'input input-sm', placeholder: 'Search people', 'aria-label': 'Search people to add',
        testid: 'group-member-search', autocomplete: 'off', spellcheck: 'false',
      });
      const picked = h('span', { class: 'picked-count', 'aria-live': 'polite' }, 'No one selected');
      const list = h('ul', { class: 'people-list checks', 'aria-label': 'Members' });
      const status = h('div', { class: 'list-status' });
      const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });

      form.append(
        h('div', { class: 'field', 'data-field': 'name' },
          h('label', { for: 'group-name' }, 'Group name'), nameInput),
        h('div', { class: 'field', 'data-field': 'visibility' },
          h('label', { for: 'group-visibility' }, 'Who can join'), visibility),
        h('fieldset', { class: 'field members-field', 'data-field': 'member_ids' },
          h('legend', null, 'Members ', picked),
          memberSearch, status, list),
        formError);
      body.append(form);

      const submit = h('button', { type: 'submit', form: 'group-form', class: 'btn btn-primary', testid: 'group-create' }, 'Create group');
      footer.append(h('button', { type: 'button', class: 'btn btn-ghost', onclick: close }, 'Cancel'), submit);

      let users = null;
      const selected = new Set();

      const renderList = () => {
        if (!users) return;
        const q = memberSearch.value.trim().toLowerCase();
        let shownCount = 0;
        for (const li of list.children) {
          const show = !q || li.dataset.name.includes(q);
          li.hidden = !show;
          if (show) shownCount += 1;
        }
        status.replaceChildren(shownCount ? '' : note(users.length ? 'No one matches.' : 'No one else is here yet. You can still create the group.'));
      };
      const updatePicked = () => {
        picked.textContent = selected.size ? `${plural(selected.size, 'person', 'people')} selected` : 'No one selected';
      };

      status.replaceChildren(loadingNote('Loading people…'));
      actions.users().then((result) => {
        users = (Array.isArray(result) ? result : []).filter((u) => !S.isMe(u.id)).sort(byPresenceThenName);
        list.replaceChildren(...users.map((u) => {
          const p = S.presence(u);
          const box = h('input', { type: 'checkbox', value: S.key(u.id), id: `gm-${S.key(u.id)}` });
          box.addEventListener('change', () => {
            if (box.checked) selected.add(S.key(u.id));
            else selected.delete(S.key(u.id));
            updatePicked();
          });
          return h('li', { 'data-name': u.username.toLowerCase() },
            h('label', { class: 'person check', for: box.id, testid: 'group-member', 'data-username': u.username },
              box,
              avatar(u.username, { presence: !!p.is_online, size: 'sm' }),
              h('span', { class: 'person-text' },
                h('span', { class: 'person-name' }, u.username),
                h('span', { class: 'person-status' }, lastSeen(p)))));
        }));
        renderList();
      }).catch((err) => status.replaceChildren(note(err.detail || "Couldn't load people.", 'error')));

      memberSearch.addEventListener('input', renderList);
      memberSearch.addEventListener('keydown', (e) => { if (e.key === 'Enter') e.preventDefault(); });
      list.addEventListener('keydown', (e) => arrowNav(e, list, memberSearch));

      const clearErrors = () => {
        for (const el of form.querySelectorAll('.field-error')) el.remove();
        for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
        formError.hidden = true;
      };
      const fieldError = (field, text) => {
        const wrapper = form.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
        if (!wrapper) return false;
        const control = wrapper.querySelector('input, select');
        const id = `group-${field}-error`;
        wrapper.append(h('p', { class: 'field-error', testid: 'field-error', 'data-field': field, id }, text));
        control?.setAttribute('aria-invalid', 'true');
        control?.setAttribute('aria-describedby', id);
        control?.focus();
        return true;
      };
      nameInput.addEventListener('input', () => {
        nameInput.removeAttribute('aria-invalid');
        form.querySelector('.field-error[data-field="name"]')?.remove();
      });

      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        if (submit.disabled) return;
        clearErrors();
        const name = nameInput.value.trim();
        if (!name) {
          fieldError('name', 'Give your group a name.');
          return;
        }
        submit.disabled = true;
        dialog.classList.add('busy');
        try {
          await actions.createGroup(name, [...selected], visibility.value);
          dialog.dataset.keepFocus = '1';
          close();
          actions.focusChat?.();
        } catch (err) {
          if (err.status === 401) return;
          if (!(err.field && fieldError(err.field, err.detail))) {
            formError.textContent = err.detail || "Couldn't create the group.";
            formError.hidden = false;
          }
        } finally {
          submit.disabled = false;
          dialog.classList.remove('busy');
        }
      });
    },
  });
}

// ---------------------------------------------------------------------------
// Browse public rooms

/** actions: { rooms(), joinRoom(room), newGroup(preset) } */
export function openRoomsDialog(actions) {
  modal({
    title: 'Public rooms',
    description: 'Join an open conversation.',
    className: 'modal-rooms',
    build(body, _footer, close, dialog) {
      const search = searchField('Search rooms', 'room-search', 'Search rooms');
      const input = search.querySelector('input');
      const list = h('ul', { class: 'room-list', 'aria-label': 'Rooms' });
      const status = h('div', { class: 'list-status', role: 'status' });
      body.append(search, status, list);

      let rooms = null;
      let busy = false;

      const render = () => {
        if (!rooms) return;
        const q = input.value.trim().toLowerCase();
        const shown = rooms.filter((r) => !q || String(r.name).toLowerCase().includes(q));
        if (!rooms.length) {
          status.replaceChildren(h('div', { class: 'dialog-empty' },
            note('No public rooms yet.'),
            h('button', {
              type: 'button', class: 'btn btn-primary btn-sm',
              onclick: () => {
                dialog.dataset.keepFocus = '1';
                close();
                actions.newGroup({ visibility: 'public' });
              },
            }, 'Start a public room')));
        } else {
          status.replaceChildren(shown.length ? '' : note(`No rooms match “${input.value.trim()}”.`));
        }
        list.replaceChildren(...shown.map((room) => h('li', { class: 'room', testid: 'room-item', 'data-name': room.name },
          avatar(room.name, { group: true }),
          h('span', { class: 'person-text' },
            h('span', { class: 'person-name' }, room.name),
            h('span', { class: 'person-status' }, `${plural(Number(room.members_count) || 0, 'member')}${room.is_member ? ' · joined' : ''}`)),
          h('button', {
            type: 'button', class: `btn btn-sm ${room.is_member ? 'btn-secondary' : 'btn-primary'}`, testid: 'room-join',
            'aria-label': room.is_member ? `Open ${room.name}` : `Join ${room.name}`,
            onclick: () => join(room),
          }, room.is_member ? 'Open' : 'Join'))));
      };

      const join = async (room) => {
        if (busy) return;
        busy = true;
        dialog.classList.add('busy');
        try {
          await actions.joinRoom(room);
          dialog.dataset.keepFocus = '1';
          close();
          actions.focusChat?.();
        } catch (err) {
          actions.error(err, "Couldn't join that room.");
        } finally {
          busy = false;
          dialog.classList.remove('busy');
        }
      };

      input.addEventListener('input', render);
      list.addEventListener('keydown', (e) => arrowNav(e, list, input));

      status.replaceChildren(loadingNote('Loading rooms…'));
      actions.rooms().then((result) => {
        rooms = (Array.isArray(result) ? result : [])
          .sort((a, b) => (Number(b.members_count) || 0) - (Number(a.members_count) || 0) || String(a.name).localeCompare(String(b.name)));
        render();
      }).catch((err) => status.replaceChildren(note(err.detail || "Couldn't load rooms.", 'error')));
    },
  });
}
