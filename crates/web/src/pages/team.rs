//! The participant's users (`/portal/team`): who they are, their role, second factor, last
//! sign-in and whether they are disabled; an owner invites a user by email and role (a one-time
//! link to set a password, shown once: how a merchant brings in a system integrator, as a
//! developer), changes a role and disables a user, never itself, so a participant always keeps
//! the owner who acts.
//!
//! Users are made and disabled through the use cases the CLI's `ocpay users` shares
//! ([`crate::users`]); a change of role or a disabled account ends that user's sessions at once
//! (the store does it in the same transaction).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use ocpay_core::portal::{Action, Role};
use ocpay_store::{PortalUser, PortalUserChange};
use serde::Deserialize;

use super::{Chrome, PageError, PageResult, done, may_change, render, utc_minute};
use crate::Portal;
use crate::session::Signed;
use crate::users::{self, NewUser, UserError};

/// One user as the table shows it.
struct Member {
    user_id: String,
    email: String,
    role: &'static str,
    totp: bool,
    /// No password yet: the one-time link has not been used.
    invited: bool,
    last_sign_in: Option<String>,
    disabled: Option<String>,
    is_self: bool,
    /// The roles to change to, each with whether it is the user's now.
    roles: Vec<(&'static str, bool)>,
}

/// A user just invited: the link to show once.
struct Invited {
    email: String,
    role: &'static str,
    link: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "team.html")]
struct Team {
    chrome: Chrome,
    members: Vec<Member>,
    /// The last email shown, when more follow.
    next: Option<String>,
    may_manage: bool,
    invited: Option<Invited>,
    error: Option<String>,
    /// The invite form as typed (after a refusal), and its role choices.
    email: String,
    roles: Vec<(&'static str, bool)>,
}

/// What the page shows besides the users.
#[derive(Default)]
struct Shown {
    invited: Option<Invited>,
    /// A refused invitation's email and role as typed, with the refusal.
    refused: Option<(String, String, String)>,
    notice: Option<&'static str>,
}

fn role_choices(current: &str) -> Vec<(&'static str, bool)> {
    Role::ALL.iter().map(|role| (role.as_str(), role.as_str() == current)).collect()
}

async fn team_page(portal: &Portal, signed: &Signed, after: Option<&str>, shown: Shown) -> PageResult {
    let page_size = portal.settings().page_size;
    let client_id = &signed.participant.client_id;
    let mut users = portal.app.store.portal_users_page(client_id, after, page_size.saturating_add(1)).await?;
    let more = users.len() > page_size as usize;
    users.truncate(page_size as usize);
    let next = if more { users.last().map(|user| user.email.clone()) } else { None };
    let members = users
        .into_iter()
        .map(|user| Member {
            is_self: user.user_id == signed.user.user_id,
            roles: role_choices(user.role.as_str()),
            role: user.role.as_str(),
            totp: user.totp_secret.is_some(),
            invited: user.password_hash.is_none(),
            last_sign_in: user.last_sign_in_at.map(utc_minute),
            disabled: user.disabled_at.map(utc_minute),
            email: user.email,
            user_id: user.user_id,
        })
        .collect();
    let (email, role, error) = match shown.refused {
        Some((email, role, error)) => (email, role, Some(error)),
        None => (String::new(), Role::Developer.as_str().to_owned(), None),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut chrome = Chrome::new(signed, "/portal/team");
    chrome.notice = shown.notice.map(str::to_owned);
    let page = Team {
        chrome,
        members,
        next,
        may_manage: signed.may(Action::ManageUsers).is_ok(),
        invited: shown.invited,
        error,
        email,
        roles: role_choices(&role),
    };
    Ok((status, render(&page)).into_response())
}

#[derive(Deserialize)]
pub(super) struct TeamQuery {
    /// Shows the users after this email (the pager's link).
    after: Option<String>,
    done: Option<String>,
}

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<TeamQuery>,
) -> PageResult {
    let notice = match query.done.as_deref() {
        Some("role") => {
            Some("Role changed. That user's sessions ended: the new role applies from their next sign-in.")
        }
        Some("disabled") => Some("User disabled: signed out everywhere, and cannot sign in again."),
        _ => None,
    };
    team_page(&portal, &signed, query.after.as_deref(), Shown { notice, ..Shown::default() }).await
}

#[derive(Deserialize)]
pub(super) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "role: must be owner, developer or viewer".to_owned())
}

