//! THE `unsafe` module: AF_XDP UMEM and rings (through xsk-rs) and the libbpf
//! loader of our steering program.
//!
//! Heads up: everything outside this module is safe Rust. Each `unsafe` block
//! here says which invariant it relies on. Frame descriptors never leave this
//! module; the rest of the dataplane sees `&mut [u8]` for the time of one call.
#![expect(
    unsafe_code,
    reason = "AF_XDP rings, UMEM and libbpf are FFI over shared memory"
)]

#[cfg(feature = "bench")]
pub mod bench;
mod bpf;
mod flows;
mod layout;
mod port;
mod steer;

pub use bpf::unpin_links;
pub use flows::{FastAction, FastKey, FastKey4, FastKey6, FastVal, FastVal4, FastVal6};
pub use port::{BindMode, FRAME_SIZE, Port, PortConfig, max_frame_len};
pub use steer::{MAX_FAST_FLOWS, PUNT_NAMES, PUNT_REASONS, Steer};
