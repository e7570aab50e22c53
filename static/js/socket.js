// socket.js — The socket client: everything about /ws lives here, so the rest of the app
// deals in "a message arrived" and "send this", never in frames or reconnects.
// ReconnectingSocket is the transport: one WebSocket carrying every chat, reconnecting
// with exponential backoff (0.5 s doubling to 15 s, with jitter) and reporting its state;
// close codes 4401/1008 mean the token expired or the session is gone, so it asks to
// renew and reconnects at once (quietly: the state is 'renewing') or stops for good.
// SocketClient speaks the protocol on top: it builds the frames the server accepts, paces
// them below the server's frame rate (a reconnect sends a burst: a resume per loaded chat
// and every unacknowledged message), and hands each event it sends to the handler for its
// kind. A connection counts as ready once the server's `ready` greeting arrived; each one
// gets a new `epoch`, so callers can tell "asked on this connection" from "on an older one".

import { wireId } from './store.js';

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
const CONNECT_TIMEOUT_MS = 10_000;
const STABLE_AFTER_MS = 5_000; // an open socket that lived this long resets the backoff
const AUTH_CLOSE_CODES = new Set([4401, 1008]);
// The server allows 20 frames a second with bursts of 60; stay well below both.
const FRAME_BURST = 20;
const FRAMES_PER_SECOND = 10;

