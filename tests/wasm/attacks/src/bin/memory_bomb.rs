//! Grows memory a megabyte at a time, touching every page, until the sandbox refuses.
fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1024 * 1024]);
        std::hint::black_box(&hoard);
    }
}
