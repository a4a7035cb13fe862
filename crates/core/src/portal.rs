//! The developer center's rules: who may do what (`Role`, `Action`), when a session or a
//! sign-in lockout ends, and which TOTP time steps a code may be checked against.
//!
//! Pure: hashing passwords and the HMAC behind a TOTP code happen in the web crate; this module
//! decides only what the outcomes mean.

use crate::Timestamp;

crate::named_enum! {
    /// What a user of a participant may do there.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Role {
        /// Everything, keys and grants included.
        Owner = "owner",
        /// Keys, settings, logs and test actions in the sandbox.
        Developer = "developer",
        /// Reads only.
        Viewer = "viewer",
    }
}

/// Something a user asks the developer center to do; every page and form names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the participant's pages: payments, refunds, logs, keys, reports.
    Read,
    /// Add, generate or revoke a key.
    ManageKeys,
    /// Change the default notify URL or the settlement currency.
    ChangeSettings,
    /// Refund, cancel or resend a notification of a payment.
    OperatePayments,
    /// Pay a sandbox code as a test payer; register a store again (owners only, when live).
    SandboxTest,
    /// Authorise an ISV, revoke a grant.
    ManageGrants,
    /// Invite users, change their roles, disable them.
    ManageUsers,
    /// Change the participant's SFTP account.
    ManageSftp,
}

impl Role {
    /// Whether the role allows the action. Live payments are operated by owners only: a
    /// developer's hands stay in the sandbox.
    pub fn allows(self, action: Action, live: bool) -> bool {
        match (self, action) {
            (_, Action::Read) => true,
            (Role::Owner, _) => true,
            (Role::Viewer, _) => false,
            (Role::Developer, Action::ManageKeys | Action::ChangeSettings) => true,
            (Role::Developer, Action::OperatePayments | Action::SandboxTest) => !live,
            (Role::Developer, Action::ManageGrants | Action::ManageUsers | Action::ManageSftp) => false,
        }
    }
}

/// How long sessions last and how sign-ins are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_ms: i64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_ms: i64,
}

impl SessionPolicy {
    /// Whether a session created at `created_at` and last used at `last_seen_at` is still valid.
    pub fn is_live(self, created_at: Timestamp, last_seen_at: Timestamp, now: Timestamp) -> bool {
        now.as_millisecond() < created_at.as_millisecond().saturating_add(self.absolute_ms)
            && now.as_millisecond() < last_seen_at.as_millisecond().saturating_add(self.idle_ms)
    }
}

/// Length of a TOTP time step (RFC 6238's default, which every authenticator app uses).
pub const TOTP_STEP_MS: i64 = 30_000;

/// The time steps a code typed at `now` may belong to: the current one and one either side
/// (clock drift, and the seconds it takes to type), later than `last_used` (a code works once).
pub fn totp_steps(now: Timestamp, last_used: Option<i64>) -> impl Iterator<Item = i64> {
    let current = now.as_millisecond().div_euclid(TOTP_STEP_MS);
    [current, current - 1, current + 1]
        .into_iter()
        .filter(move |step| last_used.is_none_or(|used| *step > used))
}

/// Whether a sign-in is refused outright because the account is locked at `now`.
pub fn is_locked(locked_until: Option<Timestamp>, now: Timestamp) -> bool {
    locked_until.is_some_and(|until| now < until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_table_says() {
        use Action::*;
        // (role, action, sandbox, live)
        let table = [
            (Role::Owner, Read, true, true),
            (Role::Owner, ManageKeys, true, true),
            (Role::Owner, OperatePayments, true, true),
            (Role::Owner, ManageGrants, true, true),
            (Role::Owner, ManageUsers, true, true),
            (Role::Owner, ManageSftp, true, true),
            (Role::Developer, Read, true, true),
            (Role::Developer, ManageKeys, true, true),
            (Role::Developer, ChangeSettings, true, true),
            (Role::Developer, SandboxTest, true, false),
            (Role::Developer, OperatePayments, true, false),
            (Role::Developer, ManageGrants, false, false),
            (Role::Developer, ManageUsers, false, false),
            (Role::Developer, ManageSftp, false, false),
            (Role::Viewer, Read, true, true),
            (Role::Viewer, ManageKeys, false, false),
            (Role::Viewer, ChangeSettings, false, false),
            (Role::Viewer, OperatePayments, false, false),
            (Role::Viewer, SandboxTest, false, false),
            (Role::Viewer, ManageGrants, false, false),
        ];
        for (role, action, sandbox, live) in table {
            assert_eq!(role.allows(action, false), sandbox, "{role:?} {action:?} in the sandbox");
            assert_eq!(role.allows(action, true), live, "{role:?} {action:?} live");
        }
    }

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let policy = SessionPolicy { idle_ms: 1_000, absolute_ms: 10_000 };
        let at = |ms| Timestamp::from_millisecond(ms).unwrap();
        assert!(policy.is_live(at(0), at(0), at(999)));
        assert!(!policy.is_live(at(0), at(0), at(1_000)));
        assert!(policy.is_live(at(0), at(9_000), at(9_999)));
        assert!(!policy.is_live(at(0), at(9_500), at(10_000)));
    }

    #[test]
    fn a_totp_step_is_used_once() {
        let now = Timestamp::from_millisecond(TOTP_STEP_MS * 100 + 5).unwrap();
        assert_eq!(totp_steps(now, None).collect::<Vec<_>>(), [100, 99, 101]);
        assert_eq!(totp_steps(now, Some(99)).collect::<Vec<_>>(), [100, 101]);
        assert_eq!(totp_steps(now, Some(101)).count(), 0);
    }

    #[test]
    fn a_lockout_ends_at_its_time() {
        let at = |ms| Timestamp::from_millisecond(ms).unwrap();
        assert!(!is_locked(None, at(5)));
        assert!(is_locked(Some(at(10)), at(9)));
        assert!(!is_locked(Some(at(10)), at(10)));
    }
}
