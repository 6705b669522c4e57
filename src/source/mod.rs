//! Where events come from: Kafka ([`kafka`]), NDJSON files or stdin
//! ([`file`](mod@file)) and synthetic logs ([`generate`]).

pub mod file;
pub mod generate;
pub mod kafka;
