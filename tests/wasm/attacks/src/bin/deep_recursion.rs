//! Recurses without end, two ways: with a buffer per frame, so Rust's stack in linear memory
//! runs out first (an out-of-bounds access), or with nothing but the call, so wasmtime's own
//! limit on the wasm call stack stops it.
fn shadow(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth; 32]);
    shadow(depth + 1) + frame[0]
}

#[inline(never)]
fn native(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    std::hint::black_box(native(std::hint::black_box(depth + 1))) ^ depth
}

fn main() {
    let input = std::io::read_to_string(std::io::stdin()).unwrap_or_default();
    let depth = if input.contains("native") {
        native(0)
    } else {
        shadow(0)
    };
    println!("{depth}");
}
