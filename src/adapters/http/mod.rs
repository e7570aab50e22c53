//! HTTP and WebSocket adapter.
