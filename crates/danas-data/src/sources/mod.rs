//! The built-in sources.

pub mod folder;
pub mod idx;
pub mod synthetic;
pub mod wake_vision;
