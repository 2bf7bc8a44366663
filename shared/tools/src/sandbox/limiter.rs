//! The per-call memory cap, and what the call reached: wasmtime asks before every growth.

use wasmtime::ResourceLimiter;

/// Table entries a module may have (function pointers); far above what compiled Rust uses.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct Limiter {
    max_memory: usize,
    pub peak_memory: usize,
    /// A growth was refused: a failure after this is the memory cap, whatever the guest did
    /// with the refusal (Rust aborts, which is a trap).
    pub refused: bool,
}

impl Limiter {
    pub fn new(max_memory: u64) -> Self {
        Self {
            max_memory: usize::try_from(max_memory).unwrap_or(usize::MAX),
            peak_memory: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.refused = true;
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        2
    }

    fn memories(&self) -> usize {
        1
    }
}
