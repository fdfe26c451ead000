//! Per-worker connection table: which real server each client flow was given.
//!
//! Owns: the flow key, the table (fixed capacity, allocated up front), the TCP
//! and UDP states with their LVS timeouts, and expiry by a clock sweep.
//!
//! Must not touch: I/O, clocks, threads or locks. Time comes in as `now`
//! (seconds on the worker's clock, read once per batch), so tests drive it.
//! Each worker owns one [`ConnTable`]; nothing here is shared.

mod key;
mod state;
mod table;

pub use key::{Addr, FlowKey};
pub use state::{ConnState, Direction, TcpFlags, Timeouts};
pub use table::{Conn, ConnTable, Full};
