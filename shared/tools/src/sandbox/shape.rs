//! What a user's module may look like before anyone compiles it. Compiling costs time and
//! memory by a module's shape, not its size: one function with tens of thousands of locals and
//! thousands of nested loops kept a compiler busy for minutes and took gigabytes. Each bound is
//! a named setting (`BESTCHAT_TOOL_MAX_*`), far above what a compiler emits for a real tool.

use wasmparser::{Operator, Parser, Payload};

use super::ModuleError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct ModuleShape {
    /// Functions the module defines.
    #[serde(rename = "BESTCHAT_TOOL_MAX_FUNCTIONS")]
    pub max_functions: u32,
    /// Bytes of one function's body.
    #[serde(rename = "BESTCHAT_TOOL_MAX_FUNCTION_BYTES")]
    pub max_function_bytes: usize,
    /// Locals one function declares.
    #[serde(rename = "BESTCHAT_TOOL_MAX_LOCALS")]
    pub max_locals: u32,
    /// Blocks, loops and ifs open inside one another.
    #[serde(rename = "BESTCHAT_TOOL_MAX_NESTING")]
    pub max_nesting: u32,
}

impl Default for ModuleShape {
    fn default() -> Self {
        Self {
            max_functions: 50_000,
            max_function_bytes: 512 * 1024,
            max_locals: 5_000,
            max_nesting: 256,
        }
    }
}

/// Checks `bytes` against `shape`, reading the module once without compiling anything.
pub fn check_shape(bytes: &[u8], shape: &ModuleShape) -> Result<(), ModuleError> {
    let invalid = |e: wasmparser::BinaryReaderError| ModuleError::Invalid(e.message().to_owned());
    let mut functions = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let Payload::CodeSectionEntry(body) = payload.map_err(invalid)? else {
            continue;
        };
        functions += 1;
        if functions > shape.max_functions {
            return Err(too_costly(format!(
                "it defines more than {} functions",
                shape.max_functions
            )));
        }
        let size = body.range().len();
        if size > shape.max_function_bytes {
            return Err(too_costly(format!(
                "function {functions} is {size} bytes, more than {}",
                shape.max_function_bytes
            )));
        }
        let mut locals = 0u32;
        for declared in body.get_locals_reader().map_err(invalid)? {
            let (count, _) = declared.map_err(invalid)?;
            locals = locals.saturating_add(count);
            if locals > shape.max_locals {
                return Err(too_costly(format!(
                    "function {functions} declares more than {} locals",
                    shape.max_locals
                )));
            }
        }
        let mut operators = body.get_operators_reader().map_err(invalid)?;
        let mut depth = 0u32;
        while !operators.eof() {
            match operators.read().map_err(invalid)? {
                Operator::Block { .. }
                | Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::TryTable { .. }
                | Operator::Try { .. } => {
                    depth += 1;
                    if depth > shape.max_nesting {
                        return Err(too_costly(format!(
                            "function {functions} nests blocks more than {} deep",
                            shape.max_nesting
                        )));
                    }
                }
                Operator::End => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

fn too_costly(why: String) -> ModuleError {
    ModuleError::TooCostly(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(locals: u32, nesting: u32, functions: u32) -> Vec<u8> {
        use wasm_encoder::{
            BlockType, CodeSection, Function, FunctionSection, Instruction, Module, TypeSection,
        };
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        for _ in 0..functions {
            funcs.function(0);
            let mut f = Function::new([(locals, wasm_encoder::ValType::I32)]);
            for _ in 0..nesting {
                f.instruction(&Instruction::Loop(BlockType::Empty));
            }
            for _ in 0..nesting {
                f.instruction(&Instruction::End);
            }
            f.instruction(&Instruction::End);
            code.function(&f);
        }
        let mut m = Module::new();
        m.section(&types).section(&funcs).section(&code);
        m.finish()
    }

    #[test]
    fn ordinary_modules_pass_and_each_costly_shape_is_refused_with_its_reason() {
        let shape = ModuleShape::default();
        assert_eq!(check_shape(&module(10, 10, 10), &shape), Ok(()));
        // The shape that kept a compiler busy for minutes: 40,000 locals, 4,000 nested loops.
        let bomb = module(40_000, 4_000, 1);
        let refused = check_shape(&bomb, &shape).unwrap_err();
        assert!(
            matches!(&refused, ModuleError::TooCostly(why) if why.contains("locals")),
            "{refused}"
        );
        let deep = check_shape(&module(1, 300, 1), &shape).unwrap_err();
        assert!(
            matches!(&deep, ModuleError::TooCostly(why) if why.contains("deep")),
            "{deep}"
        );
        let many = ModuleShape {
            max_functions: 5,
            ..shape
        };
        assert!(matches!(
            check_shape(&module(1, 1, 6), &many),
            Err(ModuleError::TooCostly(_))
        ));
        let small_bodies = ModuleShape {
            max_function_bytes: 16,
            ..shape
        };
        assert!(matches!(
            check_shape(&module(1, 20, 1), &small_bodies),
            Err(ModuleError::TooCostly(_))
        ));
        assert!(matches!(
            check_shape(b"\0asm\x01\0\0\0\x0a\xff", &shape),
            Err(ModuleError::Invalid(_))
        ));
    }
}
