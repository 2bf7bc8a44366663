//! Panics (an abort under panic=abort: a trap).
fn main() {
    let input = std::io::read_to_string(std::io::stdin()).unwrap_or_default();
    panic!("the tool panicked on {input}");
}
