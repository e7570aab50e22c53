// views/auth.js — The log-in / create-account screen: tab switching, submitting, and
// showing server validation errors next to the field they concern.

import { $, h } from '../dom.js';

let els = null;
let handlers = null;

/** handlers: { login(username, password), register({...}) } — both return promises. */
export function initAuth(h_) {
  handlers = h_;
  els = {
    screen: $('#auth-screen'),
    loginTab: $('#login-tab'),
    registerTab: $('#register-tab'),
    loginForm: $('#login-form'),
    registerForm: $('#register-form'),
    message: $('#auth-message'),
  };

  els.loginTab.addEventListener('click', () => selectTab('login', true));
  els.registerTab.addEventListener('click', () => selectTab('register', true));
  // Arrow keys move between tabs, as in any tablist.
  for (const tab of [els.loginTab, els.registerTab]) {
    tab.addEventListener('keydown', (e) => {
      if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
      e.preventDefault();
      const next = tab === els.loginTab ? 'register' : 'login';
      const target = e.key === 'Home' ? 'login' : e.key === 'End' ? 'register' : next;
      selectTab(target, false);
      (target === 'login' ? els.loginTab : els.registerTab).focus();
    });
  }

  els.loginForm.addEventListener('submit', onLogin);
  els.registerForm.addEventListener('submit', onRegister);

  // Editing a field clears its error.
  for (const form of [els.loginForm, els.registerForm]) {
    form.addEventListener('input', (e) => {
      const field = e.target.closest('.field');
      if (field) clearFieldError(field);
    });
  }

  // Show/hide password toggles.
  for (const btn of els.screen.querySelectorAll('.reveal')) {
    btn.addEventListener('click', () => {
      const input = document.getElementById(btn.getAttribute('aria-controls'));
      const show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      btn.setAttribute('aria-pressed', String(show));
      btn.setAttribute('aria-label', show ? 'Hide password' : 'Show password');
      btn.classList.toggle('on', show);
    });
  }
}

export function showAuth(message = '') {
  els.screen.hidden = false;
  for (const form of [els.loginForm, els.registerForm]) {
    clearErrors(form);
    setBusy(form, false);
  }
  els.registerForm.reset();
  els.loginForm.querySelector('[name=password]').value = '';
  selectTab('login', false);
  setMessage(message);
  const username = els.loginForm.querySelector('[name=username]');
  if (!username.value) username.focus();
  else els.loginForm.querySelector('[name=password]').focus();
}

export function hideAuth() {
  els.screen.hidden = true;
  setMessage('');
}

function selectTab(which, focusField) {
  const login = which === 'login';
  els.loginTab.setAttribute('aria-selected', String(login));
  els.registerTab.setAttribute('aria-selected', String(!login));
  els.loginTab.tabIndex = login ? 0 : -1;
  els.registerTab.tabIndex = login ? -1 : 0;
  els.loginForm.hidden = !login;
  els.registerForm.hidden = login;
  // Errors belong to the form they came from; don't leave them behind.
  clearErrors(els.loginForm);
  clearErrors(els.registerForm);
  setMessage('');
  if (focusField) (login ? els.loginForm : els.registerForm).querySelector('input').focus();
}

function setMessage(text, kind = 'error') {
  els.message.textContent = text;
  els.message.hidden = !text;
  els.message.classList.toggle('info', kind === 'info');
}

// ---------------------------------------------------------------------------

async function onLogin(e) {
  e.preventDefault();
  const form = els.loginForm;
  if (form.classList.contains('busy')) return;
  clearErrors(form);
  setMessage('');
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  setBusy(form, true);
  try {
    await handlers.login(username, password);
  } catch (err) {
    showError(form, err);
  } finally {
    setBusy(form, false);
  }
}

async function onRegister(e) {
  e.preventDefault();
  const form = els.registerForm;
  if (form.classList.contains('busy')) return;
  clearErrors(form);
  setMessage('');
  const data = {
    username: form.elements.username.value.trim(),
    email: form.elements.email.value.trim(),
    password: form.elements.password.value,
    password_confirm: form.elements.password_confirm.value,
  };
  setBusy(form, true);
  try {
    await handlers.register(data);
  } catch (err) {
    if (err.stage === 'login') {
      // The account exists; only the automatic log-in failed.
      selectTab('login', false);
      els.loginForm.elements.username.value = data.username;
      setMessage(`Your account was created, but we couldn't log you in: ${err.detail}`);
      els.loginForm.elements.password.focus();
    } else {
      showError(form, err);
    }
  } finally {
    setBusy(form, false);
  }
}

function setBusy(form, busy) {
  form.classList.toggle('busy', busy);
  form.setAttribute('aria-busy', String(busy));
  const submit = form.querySelector('[type=submit]');
  submit.disabled = busy;
}

/** Put an API error next to its field, or under the form when it has no field. */
function showError(form, err) {
  let field = err.field;
  if (err.status === 409) {
    if (err.code === 'username_taken') field = 'username';
    else if (err.code === 'email_taken') field = 'email';
  }
  const wrapper = field && form.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
  if ((err.status === 422 || err.status === 409) && wrapper) {
    setFieldError(wrapper, err.detail);
    wrapper.querySelector('input').focus();
    return;
  }
  setMessage(err.detail || 'Something went wrong. Please try again.');
}

function setFieldError(wrapper, text) {
  clearFieldError(wrapper);
  const input = wrapper.querySelector('input');
  const name = wrapper.dataset.field;
  const id = `${input.id}-error`;
  const el = h('p', { id, class: 'field-error', testid: 'field-error', 'data-field': name }, text);
  wrapper.append(el);
  wrapper.classList.add('invalid');
  input.setAttribute('aria-invalid', 'true');
  const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!described.includes(id)) input.setAttribute('aria-describedby', [id, ...described].join(' '));
}

function clearFieldError(wrapper) {
  const el = wrapper.querySelector('.field-error');
  if (!el) return;
  const input = wrapper.querySelector('input');
  el.remove();
  wrapper.classList.remove('invalid');
  input.removeAttribute('aria-invalid');
  const described = (input.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== el.id);
  if (described.length) input.setAttribute('aria-describedby', described.join(' '));
  else input.removeAttribute('aria-describedby');
}

function clearErrors(form) {
  for (const wrapper of form.querySelectorAll('.field')) clearFieldError(wrapper);
}
