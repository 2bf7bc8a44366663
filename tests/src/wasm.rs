//! The attack suite's modules and the example tool, built by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));

pub fn module(name: &str) -> &'static [u8] {
    MODULES
        .iter()
        .find(|(module, ..)| *module == name)
        .map(|(_, bytes, _)| *bytes)
        .unwrap_or_else(|| panic!("no test module {name}"))
}

/// A WASI-command-shaped module whose compile cost is its shape: `functions` functions of about
/// `body_bytes` each, every one with `locals` locals and `nesting` loops inside one another,
/// busy moving locals around. The compile bomb an attacker sends, or a costly one within bounds.
pub fn costly_module(functions: u32, locals: u32, nesting: u32, body_bytes: usize) -> Vec<u8> {
    use wasm_encoder::{
        BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction,
        MemorySection, MemoryType, Module, TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    for _ in 0..functions {
        funcs.function(0);
        let mut f = Function::new([(locals, ValType::I64)]);
        for _ in 0..nesting {
            f.instruction(&Instruction::Loop(BlockType::Empty));
        }
        let mut i = 0u32;
        while f.byte_len() < body_bytes {
            let at = |k: u32| (i.wrapping_mul(k).wrapping_add(k)) % locals.max(1);
            f.instruction(&Instruction::LocalGet(at(1)));
            f.instruction(&Instruction::LocalGet(at(7)));
            f.instruction(&Instruction::I64Add);
            f.instruction(&Instruction::LocalSet(at(13)));
            i += 1;
        }
        for _ in 0..nesting {
            f.instruction(&Instruction::End);
        }
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports
        .export("_start", ExportKind::Func, 0)
        .export("memory", ExportKind::Memory, 0);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&memory)
        .section(&exports)
        .section(&code);
    module.finish()
}