pub(super) async fn invite(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageUsers, "portal.inviteUser").await?;
    let refused = |message: String| {
        let shown =
            Shown { refused: Some((form.email.clone(), form.role.clone(), message)), ..Shown::default() };
        team_page(&portal, &signed, None, shown)
    };
    let role = match parse_role(&form.role) {
        Ok(role) => role,
        Err(message) => return refused(message).await,
    };
    let client_id = &signed.participant.client_id;
    let now = portal.app.clock.now();
    let new = NewUser { client_id, email: &form.email, role, password: None };
    let created =
        match users::create(&*portal.app.store, &portal.passwords, portal.settings(), now, new).await {
            Ok(created) => created,
            Err(UserError::Store(error)) => return Err(error.into()),
            Err(error) => return refused(error.to_string()).await,
        };
    let on = format!("{} as {}", created.user.email, role.as_str());
    portal.audit_on(client_id, "portal.inviteUser", &signed.user.email, &on, "SUCCESS").await;
    let token =
        created.setup_token.ok_or_else(|| PageError::Internal("an invitation without a link".into()))?;
    let setup = created.user.setup.as_ref().map(|setup| utc_minute(setup.expires_at)).unwrap_or_default();
    // Answered here rather than redirected: the link is shown this once and kept nowhere.
    let invited = Invited {
        email: created.user.email,
        role: role.as_str(),
        link: users::setup_link(&portal.app.public_url, &token),
        expires: setup,
    };
    team_page(&portal, &signed, None, Shown { invited: Some(invited), ..Shown::default() }).await
}

/// A new one-time link for an invited user who lost theirs (the earlier one stops working),
/// shown once as an invitation is.
pub(super) async fn new_link(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageUsers, "portal.newLink").await?;
    let user = colleague(&portal, &signed, &user_id, "send a link to").await?;
    let now = portal.app.clock.now();
    let (user, token) = match users::new_link(&*portal.app.store, portal.settings(), now, &user).await {
        Ok(made) => made,
        Err(UserError::Store(error)) => return Err(error.into()),
        Err(error) => return Err(PageError::Invalid(error.to_string())),
    };
    let client_id = &signed.participant.client_id;
    portal.audit_on(client_id, "portal.newLink", &signed.user.email, &user.email, "SUCCESS").await;
    let invited = Invited {
        expires: utc_minute(now + portal.settings().setup_link),
        link: users::setup_link(&portal.app.public_url, &token),
        role: user.role.as_str(),
        email: user.email,
    };
    team_page(&portal, &signed, None, Shown { invited: Some(invited), ..Shown::default() }).await
}

/// Another user of the session's participant: a user of another participant, or the signed-in
/// user itself, answers as a missing one would or as refused.
async fn colleague(
    portal: &Portal,
    signed: &Signed,
    user_id: &str,
    what: &str,
) -> Result<PortalUser, PageError> {
    let user = portal
        .app
        .store
        .portal_user(user_id)
        .await?
        .filter(|user| user.client_id == signed.participant.client_id)
        .ok_or(PageError::NotFound)?;
    if user.user_id == signed.user.user_id {
        return Err(PageError::Invalid(format!(
            "You cannot {what} your own account: another owner of this participant can."
        )));
    }
    Ok(user)
}

#[derive(Deserialize)]
pub(super) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn change_role(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RoleForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageUsers, "portal.changeRole").await?;
    let user = colleague(&portal, &signed, &user_id, "change the role of").await?;
    let role = parse_role(&form.role).map_err(PageError::Invalid)?;
    if role == user.role {
        return Ok(done("/portal/team"));
    }
    let change = PortalUserChange { role: Some(role), ..PortalUserChange::default() };
    portal.app.store.update_portal_user(&user.user_id, &change).await?.ok_or(PageError::NotFound)?;
    let on = format!("{} as {}", user.email, role.as_str());
    let client_id = &signed.participant.client_id;
    portal.audit_on(client_id, "portal.changeRole", &signed.user.email, &on, "SUCCESS").await;
    Ok(done("/portal/team?done=role"))
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn disable(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageUsers, "portal.disableUser").await?;
    let user = colleague(&portal, &signed, &user_id, "disable").await?;
    if user.disabled_at.is_none() {
        match users::disable(&*portal.app.store, portal.app.clock.now(), &user.email).await {
            Ok(_) => {}
            Err(UserError::Store(error)) => return Err(error.into()),
            Err(UserError::NoUser) => return Err(PageError::NotFound),
            Err(error) => return Err(PageError::Internal(error.to_string())),
        }
        let client_id = &signed.participant.client_id;
        portal.audit_on(client_id, "portal.disableUser", &signed.user.email, &user.email, "SUCCESS").await;
    }
    Ok(done("/portal/team?done=disabled"))
}
