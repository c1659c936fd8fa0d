//! Ask + tell overhead of every optimiser after 300 observations; the same bench as
//! `cargo bench -p danas-optim --bench ask_tell` (which builds far less).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

include!("../crates/danas-optim/benches/common/overhead.rs");
