//! Every integration test of the runtime, in one binary: each module is
//! what used to be a test binary of its own, so wasmtime and the runtime are
//! linked once instead of sixteen times. Run one module with a filter:
//! `cargo test --release -p weft --test all -- mllp::`.

mod common;

mod admin;
mod audit;
mod backup;
mod cli;
mod compile_child;
mod console;
mod contract;
mod crash;
mod default_config;
mod dev;
mod doctor;
mod documents;
mod encryption;
mod fhir_corpus;
mod fhir_mutations;
mod hostile;
mod http;
mod journal_faults;
mod manifest;
mod messages;
mod mllp;
mod monitoring;
mod new;
mod nodes;
mod phi;
mod postgres_journal;
mod reload;
mod replay;
mod reprocess;
mod sandbox;
mod shadow;
mod signing;
mod tls;
mod upgrade;
mod way_back;
