// dom.js — Small DOM helpers: an element builder, SVG icons, avatars, safe linkify and
// a keyed list reconciler. Everything here builds nodes with createElement/textContent:
// no HTML string is ever parsed, so user text can't become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Build an element. props: class, text, testid, dataset, on<event> handlers, any attribute.
 * Children may be nodes, strings (become text nodes), arrays, or null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (name === 'class') el.className = value;
      else if (name === 'text') el.textContent = value;
      else if (name === 'testid') el.setAttribute('data-testid', value);
      else if (name === 'dataset') Object.assign(el.dataset, value);
      else if (name.startsWith('on') && typeof value === 'function') {
        el.addEventListener(name.slice(2).toLowerCase(), value);
      } else el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Remove all children. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

// ---------------------------------------------------------------------------
// Icons: 24x24 stroke icons drawn with plain shapes. [tag, attributes] pairs.
const ICONS = {
  'message-plus': [['path', { d: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z' }], ['path', { d: 'M12 7v6M9 10h6' }]],
  'message-circle': [['path', { d: 'M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8z' }]],
  'users-plus': [['path', { d: 'M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2' }], ['circle', { cx: 8.5, cy: 7, r: 4 }], ['path', { d: 'M20 8v6M23 11h-6' }]],
  users: [['path', { d: 'M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2' }], ['circle', { cx: 9, cy: 7, r: 4 }], ['path', { d: 'M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75' }]],
  'user-minus': [['path', { d: 'M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2' }], ['circle', { cx: 8.5, cy: 7, r: 4 }], ['path', { d: 'M23 11h-6' }]],
  compass: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'm16.24 7.76-2.12 6.36-6.36 2.12 2.12-6.36z' }]],
  logout: [['path', { d: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9' }]],
  send: [['path', { d: 'M22 2 11 13M22 2l-7 20-4-9-9-4z' }]],
  'arrow-left': [['path', { d: 'M19 12H5M12 19l-7-7 7-7' }]],
  'arrow-down': [['path', { d: 'M12 5v14M19 12l-7 7-7-7' }]],
  x: [['path', { d: 'M18 6 6 18M6 6l12 12' }]],
  search: [['circle', { cx: 11, cy: 11, r: 7 }], ['path', { d: 'm21 21-4.3-4.3' }]],
  check: [['path', { d: 'M20 6 9 17l-5-5' }]],
  clock: [['circle', { cx: 12, cy: 12, r: 9 }], ['path', { d: 'M12 7v5l3 2' }]],
  alert: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 8v4M12 16h.01' }]],
  eye: [['path', { d: 'M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8z' }], ['circle', { cx: 12, cy: 12, r: 3 }]],
  'eye-off': [['path', { d: 'M17.94 17.94A10 10 0 0 1 12 20c-7 0-11-8-11-8a18.5 18.5 0 0 1 5.06-5.94M9.9 4.24A9 9 0 0 1 12 4c7 0 11 8 11 8a18.5 18.5 0 0 1-2.16 3.19M14.12 14.12a3 3 0 1 1-4.24-4.24M1 1l22 22' }]],
  hash: [['path', { d: 'M4 9h16M4 15h16M10 3 8 21M16 3l-2 18' }]],
  lock: [['rect', { x: 4, y: 11, width: 16, height: 10, rx: 2 }], ['path', { d: 'M8 11V7a4 4 0 0 1 8 0v4' }]],
  globe: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M2 12h20M12 2a15 15 0 0 1 4 10 15 15 0 0 1-4 10 15 15 0 0 1-4-10 15 15 0 0 1 4-10z' }]],
  refresh: [['path', { d: 'M23 4v6h-6M1 20v-6h6' }], ['path', { d: 'M3.5 9a9 9 0 0 1 14.9-3.4L23 10M1 14l4.6 4.4A9 9 0 0 0 20.5 15' }]],
  plus: [['path', { d: 'M12 5v14M5 12h14' }]],
  reply: [['path', { d: 'M9 14 4 9l5-5' }], ['path', { d: 'M4 9h10.5a5.5 5.5 0 0 1 0 11H11' }]],
  smile: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01' }]],
  pencil: [['path', { d: 'M17 3a2.85 2.85 0 1 1 4 4L7.5 20.5 2 22l1.5-5.5z' }]],
  trash: [['path', { d: 'M3 6h18M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2' }]],
};

/** An inline SVG icon, hidden from assistive technology (its button carries the label). */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon ${cls}`.trim());
  for (const [tag, attrs] of ICONS[name] || []) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v));
    svg.append(shape);
  }
  return svg;
}

/** Replace every [data-icon] placeholder in static markup with its SVG. */
export function installIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    el.prepend(icon(el.dataset.icon));
    el.removeAttribute('data-icon');
  }
}

// ---------------------------------------------------------------------------
// Avatars: initials on a colour picked from a stable hash of the name.

const AVATAR_COLOURS = 8;

export function colourIndex(name) {
  let hash = 0;
  for (const ch of String(name || '')) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % AVATAR_COLOURS;
}

export function initials(name) {
  const parts = String(name || '?').split(/[\s._-]+/).filter(Boolean);
  const first = Array.from(parts[0] || '?')[0] || '?';
  const second = parts.length > 1 ? Array.from(parts[1])[0] : '';
  return (first + (second || '')).toUpperCase();
}

/**
 * Avatar element. presence: true/false shows an online/offline dot, null shows none.
 * size: 'sm' | 'md' | 'lg'. group: rounded square instead of a circle.
 */
export function avatar(name, { presence = null, size = 'md', group = false } = {}) {
  const el = h('span', {
    class: `avatar avatar-${size} av-${colourIndex(name)}${group ? ' avatar-group' : ''}`,
    'aria-hidden': 'true',
  }, group ? icon('hash', 'avatar-icon') : initials(name));
  if (presence !== null) el.append(h('span', { class: `presence${presence ? ' online' : ''}` }));
  return el;
}

// ---------------------------------------------------------------------------
// Links inside messages: only http(s) URLs become <a>, built as elements.

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

export function linkify(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trailing = url.match(/[).,!?;:'\]]+$/); // punctuation that ends a sentence, not the URL
    if (trailing) url = url.slice(0, -trailing[0].length);
    if (!url) continue;
    if (match.index > last) out.push(text.slice(last, match.index));
    out.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' }, url));
    last = match.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// ---------------------------------------------------------------------------

/**
 * Make `parent`'s children after `anchor` (or all of them) exactly `nodes`, in order,
 * moving existing nodes instead of recreating them so focus, selection and scroll
 * anchoring survive re-renders.
 */
export function reconcile(parent, nodes, anchor = null) {
  let cursor = anchor ? anchor.nextSibling : parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
      continue;
    }
    parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
}

/** True on devices with a precise pointer, where focusing a text box won't pop a keyboard. */
export const finePointer = () => window.matchMedia('(pointer: fine)').matches;

/** True when the layout shows one pane at a time. Keep in sync with app.css. */
export const isNarrow = () => window.matchMedia('(max-width: 767px)').matches;
