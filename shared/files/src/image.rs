//! Images: decoded within pixel and memory limits, turned upright by their EXIF orientation,
//! scaled so the longest edge fits what models accept, and re-encoded (PNG where there is
//! transparency, JPEG otherwise).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, imageops::FilterType};

use crate::{Encoded, Extracted, Failure, Limits};

const JPEG_QUALITY: u8 = 85;

pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Failure::Malformed(e.to_string()))?;
    let mut bounds = image::Limits::default();
    bounds.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(bounds);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Failure::Malformed(format!("not a readable image ({e})")))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(Failure::TooLarge(format!(
            "the image has {w}×{h} pixels, more than {}",
            limits.max_pixels
        )));
    }
    if decoder.total_bytes() > limits.max_decode_bytes {
        return Err(Failure::TooLarge(
            "decoding the image would take too much memory".into(),
        ));
    }
    if is_jpeg(bytes) && !jpeg_ends(bytes) {
        return Err(Failure::Malformed("the image is cut short".into()));
    }
    let orientation = decoder.orientation().ok();
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => {
            Failure::TooLarge("decoding the image would take too much memory".into())
        }
        other => Failure::Malformed(format!("the image is damaged ({other})")),
    })?;
    if let Some(orientation) = orientation {
        picture.apply_orientation(orientation);
    }
    let (width, height) = (picture.width(), picture.height());
    let edge = limits.image_max_edge.max(1);
    if width.max(height) > edge {
        picture = picture.resize(edge, edge, FilterType::Triangle);
    }
    let encoded = encode(&picture)?;
    Ok(Extracted {
        width: Some(width),
        height: Some(height),
        image: Some(encoded),
        ..Extracted::default()
    })
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8])
}

/// A JPEG's last scan is followed by its end marker; a file cut in its data has none (the
/// marker cannot occur inside scan data, and a thumbnail's comes before the scans).
fn jpeg_ends(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    matches!((last_scan, last_end), (Some(scan), Some(end)) if end > scan)
}

fn encode(picture: &DynamicImage) -> Result<Encoded, Failure> {
    let mut out = Cursor::new(Vec::new());
    let media_type = if picture.color().has_alpha() {
        picture
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| Failure::Malformed(e.to_string()))?;
        "image/png"
    } else {
        let rgb = picture.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&rgb)
            .map_err(|e| Failure::Malformed(e.to_string()))?;
        "image/jpeg"
    };
    Ok(Encoded {
        media_type,
        bytes: out.into_inner(),
        width: picture.width(),
        height: picture.height(),
    })
}
