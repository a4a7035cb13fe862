//! `ocpay users ...`: the developer center's users, and with `--operator` the operator's
//! console's operators. Like `ocpay participant`, they work on the data directory (and its
//! database) directly, so they work while the server runs.

use std::io::Read as _;

use anyhow::Context as _;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;
use ocpay_store::{OperatorUser, PortalUser};
use ocpay_web::auth::Passwords;
use ocpay_web::users;
use serde_json::{Value, json};

use crate::NotFound;
use crate::data::DataArgs;
use crate::participant::parse_client_id;

#[derive(clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a user of a participant: with --password-stdin it can sign in at once; without,
    /// it gets a one-time link (printed once) to set its password.
    Create(CreateArgs),
    /// List the users (of one participant with --client-id; the operators with --operator),
    /// never their secrets.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id, conflicts_with = "operator")]
        client_id: Option<ClientId>,
        #[arg(long)]
        operator: bool,
    },
    /// Print a new one-time link for a user (an operator with --operator) who has not set a
    /// password yet (the earlier link stops working).
    Link {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        operator: bool,
    },
    /// Disable a user (an operator with --operator): its sessions end at once and it cannot
    /// sign in again.
    Disable {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        operator: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The participant the user belongs to (not with --operator).
    #[arg(long, value_parser = parse_client_id, required_unless_present = "operator", conflicts_with = "operator")]
    client_id: Option<ClientId>,
    #[arg(long)]
    email: String,
    /// owner (everything, keys and grants included), developer (keys, settings, logs, sandbox
    /// tests) or viewer (reads only); not with --operator.
    #[arg(long, value_parser = parse_role, required_unless_present = "operator", conflicts_with = "operator")]
    role: Option<Role>,
    /// An operator of the console at /console/, who belongs to no participant (and must turn
    /// on two-factor sign-in before anything else there).
    #[arg(long)]
    operator: bool,
    /// Read the password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse_any_case(text).ok_or_else(|| "one of owner, developer, viewer".to_owned())
}

/// Where the developer center is reached: the public URL, or the address the server listens on.
fn public_url(config: &ocpay_server::Config) -> String {
    config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.listen))
}

fn user_json(user: &PortalUser) -> Value {
    json!({
        "userId": user.user_id,
        "clientId": user.client_id.as_str(),
        "email": user.email,
        "role": user.role.as_str(),
        "password": user.password_hash.is_some(),
        "totp": user.totp_secret.is_some(),
        "disabledAt": user.disabled_at.map(|at| at.to_string()),
        "lockedUntil": user.locked_until.map(|at| at.to_string()),
        "lastSignInAt": user.last_sign_in_at.map(|at| at.to_string()),
        "createdAt": user.created_at.to_string(),
    })
}

fn operator_json(operator: &OperatorUser) -> Value {
    json!({
        "userId": operator.user_id,
        "operator": true,
        "email": operator.email,
        "password": operator.password_hash.is_some(),
        "totp": operator.totp_secret.is_some(),
        "disabledAt": operator.disabled_at.map(|at| at.to_string()),
        "lockedUntil": operator.locked_until.map(|at| at.to_string()),
        "lastSignInAt": operator.last_sign_in_at.map(|at| at.to_string()),
        "createdAt": operator.created_at.to_string(),
    })
}

fn no_one(email: &str) -> anyhow::Error {
    NotFound(format!("no user has the email {email}")).into()
}

/// `ocpay users ... --operator`.
async fn run_operators(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create(args) => create(args).await,
        UsersCommand::List { data, .. } => {
            let (_, _, store) = data.open().await?;
            let operators = store.operators().await?;
            crate::print_json(&json!({ "users": operators.iter().map(operator_json).collect::<Vec<_>>() }))
        }
        UsersCommand::Link { data, email, .. } => {
            let config = data.config()?;
            let (settings, _, store) = data.open().await?;
            let normal = users::normalise_email(&email)?;
            let operator = store.operator_by_email(&normal).await?.ok_or_else(|| no_one(&email))?;
            let now = jiff::Timestamp::now();
            let (operator, token) =
                users::new_operator_link(&*store, &settings.portal, now, &operator).await?;
            let mut output = operator_json(&operator);
            output["setupLink"] = json!(users::operator_setup_link(&public_url(&config), &token));
            output["setupLinkExpiresAt"] = json!((now + settings.portal.setup_link).to_string());
            crate::print_json(&output)
        }
        UsersCommand::Disable { data, email, .. } => {
            let (_, _, store) = data.open().await?;
            match users::disable_operator(&*store, jiff::Timestamp::now(), &email).await {
                Ok(operator) => crate::print_json(&operator_json(&operator)),
                Err(users::UserError::NoUser) => Err(no_one(&email)),
                Err(error) => Err(error.into()),
            }
        }
    }
}

