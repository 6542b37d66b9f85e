//! Feeds one scripted run into each reporter and checks what it writes.

mod human;
mod json;
mod junit;
mod script;
