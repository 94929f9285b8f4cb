//! Rewriting image references in YAML text, line by line, so that
//! comments, key order, quoting and the other containers stay as they are.
//!
//! Two shapes are understood:
//! - `image: <reference>` lines of Kubernetes manifests (block style, as
//!   `kubectl` and humans write them; `- image: …` list items too);
//! - a kustomization's `images:` entries (`name`, `newName`, `newTag`,
//!   `digest`).
//!
//! A reference matches when its normalized repository equals the event's
//! image (`elixircloud/cwl-wes` matches `docker.io/elixircloud/cwl-wes`).
//! Flow-style YAML (`{image: …}`) and JSON manifests are not rewritten.

use tagcast_spec::{Digest, ImageReference, Repository};

/// One rewritten value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 1-based line number in the old text.
    pub line: usize,
    /// The old value (reference, or kustomize tag/digest).
    pub old: String,
    /// The new value.
    pub new: String,
}

/// The rewritten text and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The whole new text.
    pub text: String,
    /// The changed values; empty when the text already pins the update.
    pub changes: Vec<Change>,
    /// The tags found before the rewrite in matching references, as written.
    pub old_tags: Vec<String>,
    /// How many references or entries matched the image.
    pub matched: usize,
}

/// Pins every reference to `image` in `text` to `name:tag@digest`.
pub fn rewrite(text: &str, image: &Repository, tag: &str, digest: &Digest) -> Rewrite {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let mut changes = Vec::new();
    let mut old_tags = Vec::new();
    let mut matched = 0;

    for (index, line) in lines.iter_mut().enumerate() {
        let Some(value) = ImageLine::parse(line) else { continue };
        let Ok(reference) = ImageReference::parse(value.unquoted()) else {
            continue;
        };
        if reference.repository() != *image {
            continue;
        }
        matched += 1;
        if let Some(old) = reference.tag() {
            old_tags.push(old.to_owned());
        }
        let name = name_as_written(value.unquoted());
        let new = format!("{name}:{tag}@{digest}");
        if value.unquoted() != new {
            changes.push(Change {
                line: index + 1,
                old: value.unquoted().to_owned(),
                new: new.clone(),
            });
            *line = value.replace(line, &new);
        }
    }

    kustomize_images(
        &mut lines,
        image,
        tag,
        digest,
        &mut changes,
        &mut old_tags,
        &mut matched,
    );

    Rewrite {
        text: lines.concat(),
        changes,
        old_tags,
        matched,
    }
}

/// The repository part of a reference as written: without `:tag` and
/// `@digest`, host and path spelled as in the file.
fn name_as_written(reference: &str) -> &str {
    let base = reference.split('@').next().unwrap_or(reference);
    let slash = base.rfind('/').map_or(0, |i| i + 1);
    match base[slash..].find(':') {
        Some(colon) => &base[..slash + colon],
        None => base,
    }
}

/// The value of an `image:` line and where it sits.
struct ImageLine<'a> {
    /// Byte range of the value including quotes.
    start: usize,
    end: usize,
    quote: Option<char>,
    raw: &'a str,
}

impl<'a> ImageLine<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let trimmed = line.trim_start();
        let mut offset = line.len() - trimmed.len();
        let mut rest = trimmed;
        if let Some(after) = rest.strip_prefix("- ") {
            let after_ws = after.trim_start();
            offset += rest.len() - after_ws.len();
            rest = after_ws;
        }
        let after_key = rest.strip_prefix("image:")?;
        offset += "image:".len();
        let value = after_key.trim_start();
        if value.len() == after_key.len() && !value.is_empty() && !value.starts_with(['\n', '\r']) {
            // `image:x` is not a key followed by a value.
            return None;
        }
        offset += after_key.len() - value.len();
        let (quote, len) = match value.chars().next()? {
            q @ ('"' | '\'') => {
                let close = value[1..].find(q)?;
                (Some(q), close + 2)
            }
            _ => {
                let end = value
                    .find(" #")
                    .or_else(|| value.find(['\r', '\n']))
                    .unwrap_or(value.len());
                (None, value[..end].trim_end().len())
            }
        };
        if len == 0 {
            return None;
        }
        Some(Self {
            start: offset,
            end: offset + len,
            quote,
            raw: &line[offset..offset + len],
        })
    }

    fn unquoted(&self) -> &'a str {
        match self.quote {
            Some(_) => &self.raw[1..self.raw.len() - 1],
            None => self.raw,
        }
    }

    fn replace(&self, line: &str, new: &str) -> String {
        let value = match self.quote {
            Some(q) => format!("{q}{new}{q}"),
            None => new.to_owned(),
        };
        format!("{}{value}{}", &line[..self.start], &line[self.end..])
    }
}

