//! Adaptive concurrency (AIMD on RTT, the seed's `DynamicTuner`) and dynamic batch sizing.

mod batch;
mod controller;
pub mod future;
mod layer;
mod policy;
mod service;
#[cfg(test)]
mod tests;

pub use self::{
    batch::{BatchSizer, BatchSizerBuilder},
    controller::ConcurrencyHandle,
    layer::AdaptiveConcurrencyLayer,
    policy::{ConcurrencyPolicy, ConcurrencyPolicyBuilder},
    service::AdaptiveConcurrency,
};
