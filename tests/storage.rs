//! The storage contract: what `UserRepo`, `ChatRepo`, `MessageRepo` and `SessionRepo` promise
//! (their `///` docs in `src/ports/mod.rs`), written once and run against every adapter:
//! memory, SQLite (a file in a temp dir) and PostgreSQL (a fresh database per test).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parley::domain::{
    ChangeSeq, Chat, ChatId, ChatKind, ChatName, Client, ClientId, Email, Emoji, Error,
    HistoryPage, Inserted, Member, Message, MessageBody, MessageId, NewGroup, NewMessage,
    NewSession, NewUser, Peer, Quote, RefreshState, Role, Seq, Session, SessionId, User, UserId,
    Username, Visibility,
};
use parley::ports::{ChatAccess, ChatRepo, MessageRepo, SessionRepo, StorageProbe, UserRepo};

/// Every storage port at once, as each adapter provides them.
trait Store: UserRepo + ChatRepo + MessageRepo + SessionRepo + StorageProbe {}
impl<T: UserRepo + ChatRepo + MessageRepo + SessionRepo + StorageProbe> Store for T {}

// ---------------------------------------------------------------------------------------------
// The adapters
// ---------------------------------------------------------------------------------------------

fn memory_store() -> parley::adapters::memory::MemoryStore {
    parley::adapters::memory::MemoryStore::new()
}

/// A SQLite store on a file in a fresh temp dir, which lives as long as the returned guard.
async fn sqlite_store() -> (parley::adapters::sqlite::SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = parley::adapters::sqlite::SqliteStore::connect(&url)
        .await
        .expect("open SQLite store");
    (store, dir)
}

async fn postgres_store() -> parley::adapters::postgres::PgStore {
    let url = support::postgres::fresh_database_url().await;
    parley::adapters::postgres::PgStore::connect(&url, 10)
        .await
        .expect("open PostgreSQL store")
}

/// Runs each listed `async fn case<S: Store>(store: S)` once per adapter, each on its own
/// fresh storage: `memory::case`, `sqlite::case`, `postgres::case`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::memory_store()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::postgres_store().await).await;
                }
            )*
        }
    };
}

contract!(
    // users
    create_returns_the_stored_user_with_an_id,
    usernames_are_unique_without_regard_to_case,
    emails_are_unique_without_regard_to_case,
    find_by_login_matches_username_or_email_in_any_case,
    unknown_users_are_not_found,
    list_except_excludes_the_caller_and_orders_by_username_without_case,
    touch_last_seen_is_stored_and_read_back,
    list_all_lists_everyone_by_username_without_case,
    set_password_hash_replaces_the_hash_of_that_user_only,
    set_disabled_disables_and_enables_that_user_only,
    set_password_hash_and_set_disabled_of_an_unknown_user_fail_with_user_not_found,
    a_live_store_answers_the_ping,
    // direct chats
    concurrent_get_or_create_direct_for_one_pair_yields_one_chat,
    another_pair_gets_another_direct_chat,
    get_or_create_direct_with_an_unknown_user_fails_with_user_not_found,
    get_or_create_direct_of_a_user_with_themself_is_refused,
    // groups and membership
    create_group_makes_the_owner_owner_then_the_members_in_the_given_order,
    create_group_refuses_a_member_twice_and_leaves_no_chat,
    create_group_with_an_unknown_member_fails_and_leaves_no_chat,
    access_tells_no_such_chat_outsider_and_member,
    members_are_listed_in_joining_order_with_roles_and_last_read,
    add_member_is_idempotent,
    add_member_of_an_unknown_user_or_to_an_unknown_chat_fails,
    remove_member_reports_whether_it_removed,
    set_role_changes_a_members_role,
    set_role_of_a_non_member_fails_with_not_a_member,
    // chat lists
    list_for_user_shows_only_the_users_chats_with_the_peer_of_direct_ones,
    list_for_user_counts_unread_messages_of_others_after_the_marker,
    list_for_user_puts_recent_messages_first_then_newest_empty_chats,
    list_public_lists_public_groups_by_name_with_counts_and_membership,
    // read markers
    mark_read_only_moves_forward,
    mark_read_by_a_non_member_fails_with_not_a_member,
    // messages
    insert_returns_increasing_ids,
    list_latest_returns_the_newest_oldest_first,
    paging_back_with_before_covers_the_history_without_gaps,
    after_returns_the_oldest_messages_after_an_id,
    before_and_after_together_bound_the_page_on_both_sides,
    other_chats_messages_never_appear,
    exists_in_is_true_only_for_the_messages_chat,
    // what is done with a message
    an_edit_keeps_the_id_and_seq_and_history_shows_the_new_text,
    editing_a_missing_message_fails_with_message_not_found,
    a_delete_overwrites_the_text_and_leaves_a_tombstone_in_place,
    a_deleted_message_can_be_neither_edited_nor_reacted_to,
    reactions_are_idempotent_and_counted_per_emoji,
    different_emoji_on_one_message_are_bounded,
    changes_are_numbered_per_chat_and_listed_after_a_number,
    a_reply_carries_a_quote_of_its_original,
    find_reads_a_message_of_any_chat,
    insert_into_a_missing_chat_fails_with_chat_not_found,
    insert_by_an_unknown_sender_fails_with_user_not_found,
    // the stream of a chat: seqs and client ids
    seqs_count_from_one_in_each_chat_on_its_own,
    concurrent_inserts_into_one_chat_take_every_seq_once,
    a_failed_insert_uses_no_seq,
    after_seq_returns_the_oldest_messages_after_a_position,
    before_seq_pages_back_and_bounds_combine,
    a_repeated_client_id_stores_once_and_uses_no_seq,
    concurrent_sends_of_one_client_id_store_one_message_without_a_gap,
    a_client_id_names_a_message_of_one_sender_in_one_chat,
    // the group commit
    insert_all_stores_each_in_order_and_answers_each_as_insert_would,
    insert_all_stores_a_client_id_repeated_within_the_batch_once,
    a_message_refused_in_a_batch_leaves_the_others_stored_without_a_gap,
    concurrent_batches_across_chats_take_every_seq_once,
    set_password_hash_keeps_the_rest_of_the_user,
    // sessions
    a_created_session_is_found_with_its_owner_and_client,
    a_session_of_a_user_who_does_not_exist_is_refused,
    touch_records_a_use_and_moves_the_expiry,
    touch_does_not_revive_an_ended_or_expired_session,
    rotate_replaces_the_digest_once_and_keeps_the_previous,
    concurrent_rotations_of_one_digest_have_one_winner,
    list_for_user_gives_their_live_sessions_most_recently_used_first,
    end_ends_only_a_session_of_that_user,
    end_all_except_ends_the_others_of_that_user_only,
    expired_sessions_are_forgotten_by_the_callers_time_on_the_next_create,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A fixed instant with microseconds, the precision every adapter keeps, plus `secs`.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_714_564_800_123_456).unwrap() + Duration::seconds(secs)
}

/// Now, truncated to microseconds.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn new_user(username: &str, email: &str) -> NewUser {
    NewUser {
        username: Username::parse(username).unwrap(),
        email: Email::parse(email).unwrap(),
        password_hash: format!("$argon2id$v=19$hash-of-{username}"),
        created_at: at(0),
    }
}

async fn user<S: Store>(s: &S, username: &str) -> User {
    UserRepo::create(s, &new_user(username, &format!("{username}@example.com")))
        .await
        .unwrap_or_else(|e| panic!("create {username}: {e:?}"))
}

async fn group<S: Store>(
    s: &S,
    name: &str,
    visibility: Visibility,
    owner: &User,
    members: &[&User],
) -> Chat {
    s.create_group(&NewGroup {
        name: ChatName::parse(name).unwrap(),
        visibility,
        owner: owner.id,
        members: members.iter().map(|u| u.id).collect(),
        created_at: at(10),
    })
    .await
    .unwrap_or_else(|e| panic!("create group {name}: {e:?}"))
}

async fn direct<S: Store>(s: &S, a: &User, b: &User) -> Chat {
    s.get_or_create_direct(a.id, b.id, at(10)).await.unwrap().0
}

fn new_message(chat: ChatId, sender: &User, body: &str, secs: i64) -> NewMessage {
    NewMessage {
        chat_id: chat,
        sender_id: sender.id,
        body: MessageBody::from_trusted(body.to_owned()),
        created_at: at(secs),
        client_id: None,
        reply_to: None,
    }
}

/// `new_message` sent under `client_id`.
fn resendable(chat: ChatId, sender: &User, body: &str, client_id: &str) -> NewMessage {
    NewMessage {
        client_id: Some(ClientId::parse(client_id).unwrap()),
        ..new_message(chat, sender, body, 100)
    }
}

/// The id and seq of a message just stored, panicking when it was not.
fn stored(inserted: Inserted) -> (MessageId, Seq) {
    match inserted {
        Inserted::New { id, seq } => (id, seq),
        Inserted::Existing(m) => panic!("expected a new message, found {m:?}"),
    }
}

/// The message an insert found already stored, panicking when it stored one.
fn existing(inserted: Inserted) -> Message {
    match inserted {
        Inserted::Existing(m) => m,
        Inserted::New { id, seq } => panic!("expected an existing message, stored {id} at {seq}"),
    }
}

async fn insert<S: Store>(s: &S, message: &NewMessage) -> (MessageId, Seq) {
    stored(
        s.insert(message)
            .await
            .unwrap_or_else(|e| panic!("insert into {}: {e:?}", message.chat_id)),
    )
}

async fn post<S: Store>(s: &S, chat: ChatId, sender: &User, body: &str) -> MessageId {
    insert(s, &new_message(chat, sender, body, 100)).await.0
}

/// Posts `n` messages "0", "1", ... and returns their ids.
async fn post_many<S: Store>(s: &S, chat: ChatId, sender: &User, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(post(s, chat, sender, &i.to_string()).await);
    }
    ids
}