/// Indentation (spaces) of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key: value` of a line inside a list item (after an optional `- `):
/// (column of the key, key, value without quotes or comment, line ending).
fn key_value(line: &str) -> Option<(usize, &str, &str)> {
    let mut col = indent(line);
    let mut rest = &line[col..];
    if let Some(after) = rest.strip_prefix("- ") {
        let after_ws = after.trim_start_matches(' ');
        col += rest.len() - after_ws.len();
        rest = after_ws;
    }
    let colon = rest.find(':')?;
    let key = &rest[..colon];
    if key.is_empty() || key.contains([' ', '#', '"', '\'']) {
        return None;
    }
    let mut value = rest[colon + 1..].trim();
    if let Some(hash) = value.find(" #") {
        value = value[..hash].trim_end();
    }
    let value = value.trim_matches(['"', '\'']);
    Some((col, key, value))
}

/// Replaces the value of a `key: value` line, keeping quotes and comments.
fn replace_value(line: &str, key: &str, new: &str) -> String {
    let key_at = line.find(&format!("{key}:")).unwrap_or(0);
    let value_from = key_at + key.len() + 1;
    let after = &line[value_from..];
    let ws = after.len() - after.trim_start_matches([' ', '\t']).len();
    let value_start = value_from + ws;
    let rest = &line[value_start..];
    let (quote, len) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => (Some(q), rest[1..].find(q).map_or(rest.len(), |c| c + 2)),
        _ => {
            let end = rest
                .find(" #")
                .or_else(|| rest.find(['\r', '\n']))
                .unwrap_or(rest.len());
            (None, rest[..end].trim_end().len())
        }
    };
    let value = match quote {
        Some(q) => format!("{q}{new}{q}"),
        None => new.to_owned(),
    };
    let sep = if ws == 0 { " " } else { "" };
    format!("{}{sep}{value}{}", &line[..value_start], &line[value_start + len..])
}

fn line_ending(line: &str) -> &'static str {
    if line.ends_with("\r\n") { "\r\n" } else { "\n" }
}

