//! Where `tag check|sort|latest|normalize` read their tags, and how a tag
//! names its origin in a message (`argv[3]`, `tags.txt:7`, `stdin:2`).

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tagcast_spec::TagError;

#[derive(Debug, Args)]
pub struct InputArgs {
    /// Tags to read; with none and no --file, tags are read from standard input.
    #[arg(value_name = "TAG")]
    tags: Vec<String>,
    /// Read tags from a file, one per line ("-" for standard input). Empty
    /// lines are skipped; a trailing CR is part of the line ending.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Accept an empty list. Without it, no tags at all is an error (exit
    /// 1), so that a failed command before the pipe cannot pass as "all
    /// tags valid".
    #[arg(long)]
    allow_empty: bool,
}

/// Where one input tag came from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A command-line argument, by its index in the process's argv.
    Arg(usize),
    /// A line (counting from 1, empty lines included) of a file or of
    /// standard input (`name` is `stdin` then).
    Line { name: &'a str, line: u64 },
}

impl Origin<'_> {
    /// The source without the line: `argv[3]`, `tags.txt`, `stdin`.
    pub fn source(&self) -> String {
        match self {
            Origin::Arg(index) => format!("argv[{index}]"),
            Origin::Line { name, .. } => (*name).to_owned(),
        }
    }

    /// The line number, for tags read from a file or standard input.
    pub fn line(&self) -> Option<u64> {
        match self {
            Origin::Arg(_) => None,
            Origin::Line { line, .. } => Some(*line),
        }
    }
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Arg(index) => write!(f, "argv[{index}]"),
            Origin::Line { name, line } => write!(f, "{name}:{line}"),
        }
    }
}

/// One error of `tag check --format json`, and the fields a text message
/// is made of.
#[derive(Debug, Serialize)]
pub struct Diagnostic {
    /// `argv[N]`, the file's path, or `stdin`.
    pub source: String,
    /// The line in the file or standard input (from 1); null for an argument.
    pub line: Option<u64>,
    /// Byte offset (from 0) in the tag where the broken rule applies.
    pub position: usize,
    /// The requirement of `spec/tags.md` the tag breaks, e.g. `TAG-4`.
    pub requirement: &'static str,
    /// What is wrong, naming the tag, the position and the rule.
    pub message: String,
    /// What was probably meant: a stage or the corrected tag.
    pub suggestion: Option<String>,
}

impl Diagnostic {
    pub fn new(origin: Origin<'_>, err: &TagError) -> Self {
        Self {
            source: origin.source(),
            line: origin.line(),
            position: err.position(),
            requirement: err.requirement(),
            message: err.to_string(),
            suggestion: err.suggestion().map(str::to_owned),
        }
    }
}

/// One line for people: `tags.txt:3: invalid tag "…": … (TAG-3); did you mean `production`?`
pub fn describe(origin: Origin<'_>, err: &TagError) -> String {
    let mut text = format!("{origin}: {err} ({})", err.requirement());
    if let Some(suggestion) = err.suggestion() {
        text.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    text
}

/// Whether to tell a person at a terminal that the command is waiting for
/// tags on standard input (it would otherwise look hung).
fn waits_for_a_person(input: &InputArgs, stdin_is_terminal: bool) -> bool {
    stdin_is_terminal && input.tags.is_empty() && input.file.as_deref().is_none_or(|p| p.as_os_str() == "-")
}

/// The argv index of each tag argument. Clap passes positional values on
/// verbatim and in order, after any option value that might equal one, so
/// they are matched from the end.
fn argv_indices(argv: &[OsString], tags: &[String]) -> Vec<usize> {
    let mut indices = vec![0; tags.len()];
    let mut end = argv.len();
    for (slot, tag) in indices.iter_mut().zip(tags).rev() {
        let start = end.min(1);
        if let Some(found) = argv[start..end].iter().rposition(|a| a == tag.as_str()) {
            end = start + found;
            *slot = end;
        }
    }
    indices
}

/// Calls `each` with every input tag and its origin, in order, streaming a
/// file or standard input line by line. Returns how many tags there were.
pub fn for_each_input(
    input: &InputArgs,
    mut each: impl FnMut(Origin<'_>, &str) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    if !input.tags.is_empty() && input.file.is_some() {
        bail!("give tags as arguments or with --file, not both");
    }
    if !input.tags.is_empty() {
        let argv: Vec<OsString> = std::env::args_os().collect();
        for (tag, index) in input.tags.iter().zip(argv_indices(&argv, &input.tags)) {
            each(Origin::Arg(index), tag)?;
        }
        return Ok(input.tags.len() as u64);
    }
    if waits_for_a_person(input, io::stdin().is_terminal()) {
        eprintln!(
            "reading tags from standard input, one per line; end with Ctrl-D \
             (or give tags as arguments, or --file PATH)"
        );
    }
    let (reader, name): (Box<dyn BufRead>, String) = match input.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => (
            Box::new(BufReader::with_capacity(
                1 << 16,
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            )),
            path.display().to_string(),
        ),
        _ => (
            Box::new(BufReader::with_capacity(1 << 16, io::stdin().lock())),
            "stdin".to_owned(),
        ),
    };
    read_lines(reader, &name, each)
}

