//! The rules: virtual services and their real servers, as an operator states
//! them, and the ipvsadm syntax that states them.
//!
//! Owns: the rules model ([`Rules`], [`VirtualService`], [`RealServer`]), its
//! validation, the ipvsadm command parser ([`ipvsadm::parse`]) and the
//! ipvsadm-style listing. A change is checked completely before it touches the
//! rules; a refused change leaves them as they were.
//!
//! Must not touch: sockets, AF_XDP, threads or the clock. The daemon decides
//! what a forwarding method needs from the dataplane; this crate only models it.

pub mod daemon;
mod error;
pub mod ipvsadm;
pub mod keepalived;
mod list;
mod model;
mod names;
pub mod request;
pub mod state;
pub mod sync;

pub use error::Error;
pub use list::{Counts, render_json, render_list, render_save, render_timeouts_json};
pub use model::{
    FwdMethod, MarkRule, Protocol, RealServer, Rules, ServiceKey, VirtualService, addr_port, prefix_len,
};
pub use names::Names;
