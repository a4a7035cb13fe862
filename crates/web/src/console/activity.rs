//! The console home's charts: the platform's last 30 days of payments and refunds, API results
//! and notification delivery, drawn as the developer center's home draws a participant's
//! (`pages::home::activity_charts`), from the store's platform-wide reads of the same figures.

use crate::Portal;
use crate::pages::PageError;
use crate::pages::home::{Chart, ChartWindow, activity_charts};

/// The platform's charts of the last 30 days.
pub(crate) async fn platform_charts(portal: &Portal) -> Result<Vec<Chart>, PageError> {
    let store = &portal.app.store;
    let window = ChartWindow::at(portal)?;
    let activity = store.platform_activity(window.from, window.final_before).await?;
    let results = store.platform_api_results_by_day(window.from).await?;
    Ok(activity_charts(&window, &activity, &results))
}