fn read_lines(
    mut reader: impl BufRead,
    name: &str,
    mut each: impl FnMut(Origin<'_>, &str) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut line = Vec::with_capacity(128);
    let (mut number, mut count) = (0u64, 0u64);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            return Ok(count);
        }
        number += 1;
        let mut bytes = line.as_slice();
        if let Some(rest) = bytes.strip_suffix(b"\n") {
            bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        if bytes.is_empty() {
            continue;
        }
        count += 1;
        let origin = Origin::Line { name, line: number };
        match std::str::from_utf8(bytes) {
            Ok(text) => each(origin, text)?,
            Err(_) => each(origin, &String::from_utf8_lossy(bytes))?,
        }
    }
}

/// Whether an input that held no tags is an error; if so, says so (exit 1).
pub fn refuse_empty(input: &InputArgs, count: u64) -> Option<ExitCode> {
    if count > 0 || input.allow_empty {
        return None;
    }
    let source = match input.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => path.display().to_string(),
        _ => "standard input".to_owned(),
    };
    eprintln!(
        "error: no tags in {source} (did the command before the pipe fail?); \
         --allow-empty accepts an empty list"
    );
    Some(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(tags: &[&str], file: Option<&str>) -> InputArgs {
        InputArgs {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            file: file.map(PathBuf::from),
            allow_empty: false,
        }
    }

    #[test]
    fn only_a_terminal_without_tags_or_file_is_told_that_stdin_is_read() {
        assert!(waits_for_a_person(&input(&[], None), true));
        assert!(waits_for_a_person(&input(&[], Some("-")), true));
        assert!(!waits_for_a_person(&input(&[], None), false), "a pipe");
        assert!(!waits_for_a_person(&input(&["1.1-demo-201108-195630"], None), true));
        assert!(!waits_for_a_person(&input(&[], Some("tags.txt")), true));
    }

    #[test]
    fn argument_indices_are_argv_indices() {
        let argv: Vec<OsString> = ["tagcast", "tag", "check", "--format", "json", "--", "json", "a", "json"]
            .map(OsString::from)
            .to_vec();
        let tags = ["json", "a", "json"].map(str::to_owned);
        assert_eq!(argv_indices(&argv, &tags), [6, 7, 8]);
        let argv: Vec<OsString> = ["tagcast", "tag", "check", "x", "y"].map(OsString::from).to_vec();
        assert_eq!(argv_indices(&argv, &["x".into(), "y".into()]), [3, 4]);
    }

    #[test]
    fn lines_are_numbered_from_one_counting_empty_lines() {
        let mut seen = Vec::new();
        let count = read_lines(&b"a\r\n\nb\n"[..], "stdin", |origin, text| {
            seen.push(format!("{origin} {text}"));
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 2);
        assert_eq!(seen, ["stdin:1 a", "stdin:3 b"]);
    }
}
