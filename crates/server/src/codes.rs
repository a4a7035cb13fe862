//! Where an order code points: the payer's URL (what the QR code encodes) and the URLs of
//! its rendered QR images. One place builds them, so the `pay` response and the routes that
//! serve them cannot drift apart.

use ocpay_core::ids::CodeToken;

/// The rendered QR image sizes a `pay` response offers, with their AMS display types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrSize {
    Small,
    Middle,
    Big,
}

impl QrSize {
    pub const ALL: [QrSize; 3] = [QrSize::Small, QrSize::Middle, QrSize::Big];

    pub fn name(self) -> &'static str {
        match self {
            QrSize::Small => "small",
            QrSize::Middle => "middle",
            QrSize::Big => "big",
        }
    }

    /// `codeDetails[].displayType` of an image of this size.
    pub fn display_type(self) -> &'static str {
        match self {
            QrSize::Small => "SMALLIMAGE",
            QrSize::Middle => "MIDDLEIMAGE",
            QrSize::Big => "BIGIMAGE",
        }
    }
}

/// Path prefix of order-code URLs.
pub const CODE_PATH: &str = "/c/";

/// The URL a payer's wallet opens: `<public url>/c/<token>`.
pub fn code_url(public_url: &str, token: &CodeToken) -> String {
    format!("{public_url}{CODE_PATH}{token}")
}

/// The URL of the PNG QR image of a code, in one size: `<public url>/c/<token>/qr-<size>.png`.
pub fn image_url(public_url: &str, token: &CodeToken, size: QrSize) -> String {
    format!("{}/qr-{}.png", code_url(public_url, token), size.name())
}
