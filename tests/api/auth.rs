//! Registration, login, tokens and the error shape.

use serde_json::json;

use crate::support::app::{Backend, TestApp};

#[tokio::test]
async fn smoke() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ann = app.user("ann").await;
    let (status, body) = ann.get("/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": ann.id, "username": "ann", "email": "ann@example.com"})
    );
    app.stop().await;
}
