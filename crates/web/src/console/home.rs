//! The console's overview: what waits for an operator.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::home::Chart;
use crate::pages::{PageResult, render};

/// The most registrations under review the overview counts (more shows as "100+").
const COUNTED_MAX: u32 = 100;

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    chrome: Chrome,
    registrations_processing: String,
    suspended: u64,
    /// The platform's last 30 days (`activity`).
    charts: Vec<Chart>,
}

pub(super) async fn page(State(portal): State<Arc<Portal>>, operator: Operator) -> PageResult {
    let store = &portal.app.store;
    let processing = store.all_registrations_page(Some("PROCESSING"), None, COUNTED_MAX + 1).await?.len();
    let registrations_processing =
        if processing > COUNTED_MAX as usize { format!("{COUNTED_MAX}+") } else { processing.to_string() };
    let suspended = store.suspended_participants().await?;
    let charts = super::activity::platform_charts(&portal).await?;
    Ok(render(&Home {
        chrome: Chrome::new(&operator, "/console/"),
        registrations_processing,
        suspended,
        charts,
    }))
}