async fn page<S: Store>(
    s: &S,
    chat: ChatId,
    before: Option<MessageId>,
    after: Option<MessageId>,
    limit: u32,
) -> Vec<MessageId> {
    s.list(
        chat,
        HistoryPage {
            before,
            after,
            ..HistoryPage::latest(limit)
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|m| m.id)
    .collect()
}

/// The seqs of a page bounded by seq.
async fn seq_page<S: Store>(
    s: &S,
    chat: ChatId,
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> Vec<i64> {
    seqs(
        &s.list(
            chat,
            HistoryPage {
                before_seq: before_seq.map(Seq),
                after_seq: after_seq.map(Seq),
                ..HistoryPage::latest(limit)
            },
        )
        .await
        .unwrap(),
    )
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq.0).collect()
}

fn member_ids(members: &[Member]) -> Vec<UserId> {
    members.iter().map(|m| m.user_id).collect()
}

fn names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

fn session(id: &str) -> SessionId {
    SessionId(id.to_owned())
}

fn client(address: &str, user_agent: Option<&str>) -> Client {
    Client {
        address: address.parse().unwrap(),
        user_agent: user_agent.map(str::to_owned),
    }
}

/// Stores session `id` of `user`, created at `created` (seconds from [`at`]) and expiring an
/// hour later, with refresh digest `digest-of-{id}`.
async fn new_session<S: Store>(s: &S, id: &str, user: UserId, created: i64) -> SessionId {
    let id = session(id);
    s.create_session(&NewSession {
        id: id.clone(),
        user_id: user,
        created_at: at(created),
        expires_at: at(created + 3600),
        client: client("192.0.2.1", Some("Firefox")),
        refresh_digest: format!("digest-of-{}", id.0),
    })
    .await
    .unwrap_or_else(|e| panic!("create session {id:?}: {e:?}"));
    id
}

async fn found<S: Store>(s: &S, id: &SessionId) -> Session {
    s.find_session(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("session {id:?} is there"))
}

fn ids(sessions: &[Session]) -> Vec<&str> {
    sessions.iter().map(|s| s.id.0.as_str()).collect()
}

const NO_CHAT: ChatId = ChatId(987_654_321);

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

async fn set_password_hash_replaces_the_hash_of_that_user_only<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;

    s.set_password_hash(ann.id, "$argon2id$new").await.unwrap();
    let missing = s.set_password_hash(UserId(424_242), "$argon2id$x").await;

    let find = |id| UserRepo::find(&s, id);
    assert_eq!(
        find(ann.id).await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert_eq!(
        find(bob.id).await.unwrap().unwrap().password_hash,
        bob.password_hash
    );
    assert!(matches!(missing, Err(Error::UserNotFound)), "{missing:?}");
}

async fn create_returns_the_stored_user_with_an_id<S: Store>(s: S) {
    let new = new_user("Ann", "Ann@Example.com");

    let ann = UserRepo::create(&s, &new).await.unwrap();
    let bob = user(&s, "bob").await;

    assert_eq!(ann.username.as_str(), "Ann");
    assert_eq!(ann.email.as_str(), "Ann@Example.com");
    assert_eq!(ann.password_hash, new.password_hash);
    assert_eq!(ann.created_at, new.created_at);
    assert_eq!(ann.last_seen, None);
    assert_ne!(ann.id, bob.id);
    assert_eq!(s.find(ann.id).await.unwrap(), Some(ann.clone()));
    assert_eq!(s.find(bob.id).await.unwrap(), Some(bob));
}

async fn usernames_are_unique_without_regard_to_case<S: Store>(s: S) {
    let ann = user(&s, "Ann").await;

    let err = UserRepo::create(&s, &new_user("ann", "other@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::UsernameTaken), "got {err:?}");
    assert_eq!(s.find_by_login("other@example.com").await.unwrap(), None);
    assert_eq!(s.list_except(ann.id).await.unwrap(), vec![]);
}

async fn emails_are_unique_without_regard_to_case<S: Store>(s: S) {
    let ann = UserRepo::create(&s, &new_user("ann", "ann@example.com"))
        .await
        .unwrap();

    let err = UserRepo::create(&s, &new_user("annie", "ANN@Example.COM"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::EmailTaken), "got {err:?}");
    assert_eq!(s.find_by_login("annie").await.unwrap(), None);
    assert_eq!(s.list_except(ann.id).await.unwrap(), vec![]);
}

async fn find_by_login_matches_username_or_email_in_any_case<S: Store>(s: S) {
    let ann = UserRepo::create(&s, &new_user("Ann", "ann.smith@example.com"))
        .await
        .unwrap();
    let bob = user(&s, "bob").await;

    for login in [
        "Ann",
        "ann",
        "ANN",
        "ann.smith@example.com",
        "Ann.Smith@EXAMPLE.com",
    ] {
        let found = s.find_by_login(login).await.unwrap();
        assert_eq!(found.as_ref(), Some(&ann), "login {login:?}");
    }
    assert_eq!(s.find_by_login("BOB").await.unwrap(), Some(bob));
}

async fn unknown_users_are_not_found<S: Store>(s: S) {
    let ann = user(&s, "ann").await;

    assert_eq!(s.find(UserId(ann.id.0 + 1000)).await.unwrap(), None);
    assert_eq!(s.find_by_login("nobody").await.unwrap(), None);
    assert_eq!(s.find_by_login("nobody@example.com").await.unwrap(), None);
    assert_eq!(s.find_by_login("an").await.unwrap(), None);
}

async fn list_except_excludes_the_caller_and_orders_by_username_without_case<S: Store>(s: S) {
    for name in ["bob", "Carol", "alice", "Dave", "erin"] {
        user(&s, name).await;
    }
    let carol = s.find_by_login("carol").await.unwrap().unwrap();

    let others = s.list_except(carol.id).await.unwrap();

    assert_eq!(names(&others), ["alice", "bob", "Dave", "erin"]);
    let everyone = s.list_except(UserId(-1)).await.unwrap();
    assert_eq!(names(&everyone), ["alice", "bob", "Carol", "Dave", "erin"]);
}

async fn touch_last_seen_is_stored_and_read_back<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let seen = at(3600);

    s.touch_last_seen(ann.id, seen).await.unwrap();

    let found = s.find(ann.id).await.unwrap().unwrap();
    assert_eq!(found.last_seen, Some(seen));
    assert_eq!(s.find(bob.id).await.unwrap().unwrap().last_seen, None);
    let by_login = s.find_by_login("ann").await.unwrap().unwrap();
    assert_eq!(by_login.last_seen, Some(seen));

    let later = seen + Duration::microseconds(1_234_567);
    s.touch_last_seen(ann.id, later).await.unwrap();
    assert_eq!(
        s.list_except(bob.id).await.unwrap()[0].last_seen,
        Some(later)
    );
}

async fn list_all_lists_everyone_by_username_without_case<S: Store>(s: S) {
    assert_eq!(s.list_all().await.unwrap(), vec![]);
    for name in ["bob", "Carol", "alice"] {
        user(&s, name).await;
    }

    let everyone = s.list_all().await.unwrap();

    assert_eq!(names(&everyone), ["alice", "bob", "Carol"]);
    let carol = s.find_by_login("carol").await.unwrap();
    assert_eq!(everyone.get(2), carol.as_ref());
}

async fn set_password_hash_keeps_the_rest_of_the_user<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;

    s.set_password_hash(ann.id, "$argon2id$v=19$new")
        .await
        .unwrap();

    let found = s.find(ann.id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$argon2id$v=19$new");
    assert_eq!(found.username, ann.username);
    assert_eq!(s.find(bob.id).await.unwrap(), Some(bob));
}

async fn set_disabled_disables_and_enables_that_user_only<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    assert!(!ann.disabled, "a new user is enabled");

    s.set_disabled(ann.id, true).await.unwrap();
    s.set_disabled(ann.id, true).await.unwrap();

    assert!(s.find(ann.id).await.unwrap().unwrap().disabled);
    assert!(s.find_by_login("ann").await.unwrap().unwrap().disabled);
    assert!(s.list_except(bob.id).await.unwrap()[0].disabled);
    assert!(!s.find(bob.id).await.unwrap().unwrap().disabled);

    s.set_disabled(ann.id, false).await.unwrap();
    assert_eq!(s.find(ann.id).await.unwrap(), Some(ann));
}

async fn set_password_hash_and_set_disabled_of_an_unknown_user_fail_with_user_not_found<
    S: Store,
>(
    s: S,
) {
    let ann = user(&s, "ann").await;
    let nobody = UserId(ann.id.0 + 1000);

    let hash = s.set_password_hash(nobody, "$argon2id$x").await;
    let disabled = s.set_disabled(nobody, true).await;

    assert!(matches!(hash, Err(Error::UserNotFound)), "{hash:?}");
    assert!(matches!(disabled, Err(Error::UserNotFound)), "{disabled:?}");
    assert_eq!(s.find(ann.id).await.unwrap(), Some(ann));
}

async fn a_live_store_answers_the_ping<S: Store>(s: S) {
    s.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Direct chats
// ---------------------------------------------------------------------------------------------

async fn concurrent_get_or_create_direct_for_one_pair_yields_one_chat<S: Store>(s: S) {
    let s = Arc::new(s);
    let a = user(&*s, "ann").await;
    let b = user(&*s, "bob").await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            let (x, y) = if i % 2 == 0 {
                (a.id, b.id)
            } else {
                (b.id, a.id)
            };
            tokio::spawn(async move { s.get_or_create_direct(x, y, at(10)).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }

    let ids: HashSet<ChatId> = results.iter().map(|(c, _)| c.id).collect();
    assert_eq!(ids.len(), 1, "chats: {ids:?}");
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    let chat = &results[0].0;
    assert!(results.iter().all(|(c, _)| c == chat));
    assert_eq!(chat.kind, ChatKind::Direct);
    assert_eq!(chat.name, None);
    assert_eq!(chat.visibility, Visibility::Private);
    assert_eq!(chat.created_at, at(10));
    let members = s.members(chat.id).await.unwrap();
    let got: HashSet<UserId> = member_ids(&members).into_iter().collect();
    assert_eq!(got, HashSet::from([a.id, b.id]));
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m.role == Role::Member));
}

async fn another_pair_gets_another_direct_chat<S: Store>(s: S) {
    let a = user(&s, "ann").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "cid").await;
    let (ab, _) = s.get_or_create_direct(a.id, b.id, at(10)).await.unwrap();

    let (ac, created) = s.get_or_create_direct(c.id, a.id, at(20)).await.unwrap();
    let (again, created_again) = s.get_or_create_direct(a.id, c.id, at(30)).await.unwrap();

    assert!(created);
    assert_ne!(ac.id, ab.id);
    assert_eq!(again, ac);
    assert!(!created_again);
    let got: HashSet<UserId> = member_ids(&s.members(ac.id).await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(got, HashSet::from([a.id, c.id]));
}

async fn get_or_create_direct_with_an_unknown_user_fails_with_user_not_found<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let ghost = UserId(ann.id.0 + 1000);

    let err = s
        .get_or_create_direct(ann.id, ghost, at(10))
        .await
        .unwrap_err();
    let reversed = s
        .get_or_create_direct(ghost, ann.id, at(10))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::UserNotFound), "got {err:?}");
    assert!(matches!(reversed, Error::UserNotFound), "got {reversed:?}");
    assert_eq!(s.chat_ids_of(ann.id).await.unwrap(), vec![]);
}

