//! The tagcast conformance runner and its language-neutral vectors (`conformance/vectors/`).
