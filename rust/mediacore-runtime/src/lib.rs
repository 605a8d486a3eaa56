//! `mediacore-runtime`: the only part of the media engine that owns sockets, threads and the
//! clock. A small fixed number of workers each own their sessions and sockets; the control
//! plane reaches them through [`Engine`] (which implements `MediaControl`) and the ng server.

pub mod config;
pub mod engine;
pub mod events;
pub mod ng_server;
pub mod ports;
pub mod recv_batch;
pub mod worker;

pub use config::{default_workers, EngineConfig};
pub use engine::{Engine, EngineTotals};
pub use events::EventRecord;
pub use ng_server::NgServer;
