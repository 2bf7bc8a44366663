//! Writes to stdout forever, deaf to the errors that say it is past its cap: only being
//! stopped ends it.
use std::io::Write;

fn main() {
    let chunk = vec![b'x'; 1024 * 1024];
    let mut out = std::io::stdout();
    loop {
        let _ = out.write_all(&chunk);
    }
}
