// views/sessions.js — The "Sessions" dialog: where you are signed in (one line per device,
// this one marked), signing one of them out or all but this one, and changing the password,
// which signs out every other device. Built on the modal of dialogs.js.

import { h } from '../dom.js';
import { modal, note, loadingNote } from './dialogs.js';

/** actions: { sessions(), endSession(id), logoutAll(), changePassword(current, next), error(err, fallback) } */
export function openSessionsDialog(actions) {
  modal({
    title: 'Sessions',
    description: 'Where you are signed in.',
    className: 'modal-sessions',
    build(body) {
      const status = h('div', { class: 'list-status', role: 'status' });
      const list = h('ul', { class: 'session-list', testid: 'session-list', 'aria-label': 'Sessions' });
      const others = h('button', {
        type: 'button', class: 'btn btn-danger-ghost btn-sm', testid: 'logout-others',
        onclick: () => busy(others, async () => {
          const { ended } = await actions.logoutAll();
          status.replaceChildren(note(ended === 1 ? 'Signed out 1 other session.' : `Signed out ${ended} other sessions.`));
          await load();
        }),
      }, 'Sign out everywhere else');

      const form = passwordForm(actions, async () => {
        status.replaceChildren(note('Password changed. Every other session was signed out.'));
        await load();
      });
      body.append(status, list, h('div', { class: 'session-actions' }, others), form);

      async function load() {
        let sessions;
        try {
          sessions = await actions.sessions();
        } catch (err) {
          status.replaceChildren(note(err.detail || "Couldn't load your sessions.", 'error'));
          return;
        }
        list.replaceChildren(...sessions.map((s) => sessionItem(s, () => busy(null, async () => {
          await actions.endSession(s.id);
          await load();
        }))));
        others.disabled = sessions.every((s) => s.current);
      }

      async function busy(button, work) {
        if (button) button.disabled = true;
        try {
          await work();
        } catch (err) {
          actions.error(err, "Couldn't do that. Please try again.");
        } finally {
          if (button) button.disabled = false;
        }
      }

      status.replaceChildren(loadingNote('Loading sessions…'));
      load().then(() => { if (status.querySelector('.spinner')) status.replaceChildren(); });
    },
  });
}

function sessionItem(s, signOut) {
  const when = new Date(s.last_used_at);
  const used = Number.isNaN(when.getTime()) ? '' : `active ${when.toLocaleString()}`;
  return h('li', { class: 'session', testid: 'session-item', 'data-id': s.id, 'data-current': String(!!s.current) },
    h('span', { class: 'person-text' },
      h('span', { class: 'person-name' }, s.user_agent || 'Unknown device'),
      h('span', { class: 'person-status' }, [s.address, s.current ? 'this device' : used].filter(Boolean).join(' · '))),
    s.current ? null : h('button', {
      type: 'button', class: 'btn btn-secondary btn-sm', testid: 'session-end',
      'aria-label': `Sign out ${s.user_agent || 'this session'}`, onclick: signOut,
    }, 'Sign out'));
}

function passwordForm(actions, changed) {
  const field = (name, label, autocomplete) => h('div', { class: 'field', 'data-field': name },
    h('label', { for: `sessions-${name}` }, label),
    h('input', {
      id: `sessions-${name}`, name, class: 'input', type: 'password', autocomplete, required: true,
      testid: `sessions-${name}`,
    }));
  const current = field('current_password', 'Current password', 'current-password');
  const next = field('new_password', 'New password', 'new-password');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-sm', testid: 'change-password' }, 'Change password');
  const form = h('form', { class: 'password-form', testid: 'password-form', novalidate: true },
    h('h3', { class: 'modal-subtitle' }, 'Change password'), current, next, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const f of form.querySelectorAll('.field-error')) f.remove();
    submit.disabled = true;
    try {
      await actions.changePassword(current.querySelector('input').value, next.querySelector('input').value);
      form.reset();
      await changed();
    } catch (err) {
      const wrapper = err.code === 'wrong_password' ? current : err.field === 'new_password' ? next : null;
      if (wrapper) {
        wrapper.append(h('p', { class: 'field-error', testid: 'field-error', 'data-field': wrapper.dataset.field }, err.detail));
        wrapper.querySelector('input').focus();
      } else {
        actions.error(err, "Couldn't change the password.");
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
