//! What processing makes of each accepted format, and how it refuses hostile files: every bomb
//! and every damaged file fails that file with a reason, within the limits, never a panic.

use bestchat_files::{Failure, Format, Limits, process, sniff};
use bestchat_tests::files;

fn format_of(bytes: &[u8], name: &str) -> Format {
    sniff(&bytes[..bytes.len().min(8192)], name)
        .unwrap_or_else(|| panic!("{name} is not accepted"))
        .format
}

fn text_of(bytes: &[u8], name: &str) -> String {
    process(bytes, format_of(bytes, name), &Limits::default())
        .unwrap()
        .text
        .unwrap()
}

#[test]
fn each_document_format_gives_its_text() {
    let pdf = files::pdf("Quarterly revenue rose by 12 percent");
    let extracted = process(&pdf, format_of(&pdf, "q.pdf"), &Limits::default()).unwrap();
    assert!(
        extracted
            .text
            .as_deref()
            .unwrap()
            .contains("Quarterly revenue rose by 12 percent"),
        "{extracted:?}"
    );
    assert_eq!(extracted.pages, Some(1));
    assert!(extracted.page_images.is_empty());

    let docx = files::docx(&["Meeting notes", "Ship on Friday &amp; tell Ana"]);
    assert_eq!(format_of(&docx, "notes.bin"), Format::Docx);
    assert_eq!(
        text_of(&docx, "notes.docx"),
        "Meeting notes\nShip on Friday & tell Ana\n"
    );

    let xlsx = files::xlsx("Budget", &[&["item", "cost"], &["laptops", "1200"]]);
    assert_eq!(format_of(&xlsx, "b.xlsx"), Format::Xlsx);
    let sheet = text_of(&xlsx, "b.xlsx");
    assert!(
        sheet.contains("## Budget") && sheet.contains("laptops\t1200"),
        "{sheet}"
    );

    assert_eq!(
        text_of(b"id,name\n1,Ana\n", "people.csv"),
        "id,name\n1,Ana\n"
    );
    assert!(
        text_of(
            b"<html><body><p>Hello <i>web</i></p></body></html>",
            "p.html"
        )
        .contains("Hello web")
    );
}

#[test]
fn an_image_is_turned_upright_scaled_and_reencoded() {
    let limits = Limits {
        image_max_edge: 512,
        ..Limits::default()
    };
    let big = files::png(2000, 1000);
    let extracted = process(&big, Format::Png, &limits).unwrap();
    assert_eq!(
        (extracted.width, extracted.height),
        (Some(2000), Some(1000))
    );
    let image = extracted.image.unwrap();
    assert_eq!(
        (image.width, image.height, image.media_type),
        (512, 256, "image/jpeg")
    );
    let small = files::png(40, 30);
    let image = process(&small, Format::Png, &limits)
        .unwrap()
        .image
        .unwrap();
    assert_eq!((image.width, image.height), (40, 30));
}

#[test]
fn a_scan_gives_its_pages_as_images() {
    let scan = files::scanned_pdf(&files::jpeg(800, 1000), 800, 1000);
    let extracted = process(&scan, Format::Pdf, &Limits::default()).unwrap();
    assert_eq!(extracted.pages, Some(1));
    assert_eq!(extracted.page_images.len(), 1);
    assert_eq!(extracted.page_images[0].media_type, "image/jpeg");
    assert!(extracted.page_images[0].height <= Limits::default().image_max_edge);
}

#[test]
fn an_archive_bomb_fails_before_it_is_read() {
    let limits = Limits {
        max_expanded_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let bomb = files::docx_bomb(16 * 1024 * 1024);
    assert!(bomb.len() < 200 * 1024, "a bomb is small: {}", bomb.len());
    assert_eq!(format_of(&bomb, "bomb.docx"), Format::Docx);
    match process(&bomb, Format::Docx, &limits) {
        Err(Failure::TooLarge(why)) => assert!(why.contains("expands past"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The same limit holds for a workbook, which calamine would inflate whole.
    assert!(matches!(
        process(&bomb, Format::Xlsx, &limits),
        Err(Failure::TooLarge(_))
    ));
}

#[test]
fn an_image_claiming_a_billion_pixels_is_not_decoded() {
    let bomb = files::png_claiming(40_000, 40_000);
    assert_eq!(format_of(&bomb, "x.png"), Format::Png);
    match process(&bomb, Format::Png, &Limits::default()) {
        Err(Failure::TooLarge(why)) => assert!(why.contains("40000×40000"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Within the pixel count but past the decoder's memory.
    let limits = Limits {
        max_decode_bytes: 1024 * 1024,
        ..Limits::default()
    };
    assert!(matches!(
        process(&files::png(1000, 1000), Format::Png, &limits),
        Err(Failure::TooLarge(_))
    ));
}

#[test]
fn a_sheet_naming_its_far_corner_is_read_cell_by_cell() {
    let far = files::xlsx_far_corner();
    let text = process(&far, Format::Xlsx, &Limits::default())
        .unwrap()
        .text
        .unwrap();
    assert!(text.contains("near") && text.contains("42"), "{text}");
    assert!(text.len() < 100, "{text}");
}

#[test]
fn a_pdf_with_a_million_objects_fails_before_it_is_parsed() {
    let many = files::pdf_with_objects(1_000_000);
    assert_eq!(format_of(&many, "many.pdf"), Format::Pdf);
    match process(&many, Format::Pdf, &Limits::default()) {
        Err(Failure::TooLarge(why)) => assert!(why.contains("objects"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_truncated_file_fails_with_a_reason() {
    let cases: Vec<(Vec<u8>, Format)> = vec![
        (files::pdf("cut short"), Format::Pdf),
        (files::docx(&["cut short"]), Format::Docx),
        (files::xlsx("S", &[&["a"]]), Format::Xlsx),
        (files::png(300, 300), Format::Png),
        (files::jpeg(300, 300), Format::Jpeg),
    ];
    for (bytes, format) in cases {
        let cut = &bytes[..bytes.len() / 2];
        match process(cut, format, &Limits::default()) {
            Err(Failure::Malformed(why) | Failure::TooLarge(why)) => {
                assert!(!why.is_empty(), "{format:?}");
            }
            Err(other) => panic!("{format:?}: {other:?}"),
            Ok(extracted) => panic!("{format:?}: a truncated file was read: {extracted:?}"),
        }
    }
}
