//! `remember:<secret>` looks for what an earlier call left in memory, then
//! leaves `secret` behind: in a static (part of the module's initial memory)
//! and in pages it grows the memory by. Every call runs in a fresh instance,
//! so it must find neither, whichever pool slot and resident pages it got.

const GROWN_PAGES: usize = 4;
const PAGE: usize = 64 << 10;

static mut MARK: [u8; 64] = [0; 64];

/// `static=<what the static held> grown-nonzero=<bytes not zero in the grown pages>`.
pub fn remember(secret: &str) -> String {
    // SAFETY: one thread; the static is only touched here.
    let found = unsafe { core::ptr::read_volatile(&raw const MARK) };
    let held = String::from_utf8_lossy(&found).trim_end_matches('\0').to_string();
    let before = core::arch::wasm32::memory_grow(0, GROWN_PAGES);
    if before == usize::MAX {
        return "cannot grow memory".into();
    }
    // SAFETY: the pages just grown belong to no allocation: nothing else reads or writes them.
    let grown = unsafe { core::slice::from_raw_parts_mut((before * PAGE) as *mut u8, GROWN_PAGES * PAGE) };
    let nonzero = grown.iter().filter(|&&b| b != 0).count();
    for (byte, secret) in grown.iter_mut().zip(secret.bytes().cycle()) {
        *byte = secret;
    }
    let mut mark = [0u8; 64];
    for (byte, secret) in mark.iter_mut().zip(secret.bytes()) {
        *byte = secret;
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&raw mut MARK, mark) };
    format!("static={held} grown-nonzero={nonzero}")
}
