//! The language-neutral vectors in `conformance/vectors/`.