function socketUrl() {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/ws`;
}

/**
 * handlers:
 *   onOpen()            the socket (re)connected
 *   onMessage(data)     a parsed JSON frame
 *   onState(state)      'connecting' | 'open' | 'renewing' | 'reconnecting' | 'closed'
 *   onAuthClose(event)  closed for auth reasons; resolves true to reconnect at once
 *                       (renewed), false to stop for good
 *   onDrop(event)       closed unexpectedly; a reconnect is scheduled
 */
class ReconnectingSocket {
  constructor(url, handlers = {}) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.state = 'closed';
    this.attempt = 0;
    this.timer = 0;
    this.connectTimer = 0;
    this.openedAt = 0;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  /** Close for good (log out, session ended). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.connectTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try { ws.close(1000, 'bye'); } catch { /* already closing */ }
    }
    this.setState('closed');
  }

  /** Skip the remaining backoff wait (the network came back, the tab became visible). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a JSON frame. Returns false (and sends nothing) when not connected. */
  send(frame) {
    if (!this.isOpen) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.handlers.onState?.(state);
  }

  connect() {
    if (this.stopped) return;
    // The first attempt is "connecting"; anything after a failure is "reconnecting"; one
    // after a renewal stays "renewing" until it opens.
    if (this.state !== 'renewing') {
      this.setState(this.attempt === 0 && this.state !== 'reconnecting' ? 'connecting' : 'reconnecting');
    }
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.openedAt = 0;

    // A handshake that hangs (black-holed network) would never fire close on its own.
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);

    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      clearTimeout(this.connectTimer);
      this.openedAt = Date.now();
      this.setState('open');
      this.handlers.onOpen?.();
    });

    ws.addEventListener('message', (event) => {
      if (this.ws !== ws || typeof event.data !== 'string') return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret
      }
      this.handlers.onMessage?.(data);
    });

    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return; // a socket we already replaced or stopped
      clearTimeout(this.connectTimer);
      this.ws = null;
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.has(event.code)) {
        this.setState('renewing');
        Promise.resolve(this.handlers.onAuthClose?.(event)).then((renewed) => {
          if (this.stopped || this.ws) return;
          if (renewed) {
            this.attempt = 0;
            this.connect();
          } else {
            this.stopped = true;
            this.setState('closed');
          }
        });
        return;
      }
      if (this.openedAt && Date.now() - this.openedAt > STABLE_AFTER_MS) this.attempt = 0;
      this.setState('reconnecting');
      this.scheduleReconnect();
      this.handlers.onDrop?.(event);
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    // ±20% jitter so a restarted server isn't hit by every client at the same instant.
    const delay = Math.min(MAX_DELAY_MS, base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

/**
 * handlers (all optional):
 *   state(state)         'connecting' | 'open' | 'renewing' | 'reconnecting' | 'closed'
 *   ready(ev)            the server's greeting, first on every connection:
 *                        {user_id, username, chat_ids, limits}; the socket is live
 *   message(ev)          a message {id, seq, chat_id, user_id, username, message, created_at}:
 *                        new, or replayed after a resume
 *   ack(ev)              {chat_id, client_id, id, seq}: a message we sent is stored
 *   resync(ev)           {chat_id}: a resume reached back further than the server replays
 *   typing(ev)           {action: 'typing' | 'stop_typing', chat_id, user_id, username}
 *   userStatus(ev)       {user_id, username, is_online, last_seen}
 *   membership(ev)       {action: 'member_joined' | 'member_left', chat_id, user_id}
 *   chatCreated(ev)      {chat_id, kind}
 *   read(ev)             {chat_id, user_id, message_id}
 *   error(ev)            {detail, code, client_id?}: the server refused a frame (client_id:
 *                        the message it refused)
 *   authClose(event)     closed for auth reasons; resolves true (renewed) to reconnect at
 *                        once, false to stop for good
 *   drop(event)          closed unexpectedly; a reconnect is scheduled
 */
class SocketClient {
  constructor() {
    this.transport = null;
    this.handlers = {};
    this.ready = false;    // the current connection was greeted
    this.epoch = 0;        // counts greeted connections
    this.queue = [];       // frames waiting for the pace to allow them
    this.tokens = FRAME_BURST;
    this.refilledAt = 0;
    this.drainTimer = 0;
  }

  start(handlers) {
    this.stop();
    this.handlers = handlers;
    this.transport = new ReconnectingSocket(socketUrl(), {
      onState: (state) => {
        if (state !== 'open') this.forgetConnection();
        this.handlers.state?.(state);
      },
      onMessage: (ev) => this.dispatch(ev),
      onAuthClose: (event) => this.handlers.authClose?.(event) ?? false,
      onDrop: (event) => this.handlers.drop?.(event),
    });
    this.transport.start();
  }

  /** Close for good (log out, session ended). */
  stop() {
    const transport = this.transport;
    this.transport = null;
    this.forgetConnection();
    transport?.stop();
  }

  /** The connection is gone: so is its greeting, and what it had yet to send. */
  forgetConnection() {
    this.ready = false;
    this.queue = [];
    clearTimeout(this.drainTimer);
    this.drainTimer = 0;
  }

  /** Skip the remaining backoff wait (the network came back, the tab became visible). */
  retryNow() {
    this.transport?.retryNow();
  }

  // Sending. Each returns false (and sends nothing) when not connected. A frame the pace
  // holds back goes out shortly, or never if the connection drops first.

  /** A message, stored once per client_id however often it is sent; `replyTo` answers one. */
  sendMessage(chatKey, text, clientId, replyTo = null) {
    const frame = { chat_id: wireId(chatKey), message: text, client_id: clientId };
    if (replyTo != null) frame.reply_to = wireId(replyTo);
    return this.send(frame);
  }

  /** Ask for every message of a chat after `afterSeq`, then the live ones, without a gap. */
  sendResume(chatKey, afterSeq) {
    return this.send({ action: 'resume', chat_id: wireId(chatKey), after_seq: afterSeq });
  }

  sendTyping(chatKey, typing) {
    return this.send({ chat_id: wireId(chatKey), action: typing ? 'typing' : 'stop_typing' });
  }

  sendRead(chatKey, messageId) {
    return this.send({ action: 'read', chat_id: wireId(chatKey), message_id: wireId(messageId) });
  }

  send(frame) {
    if (!this.transport?.isOpen) return false;
    if (!this.queue.length && this.takeToken()) return this.transport.send(frame);
    this.queue.push(frame);
    this.scheduleDrain();
    return true;
  }

  takeToken() {
    const now = Date.now();
    this.tokens = Math.min(FRAME_BURST, this.tokens + ((now - this.refilledAt) / 1000) * FRAMES_PER_SECOND);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  scheduleDrain() {
    if (this.drainTimer) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = 0;
      while (this.queue.length && this.takeToken()) {
        if (!this.transport?.send(this.queue.shift())) {
          this.queue = [];
          return;
        }
      }
      if (this.queue.length) this.scheduleDrain();
    }, 1000 / FRAMES_PER_SECOND);
  }

  dispatch(ev) {
    if (!ev || typeof ev !== 'object') return;
    const on = this.handlers;
    switch (ev.action) {
      case undefined:
      case null:
        if (ev.id != null && ev.chat_id != null) on.message?.(ev);
        break;
      case 'ready':
        this.ready = true;
        this.epoch += 1;
        on.ready?.(ev);
        break;
      case 'ack':
        if (ev.chat_id != null && ev.client_id != null && ev.id != null) on.ack?.(ev);
        break;
      case 'resync':
        if (ev.chat_id != null) on.resync?.(ev);
        break;
      case 'typing':
      case 'stop_typing':
        if (ev.chat_id != null) on.typing?.(ev);
        break;
      case 'user_status':
        on.userStatus?.(ev);
        break;
      case 'member_joined':
      case 'member_left':
        if (ev.chat_id != null) on.membership?.(ev);
        break;
      case 'chat_created':
        on.chatCreated?.(ev);
        break;
      case 'read':
        if (ev.chat_id != null && ev.message_id != null) on.read?.(ev);
        break;
      case 'message_edited':
      case 'message_deleted':
      case 'reaction':
        if (ev.chat_id != null && ev.id != null) on.messageChanged?.(ev);
        break;
      case 'error':
        on.error?.(ev);
        break;
      default:
        break; // unknown events are ignored so newer servers don't break older clients
    }
  }
}

/** The one connection of this page. */
export const socket = new SocketClient();
