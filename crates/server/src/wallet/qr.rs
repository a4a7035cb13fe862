//! QR images of order codes: PNG (drawn from the module matrix, encoded with `png`) and SVG.

use fast_qr::convert::Builder as _;
use fast_qr::convert::svg::SvgBuilder;
use fast_qr::qr::QRBuilder;

use crate::codes::QrSize;

/// Quiet zone around the code, in modules, as the QR standard asks.
const QUIET_MODULES: usize = 4;

/// Edge length of each image size, in pixels.
pub(crate) fn pixels(size: QrSize) -> usize {
    match size {
        QrSize::Small => 200,
        QrSize::Middle => 400,
        QrSize::Big => 800,
    }
}

/// The module matrix of `text` (dark = true), with its edge length in modules.
fn matrix(text: &str) -> Result<(Vec<bool>, usize), String> {
    let code = QRBuilder::new(text).ecl(fast_qr::ECL::M).build().map_err(|error| format!("{error:?}"))?;
    let size = code.size;
    let dark = (0..size * size).map(|index| code.data[index].value()).collect();
    Ok((dark, size))
}

/// A grayscale PNG of `text`'s QR code, exactly `pixels(size)` wide: whole pixels per module,
/// centred, the white border taking up what is left.
pub(crate) fn png(text: &str, size: QrSize) -> Result<Vec<u8>, String> {
    let (dark, modules) = matrix(text)?;
    let total = modules + 2 * QUIET_MODULES;
    let edge = pixels(size).max(total);
    let scale = edge / total;
    let offset = (edge - modules * scale) / 2;
    let mut pixels = vec![255u8; edge * edge];
    for y in 0..modules {
        for x in 0..modules {
            if !dark[y * modules + x] {
                continue;
            }
            for dy in 0..scale {
                let row = offset + y * scale + dy;
                let start = row * edge + offset + x * scale;
                pixels[start..start + scale].fill(0);
            }
        }
    }
    let mut encoded = Vec::new();
    let edge = u32::try_from(edge).map_err(|_| "the image is too large".to_owned())?;
    let mut encoder = png::Encoder::new(&mut encoded, edge, edge);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|error| error.to_string())?;
    writer.write_image_data(&pixels).map_err(|error| error.to_string())?;
    writer.finish().map_err(|error| error.to_string())?;
    Ok(encoded)
}

/// An SVG of `text`'s QR code; it scales to `pixels(size)` wide.
pub(crate) fn svg(text: &str, size: QrSize) -> Result<String, String> {
    let code = QRBuilder::new(text).ecl(fast_qr::ECL::M).build().map_err(|error| format!("{error:?}"))?;
    let svg = SvgBuilder::default().margin(QUIET_MODULES).to_str(&code);
    let edge = pixels(size);
    // Give the image its nominal size; its viewBox keeps it sharp at any other.
    Ok(svg.replacen("<svg ", &format!("<svg width=\"{edge}\" height=\"{edge}\" "), 1))
}