/// The two users differ: the caller refuses a chat with oneself, and storage does not store
/// one either.
async fn get_or_create_direct_of_a_user_with_themself_is_refused<S: Store>(s: S) {
    let ann = user(&s, "ann").await;

    let err = s
        .get_or_create_direct(ann.id, ann.id, at(10))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Unexpected(_)), "got {err:?}");
    assert_eq!(s.chat_ids_of(ann.id).await.unwrap(), vec![]);
    assert_eq!(s.list_for_user(ann.id).await.unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Groups and membership
// ---------------------------------------------------------------------------------------------

/// The members are distinct and the owner is not among them (the caller's to ensure): storage
/// stores them as given, the owner first.
async fn create_group_makes_the_owner_owner_then_the_members_in_the_given_order<S: Store>(s: S) {
    let m2 = user(&s, "max").await;
    let m1 = user(&s, "mia").await;
    let owner = user(&s, "olga").await;

    let chat = s
        .create_group(&NewGroup {
            name: ChatName::parse("Book club").unwrap(),
            visibility: Visibility::Public,
            owner: owner.id,
            members: vec![m1.id, m2.id],
            created_at: at(5),
        })
        .await
        .unwrap();

    assert_eq!(chat.kind, ChatKind::Group);
    assert_eq!(chat.name.as_ref().map(ChatName::as_str), Some("Book club"));
    assert_eq!(chat.visibility, Visibility::Public);
    assert_eq!(chat.created_at, at(5));
    let members = s.members(chat.id).await.unwrap();
    let roles: Vec<(UserId, Role)> = members.iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(
        roles,
        [
            (owner.id, Role::Owner),
            (m1.id, Role::Member),
            (m2.id, Role::Member)
        ]
    );
    assert_eq!(
        s.access(chat.id, owner.id).await.unwrap(),
        ChatAccess::Member(chat.clone(), Role::Owner)
    );
    assert_eq!(
        s.access(chat.id, m2.id).await.unwrap(),
        ChatAccess::Member(chat, Role::Member)
    );
}

/// Storage does not repair a caller that breaks the guarantee (a member twice, or the owner
/// among the members): it refuses, as the key on (chat, user) does, and stores nothing.
async fn create_group_refuses_a_member_twice_and_leaves_no_chat<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let m1 = user(&s, "mia").await;
    let new_group = |members: Vec<UserId>| NewGroup {
        name: ChatName::parse("Twice").unwrap(),
        visibility: Visibility::Public,
        owner: owner.id,
        members,
        created_at: at(5),
    };

    let repeated = s
        .create_group(&new_group(vec![m1.id, m1.id]))
        .await
        .unwrap_err();
    let owner_again = s
        .create_group(&new_group(vec![m1.id, owner.id]))
        .await
        .unwrap_err();

    assert!(matches!(repeated, Error::Unexpected(_)), "got {repeated:?}");
    assert!(
        matches!(owner_again, Error::Unexpected(_)),
        "got {owner_again:?}"
    );
    assert_eq!(s.list_for_user(owner.id).await.unwrap(), vec![]);
    assert_eq!(s.list_for_user(m1.id).await.unwrap(), vec![]);
    assert_eq!(s.list_public(owner.id).await.unwrap(), vec![]);
}

async fn create_group_with_an_unknown_member_fails_and_leaves_no_chat<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let m1 = user(&s, "mia").await;

    let err = s
        .create_group(&NewGroup {
            name: ChatName::parse("Ghosts").unwrap(),
            visibility: Visibility::Public,
            owner: owner.id,
            members: vec![m1.id, UserId(m1.id.0 + 1000)],
            created_at: at(5),
        })
        .await
        .unwrap_err();

    assert!(matches!(err, Error::UserNotFound), "got {err:?}");
    assert_eq!(s.list_for_user(owner.id).await.unwrap(), vec![]);
    assert_eq!(s.list_for_user(m1.id).await.unwrap(), vec![]);
    assert_eq!(s.chat_ids_of(owner.id).await.unwrap(), vec![]);
    assert_eq!(s.list_public(owner.id).await.unwrap(), vec![]);
}

async fn access_tells_no_such_chat_outsider_and_member<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let member = user(&s, "mia").await;
    let outsider = user(&s, "otto").await;
    let chat = group(&s, "Club", Visibility::Private, &owner, &[&member]).await;

    assert_eq!(
        s.access(NO_CHAT, owner.id).await.unwrap(),
        ChatAccess::NoSuchChat
    );
    assert_eq!(
        s.access(chat.id, outsider.id).await.unwrap(),
        ChatAccess::Outsider(chat.clone())
    );
    assert_eq!(
        s.access(chat.id, member.id).await.unwrap(),
        ChatAccess::Member(chat.clone(), Role::Member)
    );
    assert_eq!(
        s.access(chat.id, owner.id).await.unwrap(),
        ChatAccess::Member(chat, Role::Owner)
    );
}

async fn members_are_listed_in_joining_order_with_roles_and_last_read<S: Store>(s: S) {
    // Created in reverse, so that ids run against the joining order.
    let m3 = user(&s, "moe").await;
    let m2 = user(&s, "max").await;
    let m1 = user(&s, "mia").await;
    let owner = user(&s, "olga").await;
    let chat = group(&s, "Club", Visibility::Private, &owner, &[&m1]).await;
    assert!(
        s.add_member(chat.id, m2.id, Role::Member, at(20))
            .await
            .unwrap()
    );
    // Same instant as m2: joining order is the order of the calls.
    assert!(
        s.add_member(chat.id, m3.id, Role::Member, at(20))
            .await
            .unwrap()
    );
    let msg = post(&s, chat.id, &owner, "hi").await;
    s.mark_read(chat.id, m1.id, msg).await.unwrap();
    let seen = now();
    s.touch_last_seen(m2.id, seen).await.unwrap();

    let members = s.members(chat.id).await.unwrap();

    assert_eq!(
        members,
        vec![
            Member {
                user_id: owner.id,
                username: owner.username.clone(),
                last_seen: None,
                role: Role::Owner,
                last_read: None,
            },
            Member {
                user_id: m1.id,
                username: m1.username.clone(),
                last_seen: None,
                role: Role::Member,
                last_read: Some(msg),
            },
            Member {
                user_id: m2.id,
                username: m2.username.clone(),
                last_seen: Some(seen),
                role: Role::Member,
                last_read: None,
            },
            Member {
                user_id: m3.id,
                username: m3.username.clone(),
                last_seen: None,
                role: Role::Member,
                last_read: None,
            },
        ]
    );
    assert_eq!(s.members(NO_CHAT).await.unwrap(), vec![]);
}

async fn add_member_is_idempotent<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let newcomer = user(&s, "nina").await;
    let chat = group(&s, "Club", Visibility::Public, &owner, &[]).await;

    let first = s
        .add_member(chat.id, newcomer.id, Role::Member, at(20))
        .await
        .unwrap();
    let second = s
        .add_member(chat.id, newcomer.id, Role::Owner, at(30))
        .await
        .unwrap();

    assert!(first);
    assert!(!second);
    assert_eq!(
        member_ids(&s.members(chat.id).await.unwrap()),
        [owner.id, newcomer.id]
    );
    assert_eq!(
        s.access(chat.id, newcomer.id).await.unwrap(),
        ChatAccess::Member(chat, Role::Member)
    );
}

async fn add_member_of_an_unknown_user_or_to_an_unknown_chat_fails<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let nina = user(&s, "nina").await;
    let chat = group(&s, "Club", Visibility::Public, &owner, &[]).await;

    let no_user = s
        .add_member(chat.id, UserId(nina.id.0 + 1000), Role::Member, at(20))
        .await
        .unwrap_err();
    let no_chat = s
        .add_member(NO_CHAT, nina.id, Role::Member, at(20))
        .await
        .unwrap_err();
    let neither = s
        .add_member(NO_CHAT, UserId(nina.id.0 + 1000), Role::Member, at(20))
        .await
        .unwrap_err();

    assert!(matches!(no_user, Error::UserNotFound), "got {no_user:?}");
    assert!(matches!(no_chat, Error::ChatNotFound), "got {no_chat:?}");
    assert!(matches!(neither, Error::ChatNotFound), "got {neither:?}");
    assert_eq!(member_ids(&s.members(chat.id).await.unwrap()), [owner.id]);
    assert_eq!(s.chat_ids_of(nina.id).await.unwrap(), vec![]);
}

async fn remove_member_reports_whether_it_removed<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let mia = user(&s, "mia").await;
    let chat = group(&s, "Club", Visibility::Private, &owner, &[&mia]).await;

    let first = s.remove_member(chat.id, mia.id).await.unwrap();
    let second = s.remove_member(chat.id, mia.id).await.unwrap();

    assert!(first);
    assert!(!second);
    assert_eq!(
        s.access(chat.id, mia.id).await.unwrap(),
        ChatAccess::Outsider(chat.clone())
    );
    assert_eq!(member_ids(&s.members(chat.id).await.unwrap()), [owner.id]);
    assert!(!s.remove_member(NO_CHAT, mia.id).await.unwrap());
}

async fn set_role_changes_a_members_role<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let mia = user(&s, "mia").await;
    let chat = group(&s, "Club", Visibility::Private, &owner, &[&mia]).await;

    s.set_role(chat.id, mia.id, Role::Owner).await.unwrap();
    s.set_role(chat.id, owner.id, Role::Member).await.unwrap();

    assert_eq!(
        s.access(chat.id, mia.id).await.unwrap(),
        ChatAccess::Member(chat.clone(), Role::Owner)
    );
    let roles: Vec<(UserId, Role)> = s
        .members(chat.id)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert_eq!(roles, [(owner.id, Role::Member), (mia.id, Role::Owner)]);
}

async fn set_role_of_a_non_member_fails_with_not_a_member<S: Store>(s: S) {
    let owner = user(&s, "olga").await;
    let otto = user(&s, "otto").await;
    let chat = group(&s, "Club", Visibility::Private, &owner, &[]).await;

    let err = s.set_role(chat.id, otto.id, Role::Owner).await.unwrap_err();
    let no_chat = s
        .set_role(NO_CHAT, owner.id, Role::Member)
        .await
        .unwrap_err();

    assert!(matches!(err, Error::NotAMember), "got {err:?}");
    assert!(matches!(no_chat, Error::NotAMember), "got {no_chat:?}");
    assert_eq!(
        s.access(chat.id, otto.id).await.unwrap(),
        ChatAccess::Outsider(chat)
    );
}

// ---------------------------------------------------------------------------------------------
// Chat lists
// ---------------------------------------------------------------------------------------------

async fn list_for_user_shows_only_the_users_chats_with_the_peer_of_direct_ones<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let cid = user(&s, "cid").await;
    let seen = now();
    s.touch_last_seen(bob.id, seen).await.unwrap();
    let with_bob = direct(&s, &bob, &ann).await;
    let club = group(&s, "Club", Visibility::Private, &cid, &[&ann]).await;
    let _bob_cid = direct(&s, &bob, &cid).await;
    let _cids = group(&s, "Cid only", Visibility::Public, &cid, &[&bob]).await;

    let list = s.list_for_user(ann.id).await.unwrap();

    let chats: Vec<ChatId> = list.iter().map(|c| c.chat.id).collect();
    assert_eq!(chats, [club.id, with_bob.id]);
    assert_eq!(list[0].chat, club);
    assert_eq!(list[0].peer, None);
    assert_eq!(list[1].chat, with_bob);
    assert_eq!(
        list[1].peer,
        Some(Peer {
            id: bob.id,
            username: bob.username.clone(),
            last_seen: Some(seen),
        })
    );
    let bobs_view = s.list_for_user(bob.id).await.unwrap();
    let peer_of_bob = bobs_view.iter().find(|c| c.chat.id == with_bob.id).unwrap();
    assert_eq!(peer_of_bob.peer.as_ref().map(|p| p.id), Some(ann.id));
    let mut ids = s.chat_ids_of(ann.id).await.unwrap();
    ids.sort();
    assert_eq!(ids, [with_bob.id, club.id]);
}

