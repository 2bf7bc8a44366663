//! Processing time and peak memory per format and size (BENCHMARKS.md, "File processing").
//!
//! `cargo run --release -p bestchat-files --example bench` runs every case, each in a fresh
//! process (so one case's peak memory is not another's), and prints a Markdown table. A case
//! alone: `… --example bench -- case <format> <megabytes>`.

// A measurement reports on stdout, and a benchmark that cannot make its input should stop.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::io::{Cursor, Write};
use std::time::Instant;

use bestchat_files::{Format, Limits, process};

const FORMATS: &[&str] = &["pdf", "docx", "xlsx", "csv", "png", "jpeg"];
const SIZES_MB: &[usize] = &[1, 10, 50];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("case") {
        let format = args.get(2).cloned().unwrap_or_default();
        let mb: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
        case(&format, mb);
        return;
    }
    let me = std::env::current_exe().expect("own path");
    println!("| format | file | outcome | time | peak RSS | input |");
    println!("|---|---|---|---|---|---|");
    for format in FORMATS {
        for mb in SIZES_MB {
            let out = std::process::Command::new(&me)
                .args(["case", format, &mb.to_string()])
                .output()
                .expect("run a case");
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

fn case(format: &str, mb: usize) {
    let target = mb * 1024 * 1024;
    let (bytes, fmt) = match format {
        "pdf" => (pdf(target), Format::Pdf),
        "docx" => (docx(target), Format::Docx),
        "xlsx" => (xlsx(target), Format::Xlsx),
        "csv" => (csv(target), Format::Csv),
        "png" => (image(target, image::ImageFormat::Png), Format::Png),
        _ => (image(target, image::ImageFormat::Jpeg), Format::Jpeg),
    };
    let before = peak_rss_kib();
    let started = Instant::now();
    let result = process(&bytes, fmt, &Limits::default());
    let elapsed = started.elapsed();
    let outcome = match &result {
        Ok(e) => {
            let mut parts = Vec::new();
            if let Some(t) = &e.text {
                parts.push(format!("{} chars", t.chars().count()));
            }
            if let Some(p) = e.pages {
                parts.push(format!("{p} pages"));
            }
            if let (Some(w), Some(h)) = (e.width, e.height) {
                parts.push(format!("{w}×{h}"));
            }
            format!("ready ({})", parts.join(", "))
        }
        Err(f) => format!("failed: {f}"),
    };
    println!(
        "| {format} | {:.1} MB | {outcome} | {:.0} ms | {} MiB | {} MiB |",
        bytes.len() as f64 / 1_048_576.0,
        elapsed.as_secs_f64() * 1000.0,
        peak_rss_kib() / 1024,
        before / 1024,
    );
}

/// The process's peak resident memory (Linux), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Words that compress like prose.
fn prose(n: usize, seed: &mut u64) -> String {
    const WORDS: &[&str] = &[
        "revenue", "quarter", "growth", "customer", "market", "the", "of", "and", "plan", "ship",
        "friday", "budget", "team", "report", "risk", "cost", "margin", "north",
    ];
    let mut out = String::with_capacity(n);
    while out.len() < n {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(WORDS[(*seed >> 33) as usize % WORDS.len()]);
        out.push(' ');
    }
    out
}

/// Pages of text, each with a photo-like JPEG, until the file reaches `target` bytes.
fn pdf(target: usize) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let photo = image(100 * 1024, image::ImageFormat::Jpeg);
    let mut doc = Document::with_version("1.5");
    let pages = doc.new_object_id();
    let font = doc.add_object(
        dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"},
    );
    let picture = doc.add_object(Stream::new(
        dictionary! {"Type" => "XObject", "Subtype" => "Image", "Width" => 300, "Height" => 300,
        "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "DCTDecode"},
        photo.clone(),
    ));
    let resources = doc.add_object(dictionary! {"Font" => dictionary! {"F1" => font},
    "XObject" => dictionary! {"Im1" => picture}});
    let mut kids = Vec::new();
    let mut seed: u64 = 7;
    let per_page = 100 * 1024 + 3_000;
    for _ in 0..(target / per_page).max(1) {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 9.into()]),
        ];
        for line in 0..40 {
            ops.push(Operation::new(
                "Td",
                vec![40.into(), (800 - line * 18).into()],
            ));
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(prose(70, &mut seed))],
            ));
        }
        ops.push(Operation::new("ET", vec![]));
        ops.push(Operation::new("Do", vec!["Im1".into()]));
        let contents = doc.add_object(Stream::new(
            dictionary! {},
            Content { operations: ops }.encode().unwrap(),
        ));
        // Each page its own image, as a scan or a slide deck has.
        let own = doc.add_object(Stream::new(
            dictionary! {"Type" => "XObject", "Subtype" => "Image", "Width" => 300, "Height" => 300,
            "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "DCTDecode"},
            photo.clone(),
        ));
        let page_resources = doc.add_object(dictionary! {"Font" => dictionary! {"F1" => font},
        "XObject" => dictionary! {"Im1" => own}});
        kids.push(
            doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages,
            "Contents" => contents, "Resources" => page_resources})
                .into(),
        );
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {"Type" => "Pages", "Kids" => kids,
        "Count" => count, "Resources" => resources,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()]}),
    );
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn zipped(parts: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in parts {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Paragraphs of prose; prose deflates about 3:1, so three times the target is written.
fn docx(target: usize) -> Vec<u8> {
    let mut seed: u64 = 11;
    let mut body = String::from(r#"<w:document xmlns:w="w"><w:body>"#);
    while body.len() < target * 3 {
        body.push_str("<w:p><w:r><w:t>");
        body.push_str(&prose(600, &mut seed));
        body.push_str("</w:t></w:r></w:p>");
    }
    body.push_str("</w:body></w:document>");
    zipped(&[
        ("[Content_Types].xml", b"<Types/>".to_vec()),
        ("word/document.xml", body.into_bytes()),
    ])
}

/// Rows of a ledger (inline strings and numbers).
fn xlsx(target: usize) -> Vec<u8> {
    let mut seed: u64 = 13;
    let mut sheet = String::from(
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    let mut r = 0;
    while sheet.len() < target * 4 {
        r += 1;
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        sheet.push_str(&format!(
            r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{}</t></is></c><c r="B{r}"><v>{}</v></c><c r="C{r}"><v>{}</v></c></row>"#,
            prose(20, &mut seed).trim(),
            seed % 100_000,
            (seed >> 20) % 977
        ));
    }
    sheet.push_str("</sheetData></worksheet>");
    zipped(&[
        ("[Content_Types].xml", b"<Types/>".to_vec()),
        ("_rels/.rels", br#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec()),
        ("xl/workbook.xml", br#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Ledger" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_vec()),
        ("xl/_rels/workbook.xml.rels", br#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_vec()),
        ("xl/worksheets/sheet1.xml", sheet.into_bytes()),
    ])
}

fn csv(target: usize) -> Vec<u8> {
    let mut seed: u64 = 17;
    let mut out = String::from("id,name,amount\n");
    let mut i = 0;
    while out.len() < target {
        i += 1;
        out.push_str(&format!(
            "{i},{},{}\n",
            prose(16, &mut seed).trim(),
            i * 7 % 1000
        ));
    }
    out.into_bytes()
}

/// A photo-like picture (smooth gradients and noise) whose encoding is about `target` bytes.
fn image(target: usize, format: image::ImageFormat) -> Vec<u8> {
    // Noise: PNG ≈ 3 bytes a pixel; JPEG at its default quality ≈ 1.
    let per_pixel = if format == image::ImageFormat::Png {
        3
    } else {
        1
    };
    let side = ((target / per_pixel) as f64).sqrt() as u32;
    let mut seed = 19u64;
    let picture = image::RgbImage::from_fn(side.max(8), side.max(8), |x, y| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n = (seed >> 58) as u8;
        image::Rgb([(x % 256) as u8 ^ n, (y % 256) as u8 ^ n, n.wrapping_mul(3)])
    });
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}
