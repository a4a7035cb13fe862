//! `ocpay logs tail`: follows the participant's API log as JSON lines while it runs, as
//! `stripe logs tail` does: the newest entries first, then each new one as it arrives, polled
//! with ocpay's own signed API (`apiLogInquiry`), authenticated like every participant call.

use std::process::ExitCode;
use std::time::Duration;

use ocpay_protocol::ResultStatus;
use ocpay_protocol::api_log::{ApiLogInquiryRequest, ApiLogRecord, INQUIRY_LIMIT_MAX};

use crate::calls::ClientArgs;

#[derive(clap::Subcommand)]
pub(crate) enum LogsCommand {
    /// Print the API log of the profile's participant as JSON lines: its newest entries, then
    /// each new one as the platform receives it, until interrupted.
    Tail(TailArgs),
}

#[derive(clap::Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only requests to this API (`pay`, `inquiryPayment`, ..., or the path of a request that
    /// named none).
    #[arg(long)]
    api: Option<String>,
    /// Only requests answered with this result code (`SIGNATURE_INVALID`, ...).
    #[arg(long)]
    result: Option<String>,
    /// How many of the newest entries to print first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(INQUIRY_LIMIT_MAX)))]
    last: u32,
    /// How long to wait between polls: 500ms, 1s, 5s ...
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Print the newest entries and exit instead of following the log.
    #[arg(long)]
    once: bool,
}

pub(crate) async fn run(command: LogsCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogsCommand::Tail(args) => tail(args).await,
    }
}

async fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.sdk_client()?;
    // None until the first answer: the newest entries, then everything after the last seen.
    let mut after_id: Option<String> = None;
    loop {
        let limit = if after_id.is_none() { args.last } else { INQUIRY_LIMIT_MAX };
        let request = ApiLogInquiryRequest {
            after_id: after_id.clone(),
            api: args.api.clone(),
            result_code: args.result.clone(),
            limit: Some(limit.to_string()),
        };
        let mut full_page = false;
        match client.api_log(&request).await {
            Ok(response) if response.result.result_status == ResultStatus::S => {
                let entries = response.entries.unwrap_or_default();
                for entry in &entries {
                    crate::print_stdout(&(line(entry).to_string() + "\n"))?;
                }
                full_page = entries.len() >= limit as usize;
                after_id = response.next_after_id.or(after_id);
                if args.once {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(response) => {
                let result = &response.result;
                eprintln!(
                    "apiLogInquiry: {} / {} ({})",
                    result.result_status.as_str(),
                    result.result_code,
                    result.result_message
                );
                // A refusal (an unknown client, a key that may not inquire) will not go away.
                if args.once || result.result_status == ResultStatus::F {
                    let code =
                        if result.result_status == ResultStatus::F { crate::EXIT_F } else { crate::EXIT_U };
                    return Ok(ExitCode::from(code));
                }
            }
            Err(error) if args.once => return Err(error.into()),
            Err(error) => {
                eprintln!("apiLogInquiry: {error}; trying again in {} ms", args.interval.as_millis())
            }
        }
        // A full page means more is waiting: ask again at once.
        if full_page {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// One entry as one line: id, time, API, result, HTTP status, latency, whether it verified and
/// with which key, and why its signature did not verify, if that is what failed.
fn line(entry: &ApiLogRecord) -> serde_json::Value {
    let mut line = serde_json::json!({
        "id": entry.id,
        "requestId": entry.request_id,
        "time": entry.time,
        "api": entry.api,
        "resultStatus": entry.result_status,
        "resultCode": entry.result_code,
        "httpStatus": entry.http_status,
        "latencyMicros": entry.latency_micros,
        "verified": entry.verified,
        "keyVersion": entry.key_version,
    });
    if let Some(diagnosis) = &entry.diagnosis {
        line["signatureCause"] = serde_json::Value::from(diagnosis.cause.as_str());
        line["signatureMessage"] = serde_json::Value::from(diagnosis.message.as_str());
    }
    line
}

/// `500ms`, `1s`, `2s`: a pause of at least 100 ms.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let error = || format!("{text:?} is not an interval like 500ms, 1s or 5s (at least 100ms)");
    let millis = match (text.strip_suffix("ms"), text.strip_suffix('s')) {
        (Some(number), _) => number.parse::<u64>().ok(),
        (None, Some(number)) => number.parse::<u64>().ok().and_then(|seconds| seconds.checked_mul(1_000)),
        (None, None) => None,
    };
    millis.filter(|millis| *millis >= 100).map(Duration::from_millis).ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        for wrong in ["", "1", "50ms", "1m", "-1s", "1.5s"] {
            assert!(parse_interval(wrong).is_err(), "{wrong:?}");
        }
    }
}
