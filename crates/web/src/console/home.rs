//! The console's overview: what waits for an operator.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::home::Chart;
use crate::pages::{PageResult, render};

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    chrome: Chrome,
    registrations_processing: u64,
    suspended: u64,
    /// The platform's last 30 days (`activity`).
    charts: Vec<Chart>,
}

pub(super) async fn page(State(portal): State<Arc<Portal>>, operator: Operator) -> PageResult {
    let charts = super::activity::platform_charts(&portal).await?;
    Ok(render(&Home {
        chrome: Chrome::new(&operator, "/console/"),
        registrations_processing: 0,
        suspended: 0,
        charts,
    }))
}
