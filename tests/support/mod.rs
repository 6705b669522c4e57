pub mod broker;
pub mod daemon;
