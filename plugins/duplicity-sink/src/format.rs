//! duplicity's on-backend format, piece by piece.

pub mod collection;
pub mod delta;
pub mod difftar;
pub mod entries;
pub mod manifest;
pub mod names;
pub mod quote;
pub mod signature;
pub mod tarentry;
pub mod tarread;
pub mod time;