/// Rewrites matching entries of a top-level `images:` list (kustomize).
fn kustomize_images(
    lines: &mut Vec<String>,
    image: &Repository,
    tag: &str,
    digest: &Digest,
    changes: &mut Vec<Change>,
    old_tags: &mut Vec<String>,
    matched: &mut usize,
) {
    let Some(header) = lines.iter().position(|l| l.trim_end() == "images:" && indent(l) == 0) else {
        return;
    };
    // Items: `- ` at the list's column, up to the next top-level key.
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut list_col = None;
    let mut i = header + 1;
    while i < lines.len() {
        let line = &lines[i];
        if is_blank_or_comment(line) {
            i += 1;
            continue;
        }
        let col = indent(line);
        let is_item = line[col..].starts_with("- ");
        if is_item && list_col.is_none_or(|c| c == col) {
            list_col = Some(col);
            items.push((i, i + 1));
        } else if col == 0 || list_col.is_none() {
            break;
        } else if let Some(last) = items.last_mut() {
            last.1 = i + 1;
        }
        i += 1;
    }
    // Work from the end so that inserted lines do not shift later items.
    for &(start, end) in items.iter().rev() {
        let mut name = None;
        let mut new_name = None;
        let mut tag_line = None;
        let mut digest_line = None;
        let mut key_col = None;
        let mut last_key_line = start;
        for (n, line) in lines.iter().enumerate().take(end).skip(start) {
            let Some((col, key, value)) = key_value(line) else {
                continue;
            };
            if key_col.is_none() {
                key_col = Some(col);
            }
            if Some(col) != key_col {
                continue;
            }
            last_key_line = n;
            match key {
                "name" => name = Some(value.to_owned()),
                "newName" => new_name = Some(value.to_owned()),
                "newTag" => tag_line = Some((n, value.to_owned())),
                "digest" => digest_line = Some((n, value.to_owned())),
                _ => {}
            }
        }
        let effective = new_name.as_deref().or(name.as_deref());
        let Some(repo) = effective.and_then(|n| Repository::parse(n).ok()) else {
            continue;
        };
        if repo != *image {
            continue;
        }
        *matched += 1;
        let col = key_col.unwrap_or(2);
        let ending = line_ending(&lines[last_key_line]).to_owned();
        let digest_text = digest.to_string();
        let mut inserts = Vec::new();
        match &tag_line {
            Some((n, old)) => {
                old_tags.push(old.clone());
                if old != tag {
                    changes.push(Change {
                        line: n + 1,
                        old: old.clone(),
                        new: tag.to_owned(),
                    });
                    lines[*n] = replace_value(&lines[*n], "newTag", tag);
                }
            }
            None => inserts.push(format!("{}newTag: \"{tag}\"{ending}", " ".repeat(col))),
        }
        match &digest_line {
            Some((n, old)) => {
                if *old != digest_text {
                    changes.push(Change {
                        line: n + 1,
                        old: old.clone(),
                        new: digest_text.clone(),
                    });
                    lines[*n] = replace_value(&lines[*n], "digest", &digest_text);
                }
            }
            None => inserts.push(format!("{}digest: {digest_text}{ending}", " ".repeat(col))),
        }
        if !inserts.is_empty() {
            let at = last_key_line + 1;
            if !lines[last_key_line].ends_with('\n') {
                lines[last_key_line].push_str(&ending);
            }
            for (k, text) in inserts.into_iter().enumerate() {
                changes.push(Change {
                    line: at + 1,
                    old: String::new(),
                    new: text.trim().to_owned(),
                });
                lines.insert(at + k, text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn repo(s: &str) -> Repository {
        Repository::parse(s).unwrap()
    }

    fn digest() -> Digest {
        Digest::parse(D).unwrap()
    }

    #[test]
    fn rewrites_matching_containers_only_and_keeps_layout() {
        let text = "\
apiVersion: apps/v1
kind: Deployment
# the WES service
spec:
  template:
    spec:
      containers:
        - name: wes
          image: elixircloud/cwl-wes:1.0.0-production-201108-195630   # managed by tagcast
          imagePullPolicy: IfNotPresent
        - name: sidecar
          image: \"busybox:1.36\"
      initContainers:
        - image: 'docker.io/elixircloud/cwl-wes:1.0.0-production-201108-195630@sha256:{OLD}'
          name: migrate
"
        .replace("{OLD}", &"ab".repeat(32));
        let out = rewrite(
            &text,
            &repo("elixircloud/cwl-wes"),
            "1.1.0-production-201109-000000",
            &digest(),
        );
        let expected = format!(
            "\
apiVersion: apps/v1
kind: Deployment
# the WES service
spec:
  template:
    spec:
      containers:
        - name: wes
          image: elixircloud/cwl-wes:1.1.0-production-201109-000000@{D}   # managed by tagcast
          imagePullPolicy: IfNotPresent
        - name: sidecar
          image: \"busybox:1.36\"
      initContainers:
        - image: 'docker.io/elixircloud/cwl-wes:1.1.0-production-201109-000000@{D}'
          name: migrate
"
        );
        assert_eq!(out.text, expected);
        assert_eq!(out.matched, 2);
        assert_eq!(out.changes.len(), 2);
        assert_eq!(out.changes[0].line, 9);
        assert_eq!(
            out.old_tags,
            ["1.0.0-production-201108-195630", "1.0.0-production-201108-195630"]
        );
        // Idempotent: a second rewrite changes nothing.
        let again = rewrite(
            &out.text,
            &repo("elixircloud/cwl-wes"),
            "1.1.0-production-201109-000000",
            &digest(),
        );
        assert_eq!(again.text, out.text);
        assert!(again.changes.is_empty());
        assert_eq!(again.matched, 2);
    }

    #[test]
    fn registry_with_port_and_no_tag() {
        let text = "      - image: localhost:5000/ga4gh/tes\n";
        let out = rewrite(
            text,
            &repo("localhost:5000/ga4gh/tes"),
            "1.1-demo-201108-195630",
            &digest(),
        );
        assert_eq!(
            out.text,
            format!("      - image: localhost:5000/ga4gh/tes:1.1-demo-201108-195630@{D}\n")
        );
        assert!(out.old_tags.is_empty());
    }

    #[test]
    fn other_images_and_lookalike_keys_are_untouched() {
        let text = "imagePullPolicy: Always\nimage: elixircloud/cwl-wes-ui:1.0\nmyimage: elixircloud/cwl-wes:1\n";
        let out = rewrite(
            text,
            &repo("elixircloud/cwl-wes"),
            "1.1.0-production-201109-000000",
            &digest(),
        );
        assert_eq!(out.text, text);
        assert_eq!(out.matched, 0);
    }

    #[test]
    fn kustomization_entries_updated_or_completed() {
        let text = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: elixircloud/cwl-wes   # the service
    newTag: \"1.0.0-production-201108-195630\"
  - name: busybox
    newTag: \"1.36\"
  - name: wes-placeholder
    newName: docker.io/elixircloud/cwl-wes
namePrefix: prod-
";
        let out = rewrite(
            text,
            &repo("docker.io/elixircloud/cwl-wes"),
            "1.1.0-production-201109-000000",
            &digest(),
        );
        let expected = format!(
            "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: elixircloud/cwl-wes   # the service
    newTag: \"1.1.0-production-201109-000000\"
    digest: {D}
  - name: busybox
    newTag: \"1.36\"
  - name: wes-placeholder
    newName: docker.io/elixircloud/cwl-wes
    newTag: \"1.1.0-production-201109-000000\"
    digest: {D}
namePrefix: prod-
"
        );
        assert_eq!(out.text, expected);
        assert_eq!(out.matched, 2);
        assert_eq!(out.old_tags, ["1.0.0-production-201108-195630"]);
        let again = rewrite(
            &out.text,
            &repo("docker.io/elixircloud/cwl-wes"),
            "1.1.0-production-201109-000000",
            &digest(),
        );
        assert!(again.changes.is_empty());
    }

    #[test]
    fn kustomization_list_at_column_zero() {
        let text = "images:\n- name: elixircloud/cwl-wes\n  newTag: old\n  digest: sha256:00\nresources: []\n";
        let out = rewrite(
            text,
            &repo("elixircloud/cwl-wes"),
            "1.1.0-demo-201109-000000",
            &digest(),
        );
        assert_eq!(
            out.text,
            format!(
                "images:\n- name: elixircloud/cwl-wes\n  newTag: 1.1.0-demo-201109-000000\n  digest: {D}\nresources: []\n"
            )
        );
    }

    #[test]
    fn crlf_endings_are_kept() {
        let text = "containers:\r\n  - image: elixircloud/cwl-wes:1.0 # x\r\n";
        let out = rewrite(text, &repo("elixircloud/cwl-wes"), "1.1-demo-201109-000000", &digest());
        assert_eq!(
            out.text,
            format!("containers:\r\n  - image: elixircloud/cwl-wes:1.1-demo-201109-000000@{D} # x\r\n")
        );
    }

    #[test]
    fn name_as_written_strips_tag_and_digest() {
        assert_eq!(name_as_written("a/b:1@sha256:00"), "a/b");
        assert_eq!(name_as_written("localhost:5000/a"), "localhost:5000/a");
        assert_eq!(name_as_written("localhost:5000/a:t"), "localhost:5000/a");
        assert_eq!(name_as_written("busybox"), "busybox");
    }
}
