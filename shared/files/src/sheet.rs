//! Spreadsheets: every sheet as tab-separated rows under its name. Cells are read one by one
//! as they are stored (never as a dense range, which a sheet naming a far corner would make
//! billions of cells wide), and at most the text limit of them is kept.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::{Extracted, Failure, Limits, bounded, zipped};

pub(crate) fn xlsx(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    // Measured first: calamine itself would inflate whatever the parts expand to.
    zipped::open(bytes, limits)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| Failure::Malformed(format!("not a readable workbook ({e})")))?;
    let mut out = String::new();
    let names = book.sheet_names();
    let room = limits.max_text_chars.saturating_mul(4);
    for name in &names {
        out.push_str(&format!("## {name}\n"));
        let mut cells = book
            .worksheet_cells_reader(name)
            .map_err(|e| Failure::Malformed(format!("sheet {name}: {e}")))?;
        let mut row = None;
        while let Some(cell) = cells
            .next_cell()
            .map_err(|e| Failure::Malformed(format!("sheet {name}: {e}")))?
        {
            let (r, _) = cell.get_position();
            match row {
                Some(current) if current == r => out.push('\t'),
                Some(_) => out.push('\n'),
                None => {}
            }
            row = Some(r);
            out.push_str(&Data::from(cell.get_value().clone()).to_string());
            if out.len() > room {
                break;
            }
        }
        out.push_str("\n\n");
        if out.len() > room {
            break;
        }
    }
    Ok(Extracted {
        text: Some(bounded(out, limits.max_text_chars)),
        pages: u32::try_from(names.len()).ok(),
        ..Extracted::default()
    })
}
