// views/feedback.js — Transient feedback: toasts and the screen-reader announcer.

import { h, icon } from '../dom.js';

const MAX_TOASTS = 3;

/** Show a short-lived message. kind: 'info' | 'success' | 'error'. */
export function toast(text, { kind = 'info', timeout } = {}) {
  const root = document.getElementById('toasts');
  if (!root || !text) return null;
  const ms = timeout ?? (kind === 'error' ? 6500 : 4000);

  const el = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' },
    icon(kind === 'error' ? 'alert' : 'check', 'toast-icon'),
    h('span', { class: 'toast-text', text }),
  );
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss notification' }, icon('x'));
  el.append(close);

  let timer = 0;
  const dismiss = () => {
    clearTimeout(timer);
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 180);
  };
  const arm = () => { timer = setTimeout(dismiss, ms); };
  close.addEventListener('click', dismiss);
  // Pause while the pointer or focus is on it so it can actually be read.
  el.addEventListener('pointerenter', () => clearTimeout(timer));
  el.addEventListener('pointerleave', arm);
  el.addEventListener('focusin', () => clearTimeout(timer));
  el.addEventListener('focusout', arm);

  root.append(el);
  while (root.children.length > MAX_TOASTS) root.firstElementChild.remove();
  arm();
  return el;
}

/** Toast a failed request's reason. A 401 shows nothing: the session handler takes over. */
export function reportError(err, fallback) {
  if (err?.status === 401) return;
  toast(err?.detail || fallback || 'Something went wrong.', { kind: 'error' });
}

export function clearToasts() {
  document.getElementById('toasts')?.replaceChildren();
}

let announceTimer = 0;

/** Read a sentence to screen-reader users without moving focus. */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  clearTimeout(announceTimer);
  el.textContent = '';
  // Clearing first and writing on the next tick makes repeats of the same text audible.
  announceTimer = setTimeout(() => { el.textContent = text; }, 60);
}
