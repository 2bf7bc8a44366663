//! Imports a host function outside the tool interface: refused at registration.
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn host_shell(command: *const u8, length: usize) -> i32;
}

fn main() {
    let command = b"cat /etc/passwd";
    // SAFETY: never runs; the module is refused before it is instantiated.
    let status = unsafe { host_shell(command.as_ptr(), command.len()) };
    println!("{status}");
}
