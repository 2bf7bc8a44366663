//! Writes 100 MB to stdout.
use std::io::Write;

fn main() {
    let chunk = vec![b'x'; 1024 * 1024];
    let mut out = std::io::stdout();
    for _ in 0..100 {
        if out.write_all(&chunk).is_err() {
            std::process::exit(3);
        }
    }
}
