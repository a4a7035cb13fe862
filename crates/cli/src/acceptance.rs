//! `ocpay acceptance --client-id ID`: a participant's go-live readiness (the sandbox twin's
//! acceptance cases, checked from its own traffic, and the live twin's checklist) as JSON, with
//! an exit code a script can wait on. Works on the data directory, beside a running server.

use std::process::ExitCode;
use std::sync::Arc;

use ocpay_core::ids::ClientId;
use ocpay_server::clock::SystemClock;
use ocpay_server::service::Context;
use ocpay_server::service::acceptance::{go_live, twins};

use crate::NotFound;
use crate::data::DataArgs;
use crate::participant::parse_client_id;

/// The exit code while an acceptance case is open.
pub(crate) const EXIT_CASE_OPEN: u8 = 5;
/// The exit code when every case passed but an item of the checklist is left (the live key, the
/// notify URL's test notification, SFTP).
pub(crate) const EXIT_CHECKLIST_OPEN: u8 = 6;

#[derive(clap::Args)]
pub(crate) struct AcceptanceArgs {
    /// The sandbox participant SANDBOX_X or its live twin X: either names both.
    #[arg(long, value_parser = parse_client_id)]
    client_id: ClientId,
    #[command(flatten)]
    data: DataArgs,
}

/// Prints the go-live report; exits 0 when ready to go live, [`EXIT_CASE_OPEN`] while a case
/// is open, [`EXIT_CHECKLIST_OPEN`] when only the checklist is left.
pub(crate) async fn run(args: AcceptanceArgs) -> anyhow::Result<ExitCode> {
    let (settings, _, store) = args.data.open().await?;
    let (sandbox, live) = twins(&args.client_id)?;
    if store.participant(&sandbox).await?.is_none() && store.participant(&live).await?.is_none() {
        return Err(NotFound(format!("there is no participant {sandbox} or {live}")).into());
    }
    let context = Context::new(store, Arc::new(SystemClock), settings);
    let report = go_live(&context, &args.client_id).await?;
    crate::print_json(&serde_json::to_value(&report)?)?;
    Ok(ExitCode::from(if !report.cases_passed {
        EXIT_CASE_OPEN
    } else if !report.ready {
        EXIT_CHECKLIST_OPEN
    } else {
        0
    }))
}
