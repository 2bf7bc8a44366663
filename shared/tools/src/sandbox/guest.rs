//! What a call's `Store` holds, and the host functions of the `bestchat` import module.

use std::sync::Arc;

use serde_json::json;
use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::fetch::{FetchRefusal, Fetcher};
use super::limiter::Limiter;

pub const HOST_MODULE: &str = "bestchat";
pub const HOST_FUNCTIONS: &[&str] = &["fetch", "fetch_answer"];
/// Longest fetch request a guest may pass (a URL in JSON).
const MAX_REQUEST_BYTES: u32 = 16 * 1024;

pub struct Guest {
    pub wasi: WasiP1Ctx,
    pub limiter: Limiter,
    hosts: Vec<String>,
    fetcher: Arc<Fetcher>,
    fetches: u32,
    /// The last fetch's answer, until the guest copies it out.
    answer: Vec<u8>,
}

impl Guest {
    pub fn new(
        wasi: WasiP1Ctx,
        limiter: Limiter,
        hosts: Vec<String>,
        fetcher: Arc<Fetcher>,
    ) -> Self {
        Self {
            wasi,
            limiter,
            hosts,
            fetcher,
            fetches: 0,
            answer: Vec::new(),
        }
    }
}

/// `bestchat.fetch(request, length) -> answer length` and `bestchat.fetch_answer(buffer,
/// length) -> bytes copied`. A bad pointer is the guest's trap; a refused host or address ends
/// the call with that failure.
pub fn add_fetch_to_linker(linker: &mut Linker<Guest>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        HOST_MODULE,
        "fetch",
        |mut caller: Caller<'_, Guest>, (pointer, length): (u32, u32)| {
            Box::new(async move {
                if length > MAX_REQUEST_BYTES {
                    return Err(wasmtime::Error::msg("the fetch request is too long"));
                }
                let mut request = vec![0u8; length as usize];
                memory(&mut caller)?.read(&caller, pointer as usize, &mut request)?;
                let guest = caller.data_mut();
                guest.fetches += 1;
                let max_calls = guest.fetcher.settings.max_calls;
                if guest.fetches > max_calls {
                    return Err(wasmtime::Error::new(FetchRefusal::TooManyCalls(max_calls)));
                }
                let (fetcher, hosts) = (Arc::clone(&guest.fetcher), guest.hosts.clone());
                let url = serde_json::from_slice::<serde_json::Value>(&request)
                    .ok()
                    .and_then(|v| v["url"].as_str().map(str::to_owned));
                let answer = match url {
                    Some(url) => fetcher
                        .get(&hosts, &url)
                        .await
                        .map_err(wasmtime::Error::new)?,
                    None => json!({ "error": "the request must be {\"url\": \"…\"}" }),
                };
                let answer = answer.to_string().into_bytes();
                let size = u32::try_from(answer.len())?;
                caller.data_mut().answer = answer;
                Ok(size)
            })
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "fetch_answer",
        |mut caller: Caller<'_, Guest>, pointer: u32, length: u32| -> wasmtime::Result<u32> {
            let answer = std::mem::take(&mut caller.data_mut().answer);
            let n = answer.len().min(length as usize);
            memory(&mut caller)?.write(&mut caller, pointer as usize, &answer[..n])?;
            Ok(u32::try_from(n)?)
        },
    )?;
    Ok(())
}

fn memory(caller: &mut Caller<'_, Guest>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::Error::msg("the module exports no memory")),
    }
}
