//! Who is online: a count of open sockets per user, so that a second tab closing does not mark
//! its user offline. It lives in the process that holds the sockets.

use std::collections::HashMap;
use std::sync::Mutex;

use super::model::UserId;

/// Counts the open sockets of each user in this process.
#[derive(Debug, Default)]
pub struct Presence {
    sockets: Mutex<HashMap<UserId, usize>>,
}

impl Presence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a socket opening; true when it is the user's first.
    pub fn connect(&self, user: UserId) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let n = sockets.entry(user).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Records a socket closing; true when it was the user's last.
    pub fn disconnect(&self, user: UserId) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        match sockets.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                sockets.remove(&user);
                true
            }
            None => false,
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_tab_keeps_the_user_online() {
        let p = Presence::new();
        let ann = UserId(1);
        assert!(p.connect(ann));
        assert!(!p.connect(ann));
        assert!(!p.disconnect(ann));
        assert!(p.is_online(ann));
        assert!(p.disconnect(ann));
        assert!(!p.is_online(ann));
        assert!(!p.disconnect(ann), "an unknown disconnect changes nothing");
    }
}
