//! The `ocpay` command: serve the platform, manage participants and keys, and call the API
//! as a merchant would. Every command that prints data prints one JSON document on stdout;
//! logs go to stderr.

mod acceptance;
mod backup;
mod bench;
mod calls;
mod data;
mod grants;
mod keys;
mod listen;
mod logs;
mod notifications;
mod participant;
mod platform_key;
mod registrations;
mod serve;
mod settlements;
mod sftp;
mod trigger;
mod users;
mod wallet;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The exit code of an `F` result (and of a payment the wallet refused). 2 is clap's, for a
/// command line that does not parse; 1 is every other error (no verified answer, a file that
/// cannot be read, nothing by the id given).
pub(crate) const EXIT_F: u8 = 4;
/// The exit code of a `U` result: the outcome is unknown; retry the same request or inquire.
pub(crate) const EXIT_U: u8 = 3;
/// The exit code when stdout's reader went away (`ocpay ... | head`), as a shell reports a
/// process that SIGPIPE ended.
const EXIT_STDOUT_CLOSED: u8 = 141;

/// Nothing by the id a command was given exists: printed as a JSON error on stdout as well as
/// on stderr, so that a script reading stdout sees it.
#[derive(Debug)]
pub(crate) struct NotFound(pub(crate) String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

#[derive(Parser)]
#[command(name = "ocpay", version, about = "Order-code payments: the platform and its tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform (embedded SQLite in the data directory, or a shared PostgreSQL).
    Serve(serve::ServeArgs),
    /// Apply the database's pending migrations and exit (`serve` also applies them on start).
    Migrate(data::DataArgs),
    /// Write one archive (mode 0600) of an SQLite platform's data directory while it serves: its
    /// databases as of one moment, its keys, admin token, SFTP host key and reports.
    Backup(backup::BackupArgs),
    /// Make a new data directory (empty or absent) from an archive of `ocpay backup`, after
    /// checking every database in it.
    Restore(backup::RestoreArgs),
    /// Create and list participants, add keys to them and revoke keys.
    #[command(subcommand)]
    Participant(participant::ParticipantCommand),
    /// Authorise ISVs to act for merchants (Agent-Tokens), list and revoke grants.
    #[command(subcommand)]
    Grants(grants::GrantsCommand),
    /// List the audit trail of a participant's API requests, newest first.
    Audit(grants::AuditArgs),
    /// Print the platform's public key (PEM), which verifies its responses and notifications;
    /// rotate it, make a version the signing one, or retire one that no longer signs.
    PlatformKey(platform_key::PlatformKeyArgs),
    /// Generate RSA-2048 key pairs.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create an order code (`pay`).
    Pay(Box<calls::PayArgs>),
    /// Inquire a payment (`inquiryPayment`).
    Inquire(calls::PaymentRefArgs),
    /// Cancel a payment (`cancel`).
    Cancel(calls::PaymentRefArgs),
    /// Refund part or all of a paid payment (`refund`).
    Refund(Box<calls::RefundArgs>),
    /// Inquire a refund (`inquiryRefund`).
    InquireRefund(calls::RefundRefArgs),
    /// Register a secondary merchant's store as an acquirer (`registration`).
    Register(Box<calls::RegisterArgs>),
    /// Read where a registration stands as its acquirer (`inquiryRegistrationStatus`).
    InquireRegistration(calls::RegistrationStatusArgs),
    /// Read what was registered for a merchant (and store) as its acquirer
    /// (`inquiryRegistrationInfo`).
    InquireRegistrationInfo(calls::RegistrationInfoArgs),
    /// Review acquirers' merchant registrations: list, approve, reject.
    #[command(subcommand)]
    Registrations(registrations::RegistrationsCommand),
    /// Pay order codes as a payer would, and manage payers and their stored value.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Receive notifications locally: verify, print, acknowledge, optionally forward.
    Listen(listen::ListenArgs),
    /// Follow your API log: what reached the platform under your client id, and its answers.
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    /// Show and resend the notifications of a payment, a refund or a registration.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// A participant's go-live readiness: its sandbox acceptance cases, checked from its own
    /// traffic, and the go-live checklist, as JSON; exits 5 while a case is open, 6 while only
    /// the checklist is left.
    Acceptance(acceptance::AcceptanceArgs),
    /// Measure pay throughput against the machine's RSA ceiling (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Settle every day that has ended now, or (--now) a sandbox participant's transactions
    /// at once; prints the batches and the files written.
    Settle(settlements::SettleArgs),
    /// List settlement batches, show one, record a payout.
    #[command(subcommand)]
    Settlements(settlements::SettlementsCommand),
    /// Write the reconciliation files of a day again.
    #[command(subcommand)]
    Reports(settlements::ReportsCommand),
    /// Prove that a day's files, the ledger and the records agree, or match your order list
    /// against a report file; exits 1 when something differs.
    Reconcile(settlements::ReconcileArgs),
    /// Participants' SFTP accounts for their reconciliation files, and the server's host key.
    #[command(subcommand)]
    Sftp(sftp::SftpCommand),
    /// Run a whole sandbox scenario against your integration (payment.succeeded, refund.failed,
    /// ...; --list names them), printing each step; exits 0 when it ends as its name says.
    Trigger(Box<trigger::TriggerArgs>),
    /// The developer center's users: create (with a password or a one-time link), list, disable.
    #[command(subcommand)]
    Users(users::UsersCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` starts its logging once it has read `log_format` from its configuration.
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(ocpay_server::settings::LogFormat::Text, "warn");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            if let Some(NotFound(message)) = error.chain().find_map(|cause| cause.downcast_ref::<NotFound>())
            {
                let _ = print_json(&serde_json::json!({ "error": "NOT_FOUND", "message": message }));
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines go to stderr, at `default_level` unless `RUST_LOG` says otherwise: as text, or as
/// one JSON object a line whose `span` holds the request's id.
pub(crate) fn init_logging(format: ocpay_server::settings::LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        ocpay_server::settings::LogFormat::Text => builder.init(),
        ocpay_server::settings::LogFormat::Json => {
            builder.json().with_current_span(true).with_span_list(false).init();
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => data::migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Backup(args) => backup::backup(args).map(|()| ExitCode::SUCCESS),
        Command::Restore(args) => backup::restore(args).map(|()| ExitCode::SUCCESS),
        Command::Participant(command) => participant::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::PlatformKey(args) => platform_key::run(args).map(|()| ExitCode::SUCCESS),
        Command::Grants(command) => grants::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => grants::audit(args).await.map(|()| ExitCode::SUCCESS),
        Command::Logs(command) => logs::run(command).await,
        Command::Keys(command) => keys::run(command).map(|()| ExitCode::SUCCESS),
        Command::Pay(args) => calls::pay(*args).await,
        Command::Inquire(args) => calls::inquire(args).await,
        Command::Cancel(args) => calls::cancel(args).await,
        Command::Refund(args) => calls::refund(*args).await,
        Command::InquireRefund(args) => calls::inquire_refund(args).await,
        Command::Register(args) => calls::register(*args).await,
        Command::InquireRegistration(args) => calls::inquire_registration(args).await,
        Command::InquireRegistrationInfo(args) => calls::inquire_registration_info(args).await,
        Command::Registrations(command) => registrations::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Settle(args) => settlements::settle(args).await.map(|()| ExitCode::SUCCESS),
        Command::Settlements(command) => settlements::settlements(command).await.map(|()| ExitCode::SUCCESS),
        Command::Reports(command) => settlements::reports(command).await.map(|()| ExitCode::SUCCESS),
        Command::Reconcile(args) => settlements::reconcile(args).await,
        Command::Sftp(command) => sftp::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Users(command) => users::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Trigger(args) => trigger::run(*args).await,
        Command::Wallet(command) => wallet::run(command).await,
        Command::Listen(args) => listen::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Notifications(command) => notifications::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Acceptance(args) => acceptance::run(args).await,
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    print_stdout(&text)
}

/// Writes to stdout. When its reader has gone away (`| head`), the process ends at once and
/// quietly with [`EXIT_STDOUT_CLOSED`], as a command that SIGPIPE ends would, instead of
/// panicking as `println!` does.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(EXIT_STDOUT_CLOSED.into())
        }
        Err(error) => Err(anyhow::Error::new(error).context("write to stdout")),
    }
}