async fn list_for_user_counts_unread_messages_of_others_after_the_marker<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let cid = user(&s, "cid").await;
    let club = group(&s, "Club", Visibility::Private, &ann, &[&bob, &cid]).await;
    let elsewhere = group(&s, "Elsewhere", Visibility::Private, &bob, &[&ann]).await;
    let b1 = post(&s, club.id, &bob, "b1").await;
    post(&s, club.id, &ann, "a1").await;
    let c1 = post(&s, club.id, &cid, "c1").await;
    post(&s, elsewhere.id, &bob, "not in club").await;
    post(&s, club.id, &bob, "b2").await;
    let (last, _) = insert(&s, &new_message(club.id, &ann, "a2", 200)).await;

    let unread = |list: Vec<parley::domain::ChatSummary>| {
        list.into_iter()
            .find(|c| c.chat.id == club.id)
            .map(|c| (c.unread, c.last_message))
            .unwrap()
    };
    let (before_marker, last_message) = unread(s.list_for_user(ann.id).await.unwrap());
    s.mark_read(club.id, ann.id, b1).await.unwrap();
    let (after_b1, _) = unread(s.list_for_user(ann.id).await.unwrap());
    s.mark_read(club.id, ann.id, c1).await.unwrap();
    let (after_c1, _) = unread(s.list_for_user(ann.id).await.unwrap());
    s.mark_read(club.id, ann.id, last).await.unwrap();
    let (after_all, _) = unread(s.list_for_user(ann.id).await.unwrap());

    assert_eq!(before_marker, 3, "b1, c1, b2 are others' and unread");
    assert_eq!(after_b1, 2);
    assert_eq!(after_c1, 1);
    assert_eq!(after_all, 0);
    let last_message = last_message.expect("a last message");
    assert_eq!(last_message.id, last);
    assert_eq!(last_message.chat_id, club.id);
    assert_eq!(last_message.sender_id, ann.id);
    assert_eq!(last_message.sender_username, ann.username);
    assert_eq!(last_message.body.as_str(), "a2");
    assert_eq!(last_message.created_at, at(200));
    let (bobs_unread, _) = unread(s.list_for_user(bob.id).await.unwrap());
    assert_eq!(bobs_unread, 3, "a1, c1, a2 for bob");
}

async fn list_for_user_puts_recent_messages_first_then_newest_empty_chats<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let c1 = group(&s, "First", Visibility::Private, &ann, &[]).await;
    let c2 = direct(&s, &ann, &bob).await;
    let c3 = group(&s, "Third", Visibility::Private, &bob, &[&ann]).await;
    let c4 = group(&s, "Fourth", Visibility::Private, &ann, &[&bob]).await;
    let c5 = group(&s, "Fifth", Visibility::Public, &ann, &[]).await;
    post(&s, c3.id, &bob, "old").await;
    post(&s, c1.id, &ann, "older").await;
    post(&s, c3.id, &bob, "newest").await;
    post(&s, c2.id, &bob, "middle").await;
    post(&s, c3.id, &ann, "newest of all").await;

    let list = s.list_for_user(ann.id).await.unwrap();

    let order: Vec<ChatId> = list.iter().map(|c| c.chat.id).collect();
    assert_eq!(order, [c3.id, c2.id, c1.id, c5.id, c4.id]);
    let last: Vec<Option<&str>> = list
        .iter()
        .map(|c| c.last_message.as_ref().map(|m| m.body.as_str()))
        .collect();
    assert_eq!(
        last,
        [
            Some("newest of all"),
            Some("middle"),
            Some("older"),
            None,
            None
        ]
    );
}

async fn list_public_lists_public_groups_by_name_with_counts_and_membership<S: Store>(s: S) {
    let viewer = user(&s, "vic").await;
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let beta = group(&s, "beta", Visibility::Public, &viewer, &[&ann]).await;
    let alpha = group(&s, "Alpha", Visibility::Public, &ann, &[&bob]).await;
    s.add_member(alpha.id, viewer.id, Role::Member, at(20))
        .await
        .unwrap();
    s.remove_member(alpha.id, viewer.id).await.unwrap();
    let gamma = group(&s, "Gamma", Visibility::Public, &bob, &[]).await;
    group(&s, "Aardvark", Visibility::Private, &viewer, &[&ann, &bob]).await;
    direct(&s, &viewer, &ann).await;

    let rooms = s.list_public(viewer.id).await.unwrap();

    let got: Vec<(ChatId, &str, i64, bool)> = rooms
        .iter()
        .map(|r| (r.chat_id, r.name.as_str(), r.members_count, r.is_member))
        .collect();
    assert_eq!(
        got,
        [
            (alpha.id, "Alpha", 2, false),
            (beta.id, "beta", 2, true),
            (gamma.id, "Gamma", 1, false),
        ]
    );
    let for_bob: Vec<bool> = s
        .list_public(bob.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.is_member)
        .collect();
    assert_eq!(for_bob, [true, false, true]);
}

// ---------------------------------------------------------------------------------------------
// Read markers
// ---------------------------------------------------------------------------------------------

async fn mark_read_only_moves_forward<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let chat = direct(&s, &ann, &bob).await;
    let ids = post_many(&s, chat.id, &bob, 3).await;
    let last_read = |members: Vec<Member>| {
        members
            .into_iter()
            .find(|m| m.user_id == ann.id)
            .unwrap()
            .last_read
    };

    let to_second = s.mark_read(chat.id, ann.id, ids[1]).await.unwrap();
    let back_to_first = s.mark_read(chat.id, ann.id, ids[0]).await.unwrap();
    let same_again = s.mark_read(chat.id, ann.id, ids[1]).await.unwrap();
    let marker = last_read(s.members(chat.id).await.unwrap());
    let to_third = s.mark_read(chat.id, ann.id, ids[2]).await.unwrap();

    assert!(to_second);
    assert!(!back_to_first);
    assert!(!same_again);
    assert_eq!(marker, Some(ids[1]));
    assert!(to_third);
    assert_eq!(last_read(s.members(chat.id).await.unwrap()), Some(ids[2]));
}

async fn mark_read_by_a_non_member_fails_with_not_a_member<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let otto = user(&s, "otto").await;
    let chat = direct(&s, &ann, &bob).await;
    let id = post(&s, chat.id, &bob, "hi").await;

    let outsider = s.mark_read(chat.id, otto.id, id).await.unwrap_err();
    let no_chat = s.mark_read(NO_CHAT, ann.id, id).await.unwrap_err();

    assert!(matches!(outsider, Error::NotAMember), "got {outsider:?}");
    assert!(matches!(no_chat, Error::NotAMember), "got {no_chat:?}");
    assert!(s.mark_read(chat.id, ann.id, id).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

async fn insert_returns_increasing_ids<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let one = direct(&s, &ann, &bob).await;
    let two = group(&s, "Club", Visibility::Private, &ann, &[]).await;

    let mut ids = Vec::new();
    for i in 0..6 {
        let chat = if i % 2 == 0 { one.id } else { two.id };
        ids.push(post(&s, chat, &ann, &format!("m{i}")).await);
    }

    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
}

async fn list_latest_returns_the_newest_oldest_first<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let chat = direct(&s, &ann, &bob).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let sender = if i % 2 == 0 { &ann } else { &bob };
        let (id, _) = insert(&s, &new_message(chat.id, sender, &format!("m{i}"), i)).await;
        ids.push(id);
    }

    let latest = s.list(chat.id, HistoryPage::latest(3)).await.unwrap();
    let all = s.list(chat.id, HistoryPage::latest(50)).await.unwrap();

    let got: Vec<(MessageId, &str, UserId, &str, DateTime<Utc>)> = latest
        .iter()
        .map(|m| {
            (
                m.id,
                m.body.as_str(),
                m.sender_id,
                m.sender_username.as_str(),
                m.created_at,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ids[7], "m7", bob.id, "bob", at(7)),
            (ids[8], "m8", ann.id, "ann", at(8)),
            (ids[9], "m9", bob.id, "bob", at(9)),
        ]
    );
    assert!(latest.iter().all(|m| m.chat_id == chat.id));
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
}

async fn paging_back_with_before_covers_the_history_without_gaps<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let chat = direct(&s, &ann, &bob).await;
    let other = group(&s, "Other", Visibility::Private, &ann, &[]).await;
    let mut ids = Vec::new();
    for i in 0..120 {
        ids.push(post(&s, chat.id, &ann, &i.to_string()).await);
        if i % 7 == 0 {
            post(&s, other.id, &ann, "noise").await;
        }
    }

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = page(&s, chat.id, before, None, 50).await;
        if page.is_empty() {
            break;
        }
        before = Some(page[0]);
        pages.push(page);
        assert!(pages.len() <= 3, "more pages than expected");
    }

    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 20]);
    let stitched: Vec<MessageId> = pages.into_iter().rev().flatten().collect();
    assert_eq!(stitched, ids);
}

async fn after_returns_the_oldest_messages_after_an_id<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let ids = post_many(&s, chat.id, &ann, 20).await;

    let next = page(&s, chat.id, None, Some(ids[9]), 5).await;
    let rest = page(&s, chat.id, None, Some(ids[17]), 5).await;
    let none = page(&s, chat.id, None, Some(ids[19]), 5).await;

    assert_eq!(next, ids[10..15]);
    assert_eq!(rest, ids[18..20]);
    assert_eq!(none, vec![]);
}

async fn before_and_after_together_bound_the_page_on_both_sides<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let ids = post_many(&s, chat.id, &ann, 15).await;

    let newest_three = page(&s, chat.id, Some(ids[10]), Some(ids[2]), 3).await;
    let everything_between = page(&s, chat.id, Some(ids[10]), Some(ids[2]), 100).await;
    let nothing_between = page(&s, chat.id, Some(ids[5]), Some(ids[4]), 100).await;

    assert_eq!(newest_three, ids[7..10]);
    assert_eq!(everything_between, ids[3..10]);
    assert_eq!(nothing_between, vec![]);
}

async fn other_chats_messages_never_appear<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let mine = direct(&s, &ann, &bob).await;
    let theirs = group(&s, "Theirs", Visibility::Public, &bob, &[]).await;
    let mut my_ids = Vec::new();
    let mut their_ids = Vec::new();
    for i in 0..6 {
        their_ids.push(post(&s, theirs.id, &bob, &format!("t{i}")).await);
        my_ids.push(post(&s, mine.id, &ann, &format!("m{i}")).await);
    }

    let latest = s.list(mine.id, HistoryPage::latest(100)).await.unwrap();
    let before = page(&s, mine.id, Some(my_ids[5]), None, 100).await;
    let after = page(&s, mine.id, None, Some(my_ids[0]), 100).await;
    let between = page(&s, mine.id, Some(my_ids[5]), Some(my_ids[0]), 100).await;

    assert!(latest.iter().all(|m| m.chat_id == mine.id));
    assert_eq!(latest.iter().map(|m| m.id).collect::<Vec<_>>(), my_ids);
    assert_eq!(before, my_ids[..5]);
    assert_eq!(after, my_ids[1..]);
    assert_eq!(between, my_ids[1..5]);
    assert_eq!(page(&s, theirs.id, None, None, 100).await, their_ids);
    assert_eq!(page(&s, NO_CHAT, None, None, 100).await, vec![]);
}

