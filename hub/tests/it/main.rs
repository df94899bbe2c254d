//! Hub integration tests: the real HTTP server on a random port, on SQLite and on
//! PostgreSQL (a fresh database per test). The same tests run on both backends.

mod api;
mod dashboard;
mod deadlines;
mod deferrals;
mod episodes;
mod indicators;
mod openapi;
mod reference;
mod registry;
mod replicas;
mod side_records;
mod support;
mod terminals;
mod users;
mod workflow;
