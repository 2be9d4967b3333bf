//! The duplicity sink (issue 3, in progress). What exists so far is the
//! format layer, plain Rust tested natively against the facts of
//! `shared/spec/duplicity-format.md`: time strings, remote file names and
//! manifests. The component glue comes with the writer and reader.

pub mod format;
