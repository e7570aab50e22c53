// session.js — Keeps this page signed in. The access token in the cookie lives minutes; the
// session behind it lasts as long as it is used. Before the token expires this renews it
// with the refresh token (a second cookie, sent to /auth only), and renews at once when a
// request or the socket is refused for expiry. A refused renewal means the session ended
// (logged out elsewhere, signed out from another device, password changed): the page signs
// out. Two tabs renewing at once are fine: the server gives the later one a token too.

import { api } from './api.js';

const MAX_MARGIN_MS = 60_000;  // renew this long before expiry...
const MARGIN_SHARE = 0.2;      // ...or this share of a short lifetime before it
const MIN_DELAY_MS = 1_000;
const RETRY_MS = 5_000;        // after a renewal that got no answer

let timer = 0;
let inflight = null;
let active = false;

/** Keep renewing a token that expires at `expiresAt` (RFC 3339) until stopped. */
export function keepAlive(expiresAt) {
  active = true;
  schedule(expiresAt);
}

/** Stop renewing (logged out, session ended). */
export function stopKeepAlive() {
  active = false;
  clearTimeout(timer);
  timer = 0;
}

function schedule(expiresAt) {
  clearTimeout(timer);
  if (!active) return;
  const left = Date.parse(expiresAt) - Date.now();
  if (Number.isNaN(left)) return;
  const margin = Math.min(MAX_MARGIN_MS, left * MARGIN_SHARE);
  timer = setTimeout(() => { renew(); }, Math.max(MIN_DELAY_MS, left - margin));
}

/**
 * Renew the access token. Resolves true when the session goes on (renewed, or the server
 * could not be reached, so the socket's own retries take over), false when it has ended.
 * Calls made while one is under way share it.
 */
export function renew() {
  if (!inflight) {
    inflight = api.refresh()
      .then((tokens) => {
        if (tokens?.expires_at) schedule(tokens.expires_at);
        return true;
      })
      .catch((err) => {
        if (err.status === 0 || err.status >= 500) {
          clearTimeout(timer);
          if (active) timer = setTimeout(() => { renew(); }, RETRY_MS);
          return true;
        }
        return false;
      })
      .finally(() => { inflight = null; });
  }
  return inflight;
}