async fn exists_in_is_true_only_for_the_messages_chat<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let one = group(&s, "One", Visibility::Private, &ann, &[]).await;
    let two = group(&s, "Two", Visibility::Private, &ann, &[]).await;
    let id = post(&s, one.id, &ann, "hi").await;

    assert!(s.exists_in(one.id, id).await.unwrap());
    assert!(!s.exists_in(two.id, id).await.unwrap());
    assert!(!s.exists_in(NO_CHAT, id).await.unwrap());
    assert!(!s.exists_in(one.id, MessageId(id.0 + 1000)).await.unwrap());
}

fn emoji(e: &str) -> Emoji {
    Emoji::parse(e).unwrap()
}

/// The reactions of a message as `(emoji, who)`.
fn reactions(m: &Message) -> Vec<(&str, Vec<UserId>)> {
    m.reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.user_ids.clone()))
        .collect()
}

async fn an_edit_keeps_the_id_and_seq_and_history_shows_the_new_text<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[]).await;
    let first = post(&s, room.id, &ann, "helo").await;
    post(&s, room.id, &ann, "second").await;

    let edited = s
        .edit(first, &MessageBody::parse("hello", 100).unwrap(), at(200))
        .await
        .unwrap();

    assert_eq!((edited.id, edited.seq), (first, Seq(1)));
    assert_eq!(edited.body.as_str(), "hello");
    assert_eq!(edited.edited_at, Some(at(200)));
    assert_eq!(edited.change_seq, Some(ChangeSeq(1)));
    assert!(!edited.deleted);
    let listed = s.list(room.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(listed[0], edited);
    assert_eq!(seqs(&listed), [1, 2]);
    assert_eq!(listed[1].edited_at, None);
    assert_eq!(s.get(first).await.unwrap(), Some(edited));
}

async fn editing_a_missing_message_fails_with_message_not_found<S: Store>(s: S) {
    let body = MessageBody::parse("x", 10).unwrap();
    let err = s.edit(MessageId(4242), &body, at(1)).await.unwrap_err();
    assert!(matches!(err, Error::MessageNotFound), "{err:?}");
    let err = s.delete(MessageId(4242), at(1)).await.unwrap_err();
    assert!(matches!(err, Error::MessageNotFound), "{err:?}");
    let err = s
        .react(MessageId(4242), UserId(1), &emoji("👍"), true, 20)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MessageNotFound), "{err:?}");
    assert_eq!(s.get(MessageId(4242)).await.unwrap(), None);
}

async fn a_delete_overwrites_the_text_and_leaves_a_tombstone_in_place<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[&bob]).await;
    post(&s, room.id, &ann, "before").await;
    let secret = post(&s, room.id, &ann, "my secret").await;
    post(&s, room.id, &bob, "after").await;
    s.react(secret, bob.id, &emoji("😮"), true, 20)
        .await
        .unwrap();

    let tombstone = s.delete(secret, at(300)).await.unwrap().expect("deleted");

    assert!(tombstone.deleted);
    assert_eq!(tombstone.body.as_str(), "");
    assert!(tombstone.reactions.is_empty(), "{tombstone:?}");
    assert_eq!((tombstone.id, tombstone.seq), (secret, Seq(2)));
    let listed = s.list(room.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(seqs(&listed), [1, 2, 3], "no gap where it was");
    assert_eq!(listed[1], tombstone);
    assert!(
        listed.iter().all(|m| !m.body.as_str().contains("secret")),
        "{listed:?}"
    );
    let again = s.delete(secret, at(301)).await.unwrap();
    assert_eq!(again, None, "a second delete changes nothing");
    assert_eq!(
        s.get(secret).await.unwrap().unwrap().change_seq,
        tombstone.change_seq
    );
}

async fn a_deleted_message_can_be_neither_edited_nor_reacted_to<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[]).await;
    let gone = post(&s, room.id, &ann, "gone").await;
    s.delete(gone, at(300)).await.unwrap();

    let edit = s
        .edit(gone, &MessageBody::parse("back", 10).unwrap(), at(301))
        .await
        .unwrap_err();
    let react = s
        .react(gone, ann.id, &emoji("👍"), true, 20)
        .await
        .unwrap_err();

    assert!(matches!(edit, Error::MessageDeleted), "{edit:?}");
    assert!(matches!(react, Error::MessageDeleted), "{react:?}");
    let now = s.get(gone).await.unwrap().unwrap();
    assert_eq!(now.body.as_str(), "");
    assert_eq!(now.change_seq, Some(ChangeSeq(1)), "refusals use no number");
}

async fn reactions_are_idempotent_and_counted_per_emoji<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[&bob]).await;
    let id = post(&s, room.id, &ann, "party?").await;

    let first = s.react(id, ann.id, &emoji("👍"), true, 20).await.unwrap();
    s.react(id, bob.id, &emoji("👍"), true, 20).await.unwrap();
    let twice = s.react(id, ann.id, &emoji("👍"), true, 20).await.unwrap();
    let both = s
        .react(id, ann.id, &emoji("🎉"), true, 20)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(reactions(&first.unwrap()), [("👍", vec![ann.id])]);
    assert_eq!(twice, None, "the same reaction twice changes nothing");
    assert_eq!(
        reactions(&both),
        [("👍", vec![ann.id, bob.id]), ("🎉", vec![ann.id])]
    );
    let listed = s.list(room.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(listed[0], both);

    let taken = s
        .react(id, bob.id, &emoji("👍"), false, 20)
        .await
        .unwrap()
        .unwrap();
    let not_there = s.react(id, bob.id, &emoji("👍"), false, 20).await.unwrap();

    assert_eq!(
        reactions(&taken),
        [("👍", vec![ann.id]), ("🎉", vec![ann.id])]
    );
    assert_eq!(not_there, None);
    assert_eq!(s.get(id).await.unwrap().unwrap(), taken);
}

async fn different_emoji_on_one_message_are_bounded<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[&bob]).await;
    let id = post(&s, room.id, &ann, "vote").await;
    s.react(id, ann.id, &emoji("👍"), true, 2).await.unwrap();
    s.react(id, ann.id, &emoji("👎"), true, 2).await.unwrap();

    let third = s
        .react(id, bob.id, &emoji("🤷"), true, 2)
        .await
        .unwrap_err();
    let same_again = s.react(id, bob.id, &emoji("👍"), true, 2).await.unwrap();

    assert!(matches!(third, Error::TooManyReactions), "{third:?}");
    assert_eq!(
        reactions(&same_again.unwrap()),
        [("👍", vec![ann.id, bob.id]), ("👎", vec![ann.id])],
        "a given emoji may still be given by others"
    );
}

async fn changes_are_numbered_per_chat_and_listed_after_a_number<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let one = group(&s, "One", Visibility::Private, &ann, &[]).await;
    let two = group(&s, "Two", Visibility::Private, &ann, &[]).await;
    let a = post(&s, one.id, &ann, "a").await;
    let b = post(&s, one.id, &ann, "b").await;
    let c = post(&s, one.id, &ann, "c").await;
    let elsewhere = post(&s, two.id, &ann, "x").await;
    let body = |t: &str| MessageBody::parse(t, 10).unwrap();

    s.edit(a, &body("a!"), at(200)).await.unwrap();
    s.react(b, ann.id, &emoji("👍"), true, 20).await.unwrap();
    s.react(b, ann.id, &emoji("👍"), true, 20).await.unwrap();
    s.edit(a, &body("a!!"), at(201)).await.unwrap();
    let other = s.edit(elsewhere, &body("x!"), at(202)).await.unwrap();

    let changed = |after: i64, limit: u32| {
        let s = &s;
        async move {
            s.changed_after(one.id, ChangeSeq(after), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.id, m.change_seq.map(|c| c.0)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(changed(0, 10).await, [(b, Some(2)), (a, Some(3))]);
    assert_eq!(changed(2, 10).await, [(a, Some(3))]);
    assert_eq!(changed(0, 1).await, [(b, Some(2))]);
    assert!(changed(3, 10).await.is_empty());
    assert_eq!(
        other.change_seq,
        Some(ChangeSeq(1)),
        "each chat counts its own"
    );
    let untouched = s.get(c).await.unwrap().unwrap();
    assert_eq!(untouched.change_seq, None);
}

async fn a_reply_carries_a_quote_of_its_original<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let room = group(&s, "Room", Visibility::Private, &ann, &[&bob]).await;
    let long = "é".repeat(150);
    let original = post(&s, room.id, &ann, &long).await;
    let (reply, _) = insert(
        &s,
        &NewMessage {
            reply_to: Some(original),
            ..new_message(room.id, &bob, "indeed", 100)
        },
    )
    .await;

    let quoted = s.get(reply).await.unwrap().unwrap().reply_to.unwrap();

    assert_eq!(quoted.id, original);
    assert_eq!(
        (quoted.sender_id, quoted.sender_username.as_str()),
        (ann.id, "ann")
    );
    assert_eq!(quoted.text, format!("{}…", "é".repeat(Quote::MAX_CHARS)));
    assert!(!quoted.deleted);

    s.delete(original, at(300)).await.unwrap();
    let listed = s.list(room.id, HistoryPage::latest(10)).await.unwrap();
    let quoted = listed[1].reply_to.clone().unwrap();
    assert_eq!(quoted.id, original, "the reply keeps its anchor");
    assert!(quoted.deleted);
    assert_eq!(quoted.text, "");
}

async fn find_reads_a_message_of_any_chat<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let one = group(&s, "One", Visibility::Private, &ann, &[]).await;
    let two = group(&s, "Two", Visibility::Private, &ann, &[]).await;
    post(&s, one.id, &ann, "a").await;
    let b = post(&s, two.id, &ann, "b").await;

    let found = s.get(b).await.unwrap().unwrap();

    assert_eq!((found.chat_id, found.body.as_str()), (two.id, "b"));
    assert_eq!(found.reply_to, None);
    assert!(found.reactions.is_empty());
}

async fn insert_into_a_missing_chat_fails_with_chat_not_found<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;

    let err = s
        .insert(&new_message(NO_CHAT, &ann, "lost", 0))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::ChatNotFound), "got {err:?}");
    assert_eq!(page(&s, NO_CHAT, None, None, 10).await, vec![]);
    let next = post(&s, chat.id, &ann, "still works").await;
    assert_eq!(page(&s, chat.id, None, None, 10).await, [next]);
}

