//! Files the upload tests send, made here so every byte is known: a PDF with a line of text, a
//! scanned PDF (one JPEG per page), a Word document, a workbook, images, and the hostile ones
//! (an executable, an archive bomb, an image that claims a billion pixels, a PDF with a
//! million objects).

use std::io::{Cursor, Write};

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use zip::write::SimpleFileOptions;

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A one-page PDF whose text is `line`.
pub fn pdf(line: &str) -> Vec<u8> {
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 18.into()]),
            Operation::new("Td", vec![72.into(), 700.into()]),
            Operation::new("Tj", vec![Object::string_literal(line)]),
            Operation::new("ET", vec![]),
        ],
    };
    let mut doc = Document::with_version("1.5");
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let contents = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
    one_page(doc, resources, contents)
}

/// A scanned PDF: one page holding `jpeg` and no text.
pub fn scanned_pdf(jpeg: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let image = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => i64::from(width),
            "Height" => i64::from(height), "ColorSpace" => "DeviceRGB",
            "BitsPerComponent" => 8, "Filter" => "DCTDecode",
        },
        jpeg.to_vec(),
    ));
    let resources = doc.add_object(dictionary! { "XObject" => dictionary! { "Im1" => image } });
    let draw = format!("q {width} 0 0 {height} 0 0 cm /Im1 Do Q");
    let contents = doc.add_object(Stream::new(dictionary! {}, draw.into_bytes()));
    one_page(doc, resources, contents)
}

fn one_page(mut doc: Document, resources: lopdf::ObjectId, contents: lopdf::ObjectId) -> Vec<u8> {
    let pages = doc.new_object_id();
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages, "Contents" => contents,
    });
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// A PDF with `n` objects and nothing else of use.
pub fn pdf_with_objects(n: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    for i in 1..=n {
        writeln!(out, "{i} 0 obj\nnull\nendobj").unwrap();
    }
    out.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    out
}

fn zipped(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in parts {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#;

/// A Word document with one paragraph per line.
pub fn docx(lines: &[&str]) -> Vec<u8> {
    docx_with_body(&document_xml(lines))
}

fn document_xml(lines: &[&str]) -> Vec<u8> {
    let paragraphs: String = lines
        .iter()
        .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{paragraphs}</w:body></w:document>"#
    )
    .into_bytes()
}

fn docx_with_body(body: &[u8]) -> Vec<u8> {
    zipped(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("word/document.xml", body),
        (
            "docProps/app.xml",
            b"<Properties><Pages>1</Pages></Properties>",
        ),
    ])
}

/// A Word document whose body inflates to `expanded` bytes (mostly spaces).
pub fn docx_bomb(expanded: usize) -> Vec<u8> {
    let mut body = document_xml(&["boom"]);
    body.resize(expanded, b' ');
    docx_with_body(&body)
}

/// A workbook with one sheet of `rows` (inline strings and numbers).
pub fn xlsx(sheet: &str, rows: &[&[&str]]) -> Vec<u8> {
    xlsx_of(sheet, rows, "")
}

/// A tiny workbook with a cell in the sheet's last corner too: a dense range over it would be
/// 17 billion cells.
pub fn xlsx_far_corner() -> Vec<u8> {
    xlsx_of(
        "Far",
        &[&["near"]],
        r#"<row r="1048576"><c r="XFD1048576"><v>42</v></c></row>"#,
    )
}

fn xlsx_of(sheet: &str, rows: &[&[&str]], extra_rows: &str) -> Vec<u8> {
    let cells = |row: &[&str], r: usize| -> String {
        row.iter()
            .enumerate()
            .map(|(c, v)| {
                let column = char::from(b'A' + u8::try_from(c).unwrap());
                match v.parse::<f64>() {
                    Ok(n) => format!(r#"<c r="{column}{r}"><v>{n}</v></c>"#),
                    Err(_) => {
                        format!(r#"<c r="{column}{r}" t="inlineStr"><is><t>{v}</t></is></c>"#)
                    }
                }
            })
            .collect()
    };
    let data: String = rows
        .iter()
        .enumerate()
        .map(|(i, row)| format!(r#"<row r="{}">{}</row>"#, i + 1, cells(row, i + 1)))
        .collect();
    let sheet_xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}{extra_rows}</sheetData></worksheet>"#
    );
    let workbook = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#
    );
    zipped(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        (
            "_rels/.rels",
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        ("xl/workbook.xml", workbook.as_bytes()),
        (
            "xl/_rels/workbook.xml.rels",
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
        ("xl/worksheets/sheet1.xml", sheet_xml.as_bytes()),
    ])
}

/// A PNG of `width` × `height` in one colour.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_pixel(width, height, image::Rgb([30, 120, 200]));
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG of `width` × `height`.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// A PNG whose header claims `width` × `height` pixels over a few bytes of data: decoding
/// it whole would take width × height × 3 bytes.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The start of a Linux executable.
pub fn elf() -> Vec<u8> {
    let mut out = b"\x7fELF\x02\x01\x01\x00".to_vec();
    out.resize(4096, 0x90);
    out
}

/// Uploads through the API as a client does: announce, PUT the bytes to the presigned URL,
/// complete. The answer of `complete` (status and body).
pub async fn upload(
    api: &crate::api::Api<'_>,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (reqwest::StatusCode, serde_json::Value) {
    let (status, announced) = api
        .post(
            "/api/files",
            &serde_json::json!({"name": name, "content_type": content_type,
                "size_bytes": bytes.len(), "sha256": sha256_hex(bytes)}),
        )
        .await;
    if status != reqwest::StatusCode::CREATED {
        return (status, announced);
    }
    if !announced["upload"].is_null() {
        let put = put_presigned(&announced["upload"], bytes.to_vec()).await;
        assert!(put.is_success(), "the presigned upload was refused: {put}");
    }
    let id = announced["file"]["id"].as_str().unwrap();
    api.post(&format!("/api/files/{id}/complete"), &serde_json::json!({}))
        .await
}

/// Sends `body` to a presigned upload as the answer of `POST /api/files` describes it.
pub async fn put_presigned(upload: &serde_json::Value, body: Vec<u8>) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new().put(upload["url"].as_str().unwrap());
    for (name, value) in upload["headers"].as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    request.body(body).send().await.unwrap().status()
}

/// The file once processing has ended (`ready` or `failed`).
pub async fn processed(api: &crate::api::Api<'_>, id: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (status, file) = api.get(&format!("/api/files/{id}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{file}");
        if matches!(file["status"].as_str(), Some("ready" | "failed")) {
            return file;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "still {file}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