pub(crate) async fn run(command: UsersCommand) -> anyhow::Result<()> {
    let operator = match &command {
        UsersCommand::Create(args) => args.operator,
        UsersCommand::List { operator, .. }
        | UsersCommand::Link { operator, .. }
        | UsersCommand::Disable { operator, .. } => *operator,
    };
    if operator {
        return run_operators(command).await;
    }
    match command {
        UsersCommand::Create(args) => create(args).await,
        UsersCommand::List { data, client_id, .. } => {
            let (_, _, store) = data.open().await?;
            let users = store.portal_users(client_id.as_ref()).await?;
            crate::print_json(&json!({ "users": users.iter().map(user_json).collect::<Vec<_>>() }))
        }
        UsersCommand::Link { data, email, .. } => {
            let config = data.config()?;
            let (settings, _, store) = data.open().await?;
            let normal = users::normalise_email(&email)?;
            let Some(user) = store.portal_user_by_email(&normal).await? else {
                return Err(NotFound(format!("no user has the email {email}")).into());
            };
            let now = jiff::Timestamp::now();
            let (user, token) = users::new_link(&*store, &settings.portal, now, &user).await?;
            let mut output = user_json(&user);
            output["setupLink"] = json!(users::setup_link(&public_url(&config), &token));
            output["setupLinkExpiresAt"] = json!((now + settings.portal.setup_link).to_string());
            crate::print_json(&output)
        }
        UsersCommand::Disable { data, email, .. } => {
            let (_, _, store) = data.open().await?;
            match users::disable(&*store, jiff::Timestamp::now(), &email).await {
                Ok(user) => crate::print_json(&user_json(&user)),
                Err(users::UserError::NoUser) => {
                    Err(NotFound(format!("no user has the email {email}")).into())
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("read the password from stdin")?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        Some(password.strip_suffix('\r').unwrap_or(password).to_owned())
    } else {
        None
    };
    let config = args.data.config()?;
    let (settings, _, store) = args.data.open().await?;
    let passwords = Passwords::new(settings.portal.argon2_memory_kib, settings.portal.argon2_iterations);
    let now = jiff::Timestamp::now();
    let (Some(client_id), Some(role)) = (&args.client_id, args.role) else {
        let created = users::create_operator(
            &*store,
            &passwords,
            &settings.portal,
            now,
            &args.email,
            password.as_deref(),
        )
        .await?;
        let mut output = json!({
            "userId": created.operator.user_id,
            "operator": true,
            "email": created.operator.email,
        });
        if let Some(token) = &created.setup_token {
            output["setupLink"] = json!(users::operator_setup_link(&public_url(&config), token));
            output["setupLinkExpiresAt"] = json!((now + settings.portal.setup_link).to_string());
        }
        return crate::print_json(&output);
    };
    let created = users::create(
        &*store,
        &passwords,
        &settings.portal,
        now,
        users::NewUser { client_id, email: &args.email, role, password: password.as_deref() },
    )
    .await;
    let created = match created {
        Err(users::UserError::NoParticipant) => {
            return Err(NotFound(format!("no participant has the client id {client_id}")).into());
        }
        other => other?,
    };
    let mut output = json!({
        "userId": created.user.user_id,
        "clientId": created.user.client_id.as_str(),
        "email": created.user.email,
        "role": created.user.role.as_str(),
    });
    if let Some(token) = &created.setup_token {
        output["setupLink"] = json!(users::setup_link(&public_url(&config), token));
        output["setupLinkExpiresAt"] = json!((now + settings.portal.setup_link).to_string());
    }
    crate::print_json(&output)
}
