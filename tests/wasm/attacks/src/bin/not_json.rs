//! Answers with text that is not JSON.
fn main() {
    print!("hello, not json {{");
}
