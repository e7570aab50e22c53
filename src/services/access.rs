//! The question every use case on a chat asks first: may this user touch it?

use crate::domain::error::{Error, Result};
use crate::domain::{Chat, ChatAccess, ChatId, Role, UserId};
use crate::ports::ChatRepo;

/// The chat and `user`'s role in it, or why they may not touch it: `ChatNotFound` when there
/// is no such chat, `NotAMember` when they are not in it.
pub(super) async fn member_access(
    chats: &dyn ChatRepo,
    chat: ChatId,
    user: UserId,
) -> Result<(Chat, Role)> {
    match chats.access(chat, user).await? {
        ChatAccess::Member(chat, role) => Ok((chat, role)),
        ChatAccess::Outsider(_) => Err(Error::NotAMember),
        ChatAccess::NoSuchChat => Err(Error::ChatNotFound),
    }
}
