//! Psyduck's fleet server: an authenticated HTTP API over PostgreSQL.
//!
//! The server is stateless: every durable fact (tokens, agents, the work queue's runs, jobs,
//! leases and results: [`queue`]; uploaded blobs and snapshots: [`blobs`]) lives in PostgreSQL, in the same `psyduck` schema as the
//! results store, so any number of server processes may run against one database. Each request
//! but `/healthz`, `/metrics` and `/api/openapi.json` must carry `Authorization: Bearer TOKEN`,
//! checked before routing ([`auth`]); the API is described by the OpenAPI document at
//! `/api/openapi.json`.

pub mod api;
pub mod auth;
pub mod bench_fleet;
pub mod blobs;
pub mod database;
pub mod error;
pub mod gc;
pub mod metrics;
pub mod migrate;
pub mod queue;
pub mod serve;
#[doc(hidden)]
pub mod testkit;
pub mod token;
pub mod token_store;

pub use database::{Database, DEFAULT_SCHEMA};
pub use error::ServerError;
pub use token::Role;
