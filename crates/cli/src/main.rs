//! The `ocpay` command: serve the platform, manage participants and keys, and call the API
//! as a merchant would. Every command that prints data prints one JSON document on stdout;
//! logs go to stderr.

mod bench;
mod calls;
mod data;
mod grants;
mod keys;
mod listen;
mod notifications;
mod participant;
mod platform_key;
mod registrations;
mod serve;
mod wallet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Create and list participants, add keys to them and revoke keys.
    #[command(subcommand)]
    Participant(participant::ParticipantCommand),
    /// Authorise ISVs to act for merchants (Agent-Tokens), list and revoke grants.
    #[command(subcommand)]
    Grants(grants::GrantsCommand),
    /// List the audit trail of a participant's API requests, newest first.
    Audit(grants::AuditArgs),
    /// Print the platform's public key (PEM), which verifies its responses and notifications;
    /// rotate it, or retire an old version.
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
    /// Review acquirers' merchant registrations: list, approve, reject.
    #[command(subcommand)]
    Registrations(registrations::RegistrationsCommand),
    /// Pay order codes as a payer would, and manage payers and their stored value.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Receive notifications locally: verify, print, acknowledge, optionally forward.
    Listen(listen::ListenArgs),
    /// Show and resend the notifications of a payment, a refund or a registration.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Measure pay throughput against the machine's RSA ceiling (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
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
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => data::migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Participant(command) => participant::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::PlatformKey(args) => platform_key::run(args).map(|()| ExitCode::SUCCESS),
        Command::Grants(command) => grants::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => grants::audit(args).await.map(|()| ExitCode::SUCCESS),
        Command::Keys(command) => keys::run(command).map(|()| ExitCode::SUCCESS),
        Command::Pay(args) => calls::pay(*args).await,
        Command::Inquire(args) => calls::inquire(args).await,
        Command::Cancel(args) => calls::cancel(args).await,
        Command::Refund(args) => calls::refund(*args).await,
        Command::InquireRefund(args) => calls::inquire_refund(args).await,
        Command::Register(args) => calls::register(*args).await,
        Command::Registrations(command) => registrations::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Wallet(command) => wallet::run(command).await,
        Command::Listen(args) => listen::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Notifications(command) => notifications::run(command).await.map(|()| ExitCode::SUCCESS),
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