async fn insert_by_an_unknown_sender_fails_with_user_not_found<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let ghost = NewMessage {
        sender_id: UserId(ann.id.0 + 1000),
        ..new_message(chat.id, &ann, "boo", 0)
    };

    let err = s.insert(&ghost).await.unwrap_err();

    assert!(matches!(err, Error::UserNotFound), "got {err:?}");
    assert_eq!(page(&s, chat.id, None, None, 10).await, vec![]);
    assert!(
        s.list_for_user(ann.id).await.unwrap()[0]
            .last_message
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// The stream of a chat: seqs and client ids
// ---------------------------------------------------------------------------------------------

async fn seqs_count_from_one_in_each_chat_on_its_own<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let one = direct(&s, &ann, &bob).await;
    let two = group(&s, "Two", Visibility::Private, &bob, &[&ann]).await;

    let mut got = Vec::new();
    for i in 0..7 {
        let (chat, sender) = if i % 3 == 0 {
            (two.id, &bob)
        } else {
            (one.id, &ann)
        };
        got.push((
            chat,
            insert(&s, &new_message(chat, sender, &format!("m{i}"), i)).await,
        ));
    }

    let seqs_in = |chat: ChatId| -> Vec<i64> {
        got.iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, (_, seq))| seq.0)
            .collect()
    };
    assert_eq!(seqs_in(one.id), [1, 2, 3, 4]);
    assert_eq!(seqs_in(two.id), [1, 2, 3]);
    let listed = s.list(one.id, HistoryPage::latest(50)).await.unwrap();
    let stored_one: Vec<(MessageId, Seq)> = got
        .iter()
        .filter(|(c, _)| *c == one.id)
        .map(|(_, stored)| *stored)
        .collect();
    assert_eq!(
        listed.iter().map(|m| (m.id, m.seq)).collect::<Vec<_>>(),
        stored_one,
        "listed with the seqs the inserts answered"
    );
    assert!(listed.iter().all(|m| m.client_id.is_none()));
    let last = s.list_for_user(ann.id).await.unwrap();
    let last_of_two = last
        .iter()
        .find(|c| c.chat.id == two.id)
        .and_then(|c| c.last_message.as_ref())
        .unwrap();
    assert_eq!(last_of_two.seq, Seq(3));
}

/// However the writers interleave, one chat's seqs are 1..n with no gap and no repeat, each
/// writer's in the order it wrote, and ids grow with seqs.
async fn concurrent_inserts_into_one_chat_take_every_seq_once<S: Store>(s: S) {
    let s = Arc::new(s);
    let ann = user(&*s, "ann").await;
    let bob = user(&*s, "bob").await;
    let chat = group(&*s, "Busy", Visibility::Private, &ann, &[&bob]).await;
    let other = group(&*s, "Other", Visibility::Private, &bob, &[]).await;
    const WRITERS: usize = 24;
    const EACH: usize = 3;

    let tasks: Vec<_> = (0..WRITERS)
        .map(|t| {
            let s = s.clone();
            let sender = if t % 2 == 0 { ann.clone() } else { bob.clone() };
            let bob = bob.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..EACH {
                    let body = format!("{t}/{i}");
                    let inserted = s.insert(&new_message(chat.id, &sender, &body, 0)).await?;
                    mine.push(stored(inserted));
                    if t % 4 == 0 {
                        // Another chat's writer, between them.
                        s.insert(&new_message(other.id, &bob, &body, 0)).await?;
                    }
                }
                Ok::<_, Error>(mine)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let mine = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("insert: {e:?}"));
        assert!(mine.windows(2).all(|w| w[0].1 < w[1].1), "{mine:?}");
        all.extend(mine);
    }

    let n = (WRITERS * EACH) as i64;
    let mut taken: Vec<i64> = all.iter().map(|(_, seq)| seq.0).collect();
    taken.sort_unstable();
    assert_eq!(taken, (1..=n).collect::<Vec<_>>());
    all.sort_by_key(|(_, seq)| *seq);
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "ids grow with seqs: {all:?}"
    );
    let listed = s
        .list(chat.id, HistoryPage::latest(HistoryPage::MAX_LIMIT))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| (m.id, m.seq)).collect::<Vec<_>>(),
        all
    );
    let others = seq_page(&*s, other.id, None, None, HistoryPage::MAX_LIMIT).await;
    assert_eq!(
        others,
        (1..=(WRITERS / 4 * EACH) as i64).collect::<Vec<_>>()
    );
    let (_, next) = insert(&*s, &new_message(chat.id, &ann, "after", 0)).await;
    assert_eq!(next, Seq(n + 1));
}

async fn a_failed_insert_uses_no_seq<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    insert(&s, &new_message(chat.id, &ann, "first", 0)).await;
    let ghost = NewMessage {
        sender_id: UserId(ann.id.0 + 1000),
        ..resendable(chat.id, &ann, "boo", "c1")
    };

    let err = s.insert(&ghost).await.unwrap_err();
    let (_, next) = insert(&s, &new_message(chat.id, &ann, "second", 0)).await;

    assert!(matches!(err, Error::UserNotFound), "got {err:?}");
    assert_eq!(next, Seq(2));
    assert_eq!(seq_page(&s, chat.id, None, None, 10).await, [1, 2]);
}

async fn after_seq_returns_the_oldest_messages_after_a_position<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let other = group(&s, "Other", Visibility::Private, &ann, &[]).await;
    for i in 0..20 {
        post(&s, chat.id, &ann, &i.to_string()).await;
        if i % 2 == 0 {
            post(&s, other.id, &ann, "noise").await;
        }
    }

    let next = s
        .list(chat.id, HistoryPage::after_seq(Seq(9), 5))
        .await
        .unwrap();
    let rest = seq_page(&s, chat.id, None, Some(17), 5).await;
    let none = seq_page(&s, chat.id, None, Some(20), 5).await;
    let from_the_start = seq_page(&s, chat.id, None, Some(0), 3).await;

    assert_eq!(seqs(&next), [10, 11, 12, 13, 14]);
    let bodies: Vec<&str> = next.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["9", "10", "11", "12", "13"]);
    assert!(next.iter().all(|m| m.chat_id == chat.id));
    assert_eq!(rest, [18, 19, 20]);
    assert_eq!(none, Vec::<i64>::new());
    assert_eq!(from_the_start, [1, 2, 3]);
    assert_eq!(
        seq_page(&s, NO_CHAT, None, Some(0), 10).await,
        Vec::<i64>::new()
    );
}

async fn before_seq_pages_back_and_bounds_combine<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let ids = post_many(&s, chat.id, &ann, 15).await;

    let before = seq_page(&s, chat.id, Some(6), None, 3).await;
    let before_all = seq_page(&s, chat.id, Some(6), None, 100).await;
    let newest_three_between = seq_page(&s, chat.id, Some(11), Some(3), 3).await;
    let all_between = seq_page(&s, chat.id, Some(11), Some(3), 100).await;
    let nothing_between = seq_page(&s, chat.id, Some(6), Some(5), 100).await;
    // ids[6] is seq 7: the id bound and the seq bound both apply.
    let mixed = s
        .list(
            chat.id,
            HistoryPage {
                before: Some(ids[6]),
                after_seq: Some(Seq(2)),
                ..HistoryPage::latest(100)
            },
        )
        .await
        .unwrap();
    let mixed_oldest_first = s
        .list(
            chat.id,
            HistoryPage {
                after: Some(ids[9]),
                after_seq: Some(Seq(4)),
                ..HistoryPage::latest(2)
            },
        )
        .await
        .unwrap();
    let tighter_id = s
        .list(
            chat.id,
            HistoryPage {
                before: Some(ids[4]),
                before_seq: Some(Seq(12)),
                ..HistoryPage::latest(2)
            },
        )
        .await
        .unwrap();

    assert_eq!(before, [3, 4, 5]);
    assert_eq!(before_all, [1, 2, 3, 4, 5]);
    assert_eq!(newest_three_between, [8, 9, 10]);
    assert_eq!(all_between, [4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(nothing_between, Vec::<i64>::new());
    assert_eq!(seqs(&mixed), [3, 4, 5, 6]);
    assert_eq!(seqs(&mixed_oldest_first), [11, 12]);
    assert_eq!(seqs(&tighter_id), [3, 4]);
}

async fn a_repeated_client_id_stores_once_and_uses_no_seq<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let chat = direct(&s, &ann, &bob).await;
    let (first, first_seq) = insert(&s, &resendable(chat.id, &ann, "hello", "c-1")).await;

    let again = s
        .insert(&resendable(chat.id, &ann, "hello, edited", "c-1"))
        .await
        .unwrap();
    let (next, next_seq) = insert(&s, &new_message(chat.id, &bob, "hi", 0)).await;
    let (_, third_seq) = insert(&s, &resendable(chat.id, &ann, "more", "c-2")).await;

    let again = existing(again);
    assert_eq!(first_seq, Seq(1));
    assert_eq!((again.id, again.seq), (first, first_seq));
    assert_eq!(again.chat_id, chat.id);
    assert_eq!(again.sender_id, ann.id);
    assert_eq!(again.sender_username, ann.username);
    assert_eq!(again.body.as_str(), "hello", "the message as first stored");
    assert_eq!(again.created_at, at(100));
    assert_eq!(again.client_id.as_ref().map(ClientId::as_str), Some("c-1"));
    assert_eq!(next_seq, Seq(2), "the resend used no seq");
    assert_eq!(third_seq, Seq(3));
    let listed = s.list(chat.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], again);
    assert_eq!(listed[1].id, next);
    assert_eq!(listed[1].client_id, None);
    assert_eq!(
        listed[2].client_id.as_ref().map(ClientId::as_str),
        Some("c-2")
    );
}

