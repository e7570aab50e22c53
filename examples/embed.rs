//! Parley inside another program: the host brings its own storage wrapper and event bus,
//! mounts Parley's routes under `/chat` next to its own, calls Parley's services directly,
//! and decides itself when to stop.
//!
//! ```text
//! cargo run --example embed      # then open http://127.0.0.1:8080/hello, POST to /chat/auth/...
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use parley::adapters::bus::LocalBus;
use parley::adapters::memory::MemoryStore;
use parley::domain::{Event, NewUser, User, UserId};
use parley::ports::{EventBus, EventStream, Result, UserRepo};
use parley::{App, Config, Storage};
use salvo::prelude::*;

/// A [`UserRepo`] that counts registrations and leaves the rest to the store it wraps.
struct CountingUsers {
    store: Arc<MemoryStore>,
    created: AtomicUsize,
}

#[parley::async_trait]
impl UserRepo for CountingUsers {
    async fn create(&self, user: &NewUser) -> Result<User> {
        let created = self.store.create(user).await?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(created)
    }

    async fn find(&self, id: UserId) -> Result<Option<User>> {
        self.store.find(id).await
    }

    async fn find_by_login(&self, login: &str) -> Result<Option<User>> {
        self.store.find_by_login(login).await
    }

    async fn list_except(&self, except: UserId) -> Result<Vec<User>> {
        self.store.list_except(except).await
    }

    async fn list_all(&self) -> Result<Vec<User>> {
        self.store.list_all().await
    }

    async fn touch_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        self.store.touch_last_seen(id, at).await
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<()> {
        self.store.set_password_hash(id, hash).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        self.store.set_disabled(id, disabled).await
    }
}

/// A bus that logs each event and carries it on. Whatever a bus does, `subscribe` must keep
/// delivering every event published: Parley's sockets hear of messages only through it.
#[derive(Default)]
struct LoggingBus(LocalBus);

#[parley::async_trait]
impl EventBus for LoggingBus {
    async fn publish(&self, event: Event) -> Result<()> {
        println!("event: {event:?}");
        self.0.publish(event).await
    }

    fn subscribe(&self) -> EventStream {
        self.0.subscribe()
    }
}

#[handler]
async fn hello(depot: &mut Depot, res: &mut Response) {
    let users = depot.get_typed::<Arc<CountingUsers>>().expect("injected");
    let count = users.created.load(Ordering::Relaxed);
    res.render(Text::Plain(format!("{count} people registered so far")));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(CountingUsers {
        store: store.clone(),
        created: AtomicUsize::new(0),
    });
    let config = Config {
        // Parley's own listener goes unused when the host serves its routes.
        bind: "127.0.0.1:0".parse()?,
        public_url: Some("http://127.0.0.1:8080".into()),
        ..Config::load()?
    };
    let app = App::builder(config)
        .storage(Storage::new(
            users.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
            store,
        ))
        .bus(Arc::new(LoggingBus::default()))
        .build()
        .await?;
    // The services answer the host directly, as they answer Parley's own routes.
    let _services = app.services();

    let router = Router::new()
        .hoop(salvo::affix_state::inject(users))
        .push(Router::with_path("hello").get(hello))
        .push(Router::with_path("chat").push(app.router()));
    let acceptor = TcpListener::new("127.0.0.1:8080").bind().await;
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.stop_graceful(None);
    });
    println!("serving on http://127.0.0.1:8080 (Parley under /chat); Ctrl-C stops");
    server.serve(router).await;
    app.close().await;
    Ok(())
}
