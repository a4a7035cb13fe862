//! The home page: the participant's client id, the gateway's addresses, every published
//! platform key (to copy or download) and a quick start filled in with the user's own client
//! id for Alipay's Python SDK, the Rust SDK and the CLI.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header;

use super::{Chrome, PageError, PageResult, render};
use crate::Portal;
use crate::session::Signed;

pub(crate) struct PlatformKey {
    pub version: u64,
    pub signing: bool,
    pub pem: String,
}

/// The published platform keys, newest first.
pub(crate) fn platform_keys(portal: &Portal) -> Vec<PlatformKey> {
    let published = portal.app.published_platform_keys();
    let mut keys: Vec<PlatformKey> = published["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|key| PlatformKey {
            version: key["keyVersion"].as_u64().unwrap_or_default(),
            signing: key["signing"].as_bool().unwrap_or_default(),
            pem: key["publicKey"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    keys.sort_by_key(|key| std::cmp::Reverse(key.version));
    keys
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    chrome: Chrome,
    client_id: String,
    kind: &'static str,
    gateway: String,
    platform_keys: Vec<PlatformKey>,
    python: String,
    rust: String,
    cli: String,
}

pub(super) async fn page(State(portal): State<Arc<Portal>>, signed: Signed) -> PageResult {
    let client_id = signed.participant.client_id.to_string();
    let gateway = portal.app.public_url.clone();
    let keys = platform_keys(&portal);
    let signing_version = keys.iter().find(|key| key.signing).map_or(1, |key| key.version);
    let python = format!(
        "# pip install global-alipay-sdk-python (the official SDK, unchanged)\n\
         from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient\n\
         client = DefaultAlipayClient(\"{gateway}\", \"{client_id}\",\n\
         \x20   open(\"private-key.pem\").read(),  # your key, PKCS#1 body\n\
         \x20   open(\"platform-key-{signing_version}.pem\").read())  # from this page\n\
         response = client.execute(order_code_payment_request)"
    );
    let rust = format!(
        "let client = ocpay_sdk::Client::builder(\n\
         \x20   \"{gateway}\", \"{client_id}\",\n\
         \x20   SigningKey::from_text(&std::fs::read_to_string(\"private-key.pem\")?)?,\n\
         \x20   VerifyingKey::from_text(&std::fs::read_to_string(\"platform-key-{signing_version}.pem\")?)?,\n\
         ).build()?;\n\
         let answer = client.pay(&request).await?;"
    );
    let cli = format!(
        "cat > ocpay-profile.toml <<'TOML'\n\
         server_url = \"{gateway}\"\n\
         client_id = \"{client_id}\"\n\
         private_key = \"private-key.pem\"\n\
         platform_key = \"platform-key-{signing_version}.pem\"\n\
         TOML\n\
         ocpay pay --profile ocpay-profile.toml --amount 12.50 --currency USD\n\
         ocpay logs tail --profile ocpay-profile.toml"
    );
    Ok(render(&Home {
        chrome: Chrome::new(&signed, "/portal/"),
        client_id,
        kind: signed.participant.kind.as_str(),
        gateway,
        platform_keys: keys,
        python,
        rust,
        cli,
    }))
}

/// One platform key as a PEM download (`/portal/platform-key-<version>.pem`).
pub(super) async fn platform_key_file(
    State(portal): State<Arc<Portal>>,
    _signed: Signed,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let version = file
        .strip_prefix("platform-key-")
        .and_then(|rest| rest.strip_suffix(".pem"))
        .and_then(|version| version.parse::<u64>().ok())
        .ok_or(PageError::NotFound)?;
    let key =
        platform_keys(&portal).into_iter().find(|key| key.version == version).ok_or(PageError::NotFound)?;
    let disposition = format!("attachment; filename=\"platform-key-{version}.pem\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        key.pem,
    )
        .into_response())
}