/// Sends of one message that race (a client retrying on two connections) store it once; the
/// losers answer it, and no seq goes missing for the messages sent among them.
async fn concurrent_sends_of_one_client_id_store_one_message_without_a_gap<S: Store>(s: S) {
    let s = Arc::new(s);
    let ann = user(&*s, "ann").await;
    let bob = user(&*s, "bob").await;
    let chat = direct(&*s, &ann, &bob).await;
    const SENDS: usize = 20;

    let tasks: Vec<_> = (0..SENDS)
        .map(|t| {
            let s = s.clone();
            let (ann, bob) = (ann.clone(), bob.clone());
            tokio::spawn(async move {
                let dup = s.insert(&resendable(chat.id, &ann, "once", "same")).await?;
                let own = s
                    .insert(&resendable(chat.id, &bob, "own", &format!("bob-{t}")))
                    .await?;
                Ok::<_, Error>((dup, own))
            })
        })
        .collect();
    let mut dups = Vec::new();
    let mut owns = Vec::new();
    for task in tasks {
        let (dup, own) = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("insert: {e:?}"));
        dups.push(dup);
        owns.push(stored(own));
    }

    let new: Vec<(MessageId, Seq)> = dups
        .iter()
        .filter_map(|d| match d {
            Inserted::New { id, seq } => Some((*id, *seq)),
            Inserted::Existing(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "stored once: {dups:?}");
    let (id, seq) = new[0];
    for d in &dups {
        if let Inserted::Existing(m) = d {
            assert_eq!((m.id, m.seq, m.body.as_str()), (id, seq, "once"));
        }
    }
    let listed = s.list(chat.id, HistoryPage::latest(100)).await.unwrap();
    assert_eq!(seqs(&listed), (1..=(SENDS as i64 + 1)).collect::<Vec<_>>());
    assert_eq!(
        listed.iter().filter(|m| m.sender_id == ann.id).count(),
        1,
        "ann's message once"
    );
    assert_eq!(owns.len(), SENDS);
    let (_, next) = insert(&*s, &new_message(chat.id, &ann, "next", 0)).await;
    assert_eq!(next, Seq(SENDS as i64 + 2));
}

async fn a_client_id_names_a_message_of_one_sender_in_one_chat<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let one = group(&s, "One", Visibility::Private, &ann, &[&bob]).await;
    let two = group(&s, "Two", Visibility::Private, &ann, &[&bob]).await;

    let anns = s
        .insert(&resendable(one.id, &ann, "a", "c1"))
        .await
        .unwrap();
    let bobs = s
        .insert(&resendable(one.id, &bob, "b", "c1"))
        .await
        .unwrap();
    let elsewhere = s
        .insert(&resendable(two.id, &ann, "c", "c1"))
        .await
        .unwrap();
    let differs_in_case = s
        .insert(&resendable(one.id, &ann, "d", "C1"))
        .await
        .unwrap();
    let anns_again = s
        .insert(&resendable(one.id, &ann, "a", "c1"))
        .await
        .unwrap();

    let (anns, anns_seq) = stored(anns);
    let (bobs, bobs_seq) = stored(bobs);
    let (elsewhere, elsewhere_seq) = stored(elsewhere);
    let (_, case_seq) = stored(differs_in_case);
    assert_eq!((anns_seq, bobs_seq, case_seq), (Seq(1), Seq(2), Seq(3)));
    assert_eq!(elsewhere_seq, Seq(1));
    assert_ne!(anns, bobs);
    assert_ne!(anns, elsewhere);
    assert_eq!(existing(anns_again).id, anns);
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

async fn a_created_session_is_found_with_its_owner_and_client<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let id = session("0123456789abcdef0123456789abcdef");
    s.create_session(&NewSession {
        id: id.clone(),
        user_id: ann.id,
        created_at: at(0),
        expires_at: at(3600),
        client: client(
            "2001:db8::7",
            Some("Mozilla/5.0 (X11; Linux) \u{e9}t\u{e9}"),
        ),
        refresh_digest: "digest".into(),
    })
    .await
    .unwrap();
    s.create_session(&NewSession {
        id: session("other"),
        user_id: ann.id,
        created_at: at(0),
        expires_at: at(3600),
        client: client("198.51.100.9", None),
        refresh_digest: "digest-2".into(),
    })
    .await
    .unwrap();

    let found = found(&s, &id).await;
    let other = self::found(&s, &session("other")).await;

    assert_eq!(
        found,
        Session {
            id,
            user_id: ann.id,
            username: ann.username.clone(),
            created_at: at(0),
            last_used_at: at(0),
            expires_at: at(3600),
            client: client(
                "2001:db8::7",
                Some("Mozilla/5.0 (X11; Linux) \u{e9}t\u{e9}")
            ),
            refresh: RefreshState {
                current: "digest".into(),
                previous: None,
                rotated_at: None,
            },
        }
    );
    assert_eq!(other.client, client("198.51.100.9", None));
    assert!(s.find_session(&session("nobody")).await.unwrap().is_none());
}

async fn a_session_of_a_user_who_does_not_exist_is_refused<S: Store>(s: S) {
    let err = s
        .create_session(&NewSession {
            id: session("s"),
            user_id: UserId(424_242),
            created_at: at(0),
            expires_at: at(3600),
            client: client("192.0.2.1", None),
            refresh_digest: "d".into(),
        })
        .await
        .unwrap_err();

    assert!(matches!(err, Error::UserNotFound), "{err:?}");
    assert!(s.find_session(&session("s")).await.unwrap().is_none());
}

async fn touch_records_a_use_and_moves_the_expiry<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let a = new_session(&s, "a", ann.id, 0).await;
    let b = new_session(&s, "b", ann.id, 0).await;

    assert!(s.touch_session(&a, at(120), at(120 + 3600)).await.unwrap());

    let a = found(&s, &a).await;
    assert_eq!(a.last_used_at, at(120));
    assert_eq!(a.expires_at, at(3720));
    assert_eq!(a.created_at, at(0), "creation stays");
    let b = found(&s, &b).await;
    assert_eq!(
        (b.last_used_at, b.expires_at),
        (at(0), at(3600)),
        "others stay"
    );
}

async fn touch_does_not_revive_an_ended_or_expired_session<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let ended = new_session(&s, "ended", ann.id, 0).await;
    let expired = new_session(&s, "expired", ann.id, 0).await;
    assert!(s.end_session(ann.id, &ended).await.unwrap());

    assert!(!s.touch_session(&ended, at(10), at(4000)).await.unwrap());
    assert!(!s.touch_session(&expired, at(3600), at(7200)).await.unwrap());
    assert!(
        !s.touch_session(&session("nobody"), at(10), at(4000))
            .await
            .unwrap()
    );

    assert!(s.find_session(&ended).await.unwrap().is_none());
    assert_eq!(found(&s, &expired).await.expires_at, at(3600));
}

async fn rotate_replaces_the_digest_once_and_keeps_the_previous<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let a = new_session(&s, "a", ann.id, 0).await;

    let first = s
        .rotate_refresh(&a, "digest-of-a", "second", at(60), at(3660))
        .await
        .unwrap();
    let again = s
        .rotate_refresh(&a, "digest-of-a", "third", at(61), at(3661))
        .await
        .unwrap();
    let wrong = s
        .rotate_refresh(&a, "made-up", "fourth", at(62), at(3662))
        .await
        .unwrap();
    let gone = s
        .rotate_refresh(&session("nobody"), "x", "y", at(62), at(3662))
        .await
        .unwrap();

    assert!(first);
    assert!(!again, "the digest it replaced no longer rotates");
    assert!(!wrong);
    assert!(!gone);
    let a = found(&s, &a).await;
    assert_eq!(
        a.refresh,
        RefreshState {
            current: "second".into(),
            previous: Some("digest-of-a".into()),
            rotated_at: Some(at(60)),
        }
    );
    assert_eq!((a.last_used_at, a.expires_at), (at(60), at(3660)));

    assert!(
        s.rotate_refresh(&a.id, "second", "third", at(90), at(3690))
            .await
            .unwrap()
    );
    assert_eq!(
        found(&s, &a.id).await.refresh,
        RefreshState {
            current: "third".into(),
            previous: Some("second".into()),
            rotated_at: Some(at(90)),
        }
    );
}

/// Of many rotations of one digest at once, exactly one wins.
async fn concurrent_rotations_of_one_digest_have_one_winner<S: Store>(s: S) {
    let s = Arc::new(s);
    let ann = user(&*s, "ann").await;
    let a = new_session(&*s, "a", ann.id, 0).await;
    let tries = (0..8).map(|i| {
        let s = s.clone();
        let a = a.clone();
        tokio::spawn(async move {
            s.rotate_refresh(&a, "digest-of-a", &format!("next-{i}"), at(60), at(3660))
                .await
                .unwrap()
        })
    });
    let mut wins = 0;
    for t in tries {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

async fn list_for_user_gives_their_live_sessions_most_recently_used_first<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let old = new_session(&s, "old", ann.id, 0).await;
    new_session(&s, "recent", ann.id, 10).await;
    let expired = new_session(&s, "expired", ann.id, -3000).await;
    new_session(&s, "bobs", bob.id, 20).await;
    s.touch_session(&old, at(30), at(3630)).await.unwrap();

    let listed = s.list_sessions(ann.id, at(700)).await.unwrap();

    assert_eq!(
        ids(&listed),
        ["old", "recent"],
        "expired {expired:?} is left out"
    );
    assert!(listed.iter().all(|x| x.username == ann.username));
    assert_eq!(
        ids(&s.list_sessions(bob.id, at(700)).await.unwrap()),
        ["bobs"]
    );
    assert!(
        s.list_sessions(ann.id, at(10_000))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn end_ends_only_a_session_of_that_user<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let anns = new_session(&s, "anns", ann.id, 0).await;
    let bobs = new_session(&s, "bobs", bob.id, 0).await;

    let by_ann = s.end_session(ann.id, &bobs).await.unwrap();
    let own = s.end_session(ann.id, &anns).await.unwrap();
    let twice = s.end_session(ann.id, &anns).await.unwrap();

    assert!(!by_ann, "another user's session is not ended");
    assert!(own);
    assert!(!twice);
    assert!(s.find_session(&anns).await.unwrap().is_none());
    assert!(s.find_session(&bobs).await.unwrap().is_some());
}

async fn end_all_except_ends_the_others_of_that_user_only<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let keep = new_session(&s, "keep", ann.id, 0).await;
    new_session(&s, "a2", ann.id, 0).await;
    new_session(&s, "a3", ann.id, 0).await;
    let bobs = new_session(&s, "bobs", bob.id, 0).await;

    let mut ended = s
        .end_sessions_except(ann.id, Some(keep.clone()))
        .await
        .unwrap();
    ended.sort_by(|a, b| a.0.cmp(&b.0));

    assert_eq!(ended, [session("a2"), session("a3")]);
    assert_eq!(
        ids(&s.list_sessions(ann.id, at(1)).await.unwrap()),
        ["keep"]
    );
    assert!(s.find_session(&bobs).await.unwrap().is_some());

    let all = s.end_sessions_except(ann.id, None).await.unwrap();
    assert_eq!(all, [keep]);
    assert!(s.list_sessions(ann.id, at(1)).await.unwrap().is_empty());
    assert!(
        s.end_sessions_except(ann.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.find_session(&bobs).await.unwrap().is_some());
}

/// The clean-up goes by the creation time it is given (the service's clock), never by the time
/// of the machine: these expiries are long past by the machine's clock.
async fn expired_sessions_are_forgotten_by_the_callers_time_on_the_next_create<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let early = new_session(&s, "early", ann.id, 0).await; // expires at(3600)
    let late = new_session(&s, "late", ann.id, 100).await; // expires at(3700)

    new_session(&s, "at-its-expiry", ann.id, 3600).await;
    let early_at_its_expiry = s.find_session(&early).await.unwrap().is_some();
    new_session(&s, "after-it", ann.id, 3650).await;
    let early_after_it = s.find_session(&early).await.unwrap().is_some();

    assert!(early_at_its_expiry, "kept while not past its expiry");
    assert!(!early_after_it, "forgotten once past its expiry");
    assert!(
        s.find_session(&late).await.unwrap().is_some(),
        "kept until its own"
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------------------------

/// Many writers through one store queue instead of failing with `database is locked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writers_all_succeed() {
    let (store, _dir) = sqlite_store().await;
    let s = Arc::new(store);
    let ann = user(&*s, "ann").await;
    let chat = group(&*s, "Busy", Visibility::Private, &ann, &[]).await;

    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let s = s.clone();
            let ann = ann.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..20 {
                    let body = format!("{t}/{i}");
                    ids.push(stored(s.insert(&new_message(chat.id, &ann, &body, i)).await?).0);
                }
                Ok::<_, Error>(ids)
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        let ids = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("insert: {e:?}"));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        written.extend(ids);
    }

    let mut listed = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .list(
                chat.id,
                HistoryPage {
                    before,
                    ..HistoryPage::latest(HistoryPage::MAX_LIMIT)
                },
            )
            .await
            .unwrap();
        let Some(first) = page.first() else { break };
        before = Some(first.id);
        listed.splice(0..0, page);
    }

    assert_eq!(written.len(), 1000);
    assert_eq!(listed.len(), 1000);
    written.sort();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), written);
    let bodies: HashSet<&str> = listed.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies.len(), 1000);
}

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

