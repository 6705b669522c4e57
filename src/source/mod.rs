//! Where events come from: for now synthetic logs ([`generate`]) and NDJSON
//! files or stdin ([`file`](mod@file)). The Kafka consumer joins here.

pub mod file;
pub mod generate;
