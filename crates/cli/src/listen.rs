//! `ocpay listen`: a local notification receiver for development, like `stripe listen`. It
//! verifies each notification's signature with the platform's public key, prints it,
//! acknowledges it, and optionally forwards it to your application (whose answer then becomes
//! the acknowledgement the platform sees).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ocpay_protocol::VerifyingKey;
use ocpay_sdk::webhook::{self, Delivery};
use serde_json::json;

#[derive(clap::Args)]
pub(crate) struct ListenArgs {
    /// Port on 127.0.0.1 to receive on; use `http://127.0.0.1:<port>/` as the notify URL.
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Also send each notification (body and signature headers as received) to this URL.
    #[arg(long)]
    forward_to: Option<String>,
    /// The platform's public key (PEM or base64).
    #[arg(long, env = "OCPAY_PLATFORM_KEY", conflicts_with = "profile")]
    platform_key: Option<PathBuf>,
    /// A profile whose platform_key to use.
    #[arg(long, env = "OCPAY_PROFILE")]
    profile: Option<PathBuf>,
}

struct Listener {
    platform_key: VerifyingKey,
    forward_to: Option<String>,
    http: reqwest::Client,
}

pub(crate) async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let key_path = match (&args.platform_key, &args.profile) {
        (Some(path), _) => path.clone(),
        (None, Some(profile)) => {
            let text =
                std::fs::read_to_string(profile).with_context(|| format!("read {}", profile.display()))?;
            let profile: crate::calls::Profile = toml::from_str(&text)?;
            let key =
                profile.platform_key.ok_or_else(|| anyhow::anyhow!("the profile has no platform_key"))?;
            if key.is_relative() {
                args.profile
                    .as_deref()
                    .and_then(|p| p.parent())
                    .unwrap_or(std::path::Path::new("."))
                    .join(key)
            } else {
                key
            }
        }
        (None, None) => anyhow::bail!("give --platform-key or --profile (to verify signatures)"),
    };
    let text = std::fs::read_to_string(&key_path).with_context(|| format!("read {}", key_path.display()))?;
    let platform_key = VerifyingKey::from_text(&text).context("parse the platform key")?;
    let http = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(10)).build()?;
    let state = Arc::new(Listener { platform_key, forward_to: args.forward_to, http });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("bind port {}", args.port))?;
    eprintln!("listening on http://{}/ : use it as the notify URL; Ctrl-C stops", listener.local_addr()?);
    axum::serve(listener, Router::new().fallback(receive).with_state(state)).await?;
    Ok(())
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header =
        |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let (client_id, request_time, signature) =
        (header("client-id"), header("request-time"), header("signature"));
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |path| path.as_str().to_owned());
    let delivery = Delivery {
        path: &path,
        client_id: &client_id,
        request_time: &request_time,
        signature: &signature,
        body: &body,
    };
    let verified = webhook::verify(&listener.platform_key, &delivery);
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let line = json!({
        "notifyId": header("notify-id"),
        "clientId": client_id,
        "path": path,
        "verified": verified.is_ok(),
        "error": verified.as_ref().err().map(ToString::to_string),
        "body": parsed,
    });
    if let Err(error) = crate::print_stdout(&format!("{line}\n")) {
        eprintln!("error: {error:#}");
    }
    if verified.is_err() {
        // Refusing makes the platform retry: a forged or garbled message is never acknowledged.
        let refusal = json!({"result": {"resultCode": "SIGNATURE_INVALID", "resultStatus": "F", "resultMessage": "signature does not verify"}});
        return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
    }
    let Some(target) = &listener.forward_to else {
        return (StatusCode::OK, [("content-type", "application/json")], webhook::ACK).into_response();
    };
    let mut forward = listener.http.post(target).body(body.clone());
    for name in ["content-type", "client-id", "request-time", "signature", "notify-id"] {
        if let Some(value) = headers.get(name) {
            forward = forward.header(name, value.clone());
        }
    }
    match forward.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = answer.text().await.unwrap_or_default();
            eprintln!("forwarded to {target}: HTTP {}", status.as_u16());
            (status, text).into_response()
        }
        Err(error) => {
            eprintln!("forwarding to {target} failed: {error}");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}