/// Rows as the schema of migration 1 held them, before messages had seqs, in SQL both
/// databases take. A fresh database numbers them from 1: users ann (1) and bob (2), chats One
/// (1), Two (2) and Empty (3). Message ids run 1 to 8 across the chats; "gone" (4) and
/// "last" (8) are deleted, so ids have gaps and the highest id ever used is gone; "one-a" is
/// rewritten, which moves it to the end of PostgreSQL's table.
const BEFORE_SEQ: &str = "
    INSERT INTO users (username, email, password_hash, created_at) VALUES
        ('ann', 'ann@example.com', 'h', '2024-05-01T12:00:00Z'),
        ('bob', 'bob@example.com', 'h', '2024-05-01T12:00:00Z');
    INSERT INTO chats (kind, name, visibility, created_at) VALUES
        ('group', 'One', 'private', '2024-05-01T12:00:00Z'),
        ('group', 'Two', 'private', '2024-05-01T12:00:00Z'),
        ('group', 'Empty', 'private', '2024-05-01T12:00:00Z');
    INSERT INTO messages (chat_id, sender_id, body, created_at) VALUES
        (1, 1, 'one-a', '2024-05-01T12:01:00Z'),
        (2, 2, 'two-a', '2024-05-01T12:02:00Z'),
        (1, 2, 'one-b', '2024-05-01T12:03:00Z'),
        (1, 1, 'gone', '2024-05-01T12:04:00Z'),
        (2, 1, 'two-b', '2024-05-01T12:05:00Z'),
        (1, 1, 'one-c', '2024-05-01T12:06:00Z'),
        (2, 2, 'two-c', '2024-05-01T12:07:00Z'),
        (2, 2, 'last', '2024-05-01T12:08:00Z');
    DELETE FROM messages WHERE body IN ('gone', 'last');
    UPDATE messages SET body = 'one-a!' WHERE body = 'one-a';
";

/// What the migration that brought seqs must have made of [`BEFORE_SEQ`]: each chat's
/// messages numbered 1, 2, ... in id order, and each chat's next seq after its last.
async fn assert_backfilled<S: Store>(s: &S) {
    let (one, two, empty) = (ChatId(1), ChatId(2), ChatId(3));
    let listed = |chat| async move {
        s.list(chat, HistoryPage::latest(50))
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.seq.0, m.id.0, m.body.as_str().to_owned(), m.client_id))
            .collect::<Vec<_>>()
    };
    let row = |seq, id, body: &str| (seq, id, body.to_owned(), None);

    assert_eq!(
        listed(one).await,
        [row(1, 1, "one-a!"), row(2, 3, "one-b"), row(3, 6, "one-c")]
    );
    assert_eq!(
        listed(two).await,
        [row(1, 2, "two-a"), row(2, 5, "two-b"), row(3, 7, "two-c")]
    );
    assert_eq!(seq_page(s, one, None, Some(1), 10).await, [2, 3]);
    let ann = s.find(UserId(1)).await.unwrap().unwrap();
    let (new_in_one, seq_in_one) = insert(s, &new_message(one, &ann, "new", 0)).await;
    let (_, seq_in_two) = insert(s, &new_message(two, &ann, "new", 0)).await;
    let (_, seq_in_empty) = insert(s, &new_message(empty, &ann, "new", 0)).await;
    assert_eq!(
        (seq_in_one, seq_in_two, seq_in_empty),
        (Seq(4), Seq(4), Seq(1))
    );
    assert!(new_in_one.0 > 8, "ids are never reused: got {new_in_one}");
    let (_, resent_seq) = insert(s, &resendable(one, &ann, "r", "c1")).await;
    let again = existing(s.insert(&resendable(one, &ann, "r", "c1")).await.unwrap());
    assert_eq!((resent_seq, again.seq), (Seq(5), Seq(5)));
}

/// A message without a seq is refused: the column is NOT NULL once filled in.
const WITHOUT_SEQ: &str = "INSERT INTO messages (chat_id, sender_id, body, created_at) VALUES (1, 1, 'x', '2024-05-01T12:00:00Z')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_numbers_existing_messages_in_id_order() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr;

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.run_to(1, &pool).await.unwrap();
    sqlx::raw_sql(BEFORE_SEQ).execute(&pool).await.unwrap();

    migrator.run(&pool).await.unwrap();
    let refused = sqlx::raw_sql(WITHOUT_SEQ).execute(&pool).await;
    pool.close().await;
    let store = parley::adapters::sqlite::SqliteStore::connect(&url)
        .await
        .expect("open SQLite store");

    assert!(refused.is_err(), "stored a message without a seq");
    assert_backfilled(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_numbers_existing_messages_in_id_order() {
    let url = support::postgres::fresh_database_url().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let migrator = sqlx::migrate!("./migrations/postgres");
    migrator.run_to(1, &pool).await.unwrap();
    sqlx::raw_sql(BEFORE_SEQ).execute(&pool).await.unwrap();

    migrator.run(&pool).await.unwrap();
    let refused = sqlx::raw_sql(WITHOUT_SEQ).execute(&pool).await;
    pool.close().await;
    let store = parley::adapters::postgres::PgStore::connect(&url, 4)
        .await
        .expect("open PostgreSQL store");

    assert!(refused.is_err(), "stored a message without a seq");
    assert_backfilled(&store).await;
}

async fn insert_all_stores_each_in_order_and_answers_each_as_insert_would<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let one = group(&s, "One", Visibility::Private, &ann, &[&bob]).await;
    let two = group(&s, "Two", Visibility::Private, &ann, &[&bob]).await;
    insert(&s, &new_message(one.id, &ann, "before", 0)).await;
    let (sent_id, _) = insert(&s, &resendable(two.id, &bob, "sent", "b-1")).await;
    let batch = [
        new_message(two.id, &ann, "two-a", 1),
        new_message(one.id, &bob, "one-a", 2),
        new_message(ChatId(one.id.0 + 1000), &ann, "nowhere", 3),
        resendable(two.id, &bob, "sent again", "b-1"),
        new_message(one.id, &ann, "one-b", 4),
        resendable(two.id, &ann, "two-b", "a-1"),
    ];

    let done = s.insert_all(&batch).await;

    assert_eq!(done.len(), batch.len());
    let mut done = done.into_iter();
    let mut next = || done.next().unwrap();
    let two_a = stored(next().unwrap());
    let one_a = stored(next().unwrap());
    assert!(matches!(next(), Err(Error::ChatNotFound)));
    let again = existing(next().unwrap());
    assert_eq!((again.id, again.body.as_str()), (sent_id, "sent"));
    let one_b = stored(next().unwrap());
    let two_b = stored(next().unwrap());
    // Each chat's messages take its next seqs, in the order given, with no gap.
    assert_eq!((one_a.1, one_b.1), (Seq(2), Seq(3)));
    assert_eq!((two_a.1, two_b.1), (Seq(2), Seq(3)));
    assert!(one_a.0 < one_b.0 && two_a.0 < two_b.0);
    let listed = s.list(one.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["before", "one-a", "one-b"]
    );
    let listed = s.list(two.id, HistoryPage::latest(10)).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.seq.0, m.body.as_str()))
            .collect::<Vec<_>>(),
        [(1, "sent"), (2, "two-a"), (3, "two-b")]
    );
    assert_eq!(
        listed[2].client_id.as_ref().map(ClientId::as_str),
        Some("a-1")
    );
    let (_, after) = insert(&s, &new_message(two.id, &ann, "after", 6)).await;
    assert_eq!(after, Seq(4));
}

async fn insert_all_stores_a_client_id_repeated_within_the_batch_once<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let batch = [
        resendable(chat.id, &ann, "once", "c-1"),
        new_message(chat.id, &ann, "plain", 1),
        resendable(chat.id, &ann, "once, resent", "c-1"),
    ];

    let done: Vec<Inserted> = s
        .insert_all(&batch)
        .await
        .into_iter()
        .map(|d| d.unwrap_or_else(|e| panic!("insert_all: {e:?}")))
        .collect();

    let (id, seq) = stored(done[0].clone());
    assert_eq!(stored(done[1].clone()).1, Seq(seq.0 + 1));
    let again = existing(done[2].clone());
    assert_eq!((again.id, again.body.as_str()), (id, "once"));
    assert_eq!(seq_page(&s, chat.id, None, None, 10).await, [1, 2]);
}

async fn concurrent_batches_across_chats_take_every_seq_once<S: Store>(s: S) {
    let s = Arc::new(s);
    let ann = user(&*s, "ann").await;
    let mut chats = Vec::new();
    for name in ["A", "B", "C"] {
        chats.push(group(&*s, name, Visibility::Private, &ann, &[]).await.id);
    }
    const BATCHES: usize = 12;

    // Every batch names the chats in another order, so that batches that locked chats as
    // they came would wait for each other.
    let tasks: Vec<_> = (0..BATCHES)
        .map(|t| {
            let s = s.clone();
            let ann = ann.clone();
            let mut order = chats.clone();
            order.rotate_left(t % 3);
            if t % 2 == 1 {
                order.reverse();
            }
            tokio::spawn(async move {
                let batch: Vec<NewMessage> = order
                    .iter()
                    .flat_map(|&chat| {
                        [0, 1].map(|i| new_message(chat, &ann, &format!("{t}/{i}"), 0))
                    })
                    .collect();
                let done = s.insert_all(&batch).await;
                batch
                    .iter()
                    .zip(done)
                    .map(|(m, d)| d.map(|d| (m.chat_id, stored(d))))
                    .collect::<Result<Vec<_>, Error>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("insert_all: {e:?}")),
        );
    }

    for chat in chats {
        let mut taken: Vec<i64> = all
            .iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, (_, seq))| seq.0)
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, (1..=(BATCHES as i64 * 2)).collect::<Vec<_>>());
        assert_eq!(
            seq_page(&*s, chat, None, None, 100).await,
            (1..=(BATCHES as i64 * 2)).collect::<Vec<_>>()
        );
    }
}

async fn a_message_refused_in_a_batch_leaves_the_others_stored_without_a_gap<S: Store>(s: S) {
    let ann = user(&s, "ann").await;
    let chat = group(&s, "Club", Visibility::Private, &ann, &[]).await;
    let ghost = User {
        id: UserId(ann.id.0 + 1000),
        ..ann.clone()
    };
    let batch = [
        new_message(chat.id, &ann, "first", 0),
        new_message(chat.id, &ghost, "boo", 1),
        new_message(chat.id, &ann, "second", 2),
    ];

    let mut done = s.insert_all(&batch).await.into_iter();

    assert_eq!(stored(done.next().unwrap().unwrap()).1, Seq(1));
    let err = done.next().unwrap().unwrap_err();
    assert!(matches!(err, Error::UserNotFound), "got {err:?}");
    assert_eq!(stored(done.next().unwrap().unwrap()).1, Seq(2));
    assert_eq!(seq_page(&s, chat.id, None, None, 10).await, [1, 2]);
}
