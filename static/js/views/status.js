// views/status.js — Whether you are connected, shown where you look: your name and
// avatar with Online/Offline in the sidebar, and a "Reconnecting..." banner over the
// chat while the socket is down. Screen readers hear the drop and the return, since
// messages sent meanwhile wait in the outbox and the user should know why.

import { $, h, avatar, icon } from '../dom.js';
import * as S from '../store.js';
import { announce } from './feedback.js';

let actions = null;
let wasDisconnected = false;

/** actions: { retryNow() } */
export function initStatus(a) {
  actions = a;
  S.on('me', renderMe);
  S.on('connection', ({ state }) => renderConnection(state));
}

export function resetStatus() {
  $('#banner-slot').replaceChildren();
  wasDisconnected = false;
}

function renderMe() {
  const me = S.state.me;
  if (!me) return;
  $('#me-name').textContent = me.username;
  $('#me-avatar').replaceChildren(avatar(me.username, { presence: false, size: 'sm' }));
}

function renderConnection(state) {
  // A socket reconnecting after its token was renewed is back in a moment; nothing to show.
  if (state === 'renewing') return;
  const slot = $('#banner-slot');
  if (state === 'reconnecting') {
    if (!wasDisconnected) announce('Connection lost. Reconnecting...');
    wasDisconnected = true;
    if (!slot.querySelector('.conn-banner')) {
      slot.replaceChildren(h('div', { class: 'conn-banner', testid: 'connection-banner' },
        h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', null, 'Reconnecting...'),
        h('button', { type: 'button', class: 'link-btn', onclick: () => actions.retryNow() }, 'Retry now')));
    }
  } else if (state === 'open' && wasDisconnected) {
    wasDisconnected = false;
    announce('Connected');
    const ok = h('div', { class: 'conn-ok' }, icon('check'), 'Connected');
    slot.replaceChildren(ok);
    setTimeout(() => ok.remove(), 1600);
  } else if (state !== 'connecting') {
    slot.replaceChildren();
  }
  const status = $('.me-status');
  const label = state === 'open' ? 'Online' : state === 'reconnecting' ? 'Offline, reconnecting' : 'Connecting…';
  if (status.textContent !== label) status.textContent = label;
  status.classList.toggle('offline', state !== 'open');
  $('#me-avatar .presence')?.classList.toggle('online', state === 'open');
}
