//! One SSH connection: who logs in, and the SFTP subsystem once they have.
//!
//! A login is refused, in this order, for an unknown user, a locked account, a disabled one
//! (unused for `sftp_unused_days_max`), an address outside the account's allow-list, a wrong
//! key or password, and too many sessions; every refusal but the unknown user's (who has no
//! client id to record) and every success goes to the audit trail. Password attempts count
//! towards the lockout in the store before the password is checked (a right one clears the
//! count), so that parallel guesses cannot all be checked before the lock lands; a key that is
//! not the account's does not count, since clients offer every key they hold in turn.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use ocpay_core::ids::ClientId;
use ocpay_server::service::sftp::{self, Standing};
use ocpay_store::{SftpAccount, SftpLoginOutcome};
use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::accounts::{address_allowed, key_matches, verify_password};
use crate::files::Files;
use crate::server::{Shared, Slot};

/// Session channels one connection may open (each may run one SFTP subsystem).
const CHANNELS_MAX: usize = 4;

enum Credential<'a> {
    /// A key offered; `verified` once the client proved it holds it.
    Key {
        key: &'a PublicKey,
        verified: bool,
    },
    Password(&'a str),
}

/// Why a login was refused, as the audit trail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Locked,
    Disabled,
    AddressNotAllowed,
    WrongKey,
    WrongPassword,
    TooManySessions,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Refusal::Locked => "LOCKED",
            Refusal::Disabled => "DISABLED",
            Refusal::AddressNotAllowed => "ADDRESS_NOT_ALLOWED",
            Refusal::WrongKey => "WRONG_KEY",
            Refusal::WrongPassword => "WRONG_PASSWORD",
            Refusal::TooManySessions => "TOO_MANY_SESSIONS",
        }
    }
}

pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    authenticated: Arc<AtomicBool>,
    /// Who logged in, and the session slot it holds until the connection ends.
    login: Option<(ClientId, Slot<ClientId>)>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, peer: SocketAddr, authenticated: Arc<AtomicBool>) -> Connection {
        Connection { shared, peer, authenticated, login: None, channels: HashMap::new() }
    }

    async fn refuse(&self, client_id: &ClientId, refusal: Refusal) -> Result<Auth, anyhow::Error> {
        tracing::info!(client_id = %client_id, peer = %self.peer, reason = refusal.code(), "sftp login refused");
        self.shared
            .audit(client_id, client_id, crate::AUDIT_LOGIN, self.peer.ip().to_string(), "F", refusal.code())
            .await?;
        Ok(Auth::reject())
    }

    /// Decides a login attempt. A key merely offered (not yet proven) is accepted without a
    /// trace so that the client goes on to prove it; the proof is the login.
    async fn attempt(&mut self, user: &str, credential: Credential<'_>) -> Result<Auth, anyhow::Error> {
        let shared = self.shared.clone();
        let account = match ClientId::parse(user) {
            Ok(client_id) => shared.store().sftp_account(&client_id).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            // No client id to record in the audit trail: the log says it.
            tracing::info!(user = ?user, peer = %self.peer, "sftp login refused: unknown user");
            return Ok(Auth::reject());
        };
        let client_id = account.client_id.clone();
        if let Some(refusal) = self.standing(&account) {
            return self.refuse(&client_id, refusal).await;
        }
        match credential {
            Credential::Key { key, verified } => {
                if !key_matches(&account.public_keys, key) {
                    return self.refuse(&client_id, Refusal::WrongKey).await;
                }
                if !verified {
                    return Ok(Auth::Accept);
                }
            }
            // An account without a password is refused at once, and the guess is not counted:
            // password guesses must not lock out an account that logs in with a key.
            Credential::Password(_) if account.password_hash.is_none() => {
                return self.refuse(&client_id, Refusal::WrongPassword).await;
            }
            Credential::Password(password) => {
                // The attempt counts as a failure before the password is checked, so that
                // guesses made at once stop at the limit: the one that locks is still checked,
                // those after it are not. A right password clears the count below.
                let now = shared.clock().now();
                let settings = &shared.settings;
                let locked_until = now.checked_add(settings.lockout).unwrap_or(now);
                if !shared
                    .store()
                    .sftp_login_attempt(&client_id, settings.login_failures_max, locked_until, now)
                    .await?
                {
                    return self.refuse(&client_id, Refusal::Locked).await;
                }
                let hash = account.password_hash.clone();
                let password = password.to_owned();
                // Argon2 takes tens of milliseconds of CPU: off the async threads.
                let right = tokio::task::spawn_blocking(move || {
                    hash.is_some_and(|hash| verify_password(&hash, &password))
                })
                .await?;
                if !right {
                    return self.refuse(&client_id, Refusal::WrongPassword).await;
                }
            }
        }
        // The credential is proven: the success is recorded (clearing the failure a password
        // attempt counted) even when the session limit then refuses the session, so that an
        // account at its limit is not locked by its own right password.
        let now = shared.clock().now();
        shared.store().record_sftp_login(&client_id, SftpLoginOutcome::Succeeded, now).await?;
        let Some(slot) = shared.sessions.take(&client_id, shared.settings.sessions_per_account_max) else {
            return self.refuse(&client_id, Refusal::TooManySessions).await;
        };
        shared
            .audit(&client_id, &client_id, crate::AUDIT_LOGIN, self.peer.ip().to_string(), "S", "SUCCESS")
            .await?;
        tracing::info!(client_id = %client_id, peer = %self.peer, "sftp login");
        self.login = Some((client_id, slot));
        self.authenticated.store(true, Ordering::Release);
        Ok(Auth::Accept)
    }

    /// Whether the account may log in at all now, whatever the credential.
    fn standing(&self, account: &SftpAccount) -> Option<Refusal> {
        let now = self.shared.clock().now();
        match sftp::standing(account, now, self.shared.settings.unused_max) {
            Standing::Locked(_) => return Some(Refusal::Locked),
            Standing::Disabled => return Some(Refusal::Disabled),
            Standing::Active => {}
        }
        if !address_allowed(&account.allowed_networks, self.peer.ip()) {
            return Some(Refusal::AddressNotAllowed);
        }
        None
    }
}

impl russh::server::Handler for Connection {
    type Error = anyhow::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        self.attempt(user, Credential::Password(password)).await
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        self.attempt(user, Credential::Key { key: offer.public_key, verified: false }).await
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        self.attempt(user, Credential::Key { key: key.public_key, verified: true }).await
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping `reply` refuses the channel.
        if self.login.is_some() && self.channels.len() < CHANNELS_MAX {
            self.channels.insert(channel.id(), channel);
            reply.accept().await;
        }
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((login, _)) = &self.login else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        match (name, self.channels.remove(&channel)) {
            ("sftp", Some(open)) => {
                session.channel_success(channel)?;
                let files = Files::new(self.shared.clone(), login.clone());
                russh_sftp::server::run(Fused::new(open.into_stream()), files).await;
            }
            (_, open) => {
                if let Some(open) = open {
                    self.channels.insert(channel, open);
                }
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }
}

/// A channel stream that reads as ended after its first error. The SFTP loop of `russh-sftp`
/// stops at the end of its stream but logs any other error and reads again, which on a broken
/// stream would spin.
struct Fused<S> {
    inner: S,
    failed: bool,
}

impl<S> Fused<S> {
    fn new(inner: S) -> Fused<S> {
        Fused { inner, failed: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Fused<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "sftp channel failed");
                this.failed = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fused<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Err(_)) = &result {
            this.failed = true;
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Err(_)) = &result {
            this.failed = true;
        }
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
