//! Spreadsheets: every sheet as tab-separated rows under its name.

use std::io::Cursor;

use calamine::{Reader, Xlsx};

use crate::{Extracted, Failure, Limits, bounded, zipped};

pub(crate) fn xlsx(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    // Measured first: calamine itself would inflate whatever the parts expand to.
    zipped::open(bytes, limits)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| Failure::Malformed(format!("not a readable workbook ({e})")))?;
    let mut out = String::new();
    let names = book.sheet_names();
    for name in &names {
        let range = book
            .worksheet_range(name)
            .map_err(|e| Failure::Malformed(format!("sheet {name}: {e}")))?;
        out.push_str(&format!("## {name}\n"));
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            out.push_str(&cells.join("\t"));
            out.push('\n');
            if out.len() > limits.max_text_chars.saturating_mul(4) {
                break;
            }
        }
        out.push('\n');
    }
    Ok(Extracted {
        text: Some(bounded(out, limits.max_text_chars)),
        pages: u32::try_from(names.len()).ok(),
        ..Extracted::default()
    })
}
