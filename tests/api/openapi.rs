//! The API description at `/openapi.json` says what the server does: the limits it enforces
//! and the statuses it answers. (scripts/schemathesis checks the whole of it against a live
//! server; these pin the parts a regression would most likely undo, without Python.)

use serde_json::Value;

use crate::support::app::{Backend, TestApp};

async fn description(app: &TestApp) -> Value {
    let res = app
        .client()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The schema of `name` in `op`'s parameters.
fn parameter<'a>(op: &'a Value, name: &str) -> &'a Value {
    op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .get("schema")
        .expect("schema")
}

/// The statuses `op` lists, sorted.
fn statuses(op: &Value) -> Vec<&str> {
    let mut codes: Vec<&str> = op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect();
    codes.sort_unstable();
    codes
}

/// A property of a component schema; components are named by their Rust path.
fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
    let (_, component) = doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .iter()
        .find(|(name, _)| name.rsplit('.').next() == Some(schema))
        .unwrap_or_else(|| panic!("no schema {schema}"));
    &component["properties"][field]
}

#[tokio::test]
async fn history_limit_is_described_as_the_server_enforces_it() {
    let app = TestApp::spawn(Backend::Memory).await;
    let doc = description(&app).await;
    let history = &doc["paths"]["/chats/{chat_id}/messages"]["get"];
    let limit = parameter(history, "limit");
    assert_eq!(limit["minimum"], 1, "{limit}");
    assert_eq!(limit["maximum"], 200, "{limit}");
    assert_eq!(parameter(history, "changed_after")["minimum"], 0);
    // An answer the server gives outside it is listed.
    assert!(
        statuses(history).contains(&"422"),
        "{:?}",
        statuses(history)
    );
}

#[tokio::test]
async fn body_rules_are_described() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.max_message_chars = 321).await;
    let doc = description(&app).await;
    let password = property(&doc, "RegisterBody", "password");
    assert_eq!(password["minLength"], 8, "{password}");
    assert_eq!(password["maxLength"], 128, "{password}");
    let username = property(&doc, "RegisterBody", "username");
    assert!(
        username["pattern"].as_str().unwrap().contains("{3,32}"),
        "{username}"
    );
    // Lengths after trimming are in the pattern: a first character, up to max - 2, a last.
    let name = property(&doc, "NewGroupBody", "name")["pattern"]
        .as_str()
        .unwrap();
    assert!(name.contains("{0,62}"), "{name}");
    // The configured message length, not the default.
    for body in ["PostMessageBody", "EditMessageBody"] {
        let message = property(&doc, body, "message")["pattern"].as_str().unwrap();
        assert!(message.contains("{0,319}"), "{body}: {message}");
    }
}

#[tokio::test]
async fn every_status_an_operation_answers_is_listed() {
    let app = TestApp::spawn(Backend::Memory).await;
    let doc = description(&app).await;
    let post = &doc["paths"]["/chats/{chat_id}/messages"]["post"];
    for status in [
        "200", "201", "400", "401", "403", "404", "409", "413", "422", "429", "500",
    ] {
        assert!(
            statuses(post).contains(&status),
            "{status}: {:?}",
            statuses(post)
        );
    }
    let malformed = &post["responses"]["400"]["description"];
    assert!(
        malformed.as_str().unwrap().contains("malformed_body"),
        "{malformed}"
    );
    let too_many = &post["responses"]["429"]["headers"]["Retry-After"];
    assert_eq!(too_many["required"], true, "{too_many}");
    // Every JSON body can be malformed.
    for (path, method) in [
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/password", "post"),
        ("/chats", "post"),
        ("/chats/{chat_id}/read", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(statuses(op).contains(&"400"), "{method} {path}");
        assert!(statuses(op).contains(&"413"), "{method} {path}");
    }
    // A login may come as a form too.
    let login = &doc["paths"]["/auth/login"]["post"]["requestBody"]["content"];
    assert!(
        login.get("application/x-www-form-urlencoded").is_some(),
        "{login}"
    );
    // Operations that need a token say so.
    assert_eq!(
        doc["paths"]["/auth/me"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn a_method_not_allowed_names_the_allowed_ones() {
    let app = TestApp::spawn(Backend::Memory).await;
    let res = app
        .client()
        .put(app.url("/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let allow = res
        .headers()
        .get("allow")
        .expect("an Allow header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("POST"), "{allow}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}
