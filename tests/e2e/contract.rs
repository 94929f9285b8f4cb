//! `tagcast schema docs`: the readable schema documentation under
//! `schemas/docs/`, its drift test and its rendering in a real browser.

use std::process::Command;

use crate::support::{bless, path, run, stderr};

fn generate(dir: &std::path::Path) {
    let out = run(&["schema", "docs", "--out", dir.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The checked-in `schemas/docs/` equal what `tagcast schema docs` writes;
/// `TAGCAST_BLESS=1 cargo test` rewrites them.
#[test]
fn schema_docs_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let checked_in_dir = path("schemas/docs");
    let mut generated_names = Vec::new();
    let mut drifted = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        generated_names.push(entry.file_name());
        let generated = std::fs::read_to_string(entry.path()).unwrap();
        let checked_in = checked_in_dir.join(entry.file_name());
        if bless() {
            std::fs::create_dir_all(&checked_in_dir).unwrap();
            std::fs::write(&checked_in, &generated).unwrap();
        } else if std::fs::read_to_string(&checked_in).ok().as_deref() != Some(generated.as_str()) {
            drifted.push(checked_in.display().to_string());
        }
    }
    // A page whose schema is gone is drift too.
    for entry in std::fs::read_dir(&checked_in_dir).unwrap() {
        let name = entry.unwrap().file_name();
        if !generated_names.contains(&name) {
            drifted.push(format!("{} (no longer generated)", checked_in_dir.join(name).display()));
        }
    }
    assert!(
        drifted.is_empty(),
        "generated schema docs differ from the checked-in ones (run `TAGCAST_BLESS=1 cargo test` or \
         `cargo run -- schema docs`): {drifted:?}"
    );
}

#[test]
fn there_is_a_page_per_schema_and_index_html_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    for entry in std::fs::read_dir(path("schemas")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(slug) = name.strip_suffix(".schema.json") {
            assert!(dir.path().join(format!("{slug}.md")).exists(), "no page for {name}");
        }
    }
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for external in ["<script", "<link", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(
            !html.contains(external),
            "index.html refers to an external asset: {external}"
        );
    }
    assert!(html.contains("<nav aria-label=\"Contents\">"));
    assert!(
        html.contains("id=\"subscription.callbackurl\""),
        "an anchor per property"
    );
    assert!(
        html.contains("<a class=\"req\" href=\"#CB-16\">CB-16</a>")
            && html.contains("<section class=\"requirement\" id=\"CB-16\">"),
        "requirement IDs link to the requirement rendered in the page"
    );
}

/// Reports the layout of the page it is appended to into the parent page
/// (the frame that sets the viewport's width): the document's scroll and
/// client widths, how many property names there are and which of them
/// wrap, and the elements sticking out, for the failure message; where the
/// overview's heading ends and whether the contents list is shown (as
/// loaded, then once opened on a click's behalf: `checkVisibility` is false
/// inside a closed `<details>`); and every in-page link whose target the
/// browser cannot find (`getElementById` of the decoded fragment).
const MEASURE: &str = r##"<script>(function () {
  var d = document.documentElement, wide = [], broken = [];
  var links = document.querySelectorAll('a[href^="#"]'), dead = [];
  links.forEach(function (a) {
    var href = a.getAttribute('href'), id = null;
    try { id = decodeURIComponent(href.slice(1)); } catch (e) {}
    if (!id || !document.getElementById(id)) { if (dead.indexOf(href) < 0) dead.push(href); }
  });
  var overview = document.querySelector('#overview > h2');
  var details = document.querySelector('nav details');
  var last = document.querySelector('nav a[href="#requirements"]');
  var contents = {
    shown: !!last && last.checkVisibility(),
    navHeight: document.querySelector('nav').getBoundingClientRect().height,
    summaryBottom: details ? details.querySelector('summary').getBoundingClientRect().bottom : null
  };
  if (details && !details.open) {
    details.open = true;
    contents.shownOpened = !!last && last.checkVisibility();
    details.open = false;
  }
  document.querySelectorAll('body *').forEach(function (e) {
    if (e.getBoundingClientRect().right > d.clientWidth + 0.5 && !e.closest('.scroll') && wide.length < 10)
      wide.push(e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 60));
  });
  var props = document.querySelectorAll('code.prop');
  props.forEach(function (e) { if (e.getClientRects().length > 1) broken.push(e.textContent); });
  var titles = [];
  document.querySelectorAll('article > section > h3').forEach(function (h) { titles.push(h.textContent); });
  var out = parent.document.createElement('pre');
  out.id = 'measure';
  out.textContent = JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    props: props.length, broken: broken, wide: wide, titles: titles,
    bodyText: document.body.innerText.length, viewportHeight: window.innerHeight,
    overviewBottom: overview ? overview.getBoundingClientRect().bottom : null,
    contents: contents, links: links.length, deadLinks: dead});
  parent.document.body.appendChild(out);
})();</script>"##;

fn chromium(profile: &std::path::Path) -> Command {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// Headless Chromium renders `index.html` at a desktop (1280 px) and a phone
/// (390 px) width: a screenshot of each (kept in the target directory, see
/// the output), and a measuring copy of the page in a frame of that width
/// reports its layout: nothing wider than the viewport, no property name
/// broken across lines, every schema's title rendered, text on the page,
/// every in-page link with a target, and the contents beside the page on a
/// desktop but collapsed on a phone, so that the overview starts on its
/// first screen.
#[test]
#[ignore = "needs chromium"]
fn index_html_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let profile = tempfile::tempdir().unwrap();
    let index = dir.path().join("index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    std::fs::write(
        dir.path().join("measured.html"),
        html.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("schema-docs");
    std::fs::create_dir_all(&shots).unwrap();

    let mut titles = Vec::new();
    for entry in std::fs::read_dir(path("schemas")).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().ends_with(".schema.json") {
            let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            titles.push(schema["title"].as_str().unwrap().to_owned());
        }
    }
    assert!(titles.len() >= 9, "{titles:?}");

    for (name, width, height) in [("desktop", 1280_u32, 900_u32), ("phone", 390, 844)] {
        let shot = shots.join(format!("index-{name}.png"));
        let _ = std::fs::remove_file(&shot);
        let out = chromium(profile.path())
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", index.display()))
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
        assert_eq!(png_size(&png), (width, height), "{name} screenshot size");
        assert!(
            png.len() > 20_000,
            "{name} screenshot is nearly blank: {} bytes",
            png.len()
        );
        println!("{name} screenshot: {}", shot.display());

        // Chromium's windows are at least 500 px wide, so the phone width is
        // a frame's; the page inside measures itself.
        let frame = dir.path().join(format!("frame-{name}.html"));
        std::fs::write(
            &frame,
            format!(
                "<!DOCTYPE html><html><body style=\"margin:0\"><iframe src=\"measured.html\" \
                 width=\"{width}\" height=\"{height}\" style=\"border:0;display:block\"></iframe></body></html>"
            ),
        )
        .unwrap();
        let out = chromium(profile.path())
            .arg("--allow-file-access-from-files")
            .arg(format!("--window-size={},{}", width.max(500) + 20, height + 20))
            .arg("--dump-dom")
            .arg(format!("file://{}", frame.display()))
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dom = String::from_utf8_lossy(&out.stdout);
        let json = dom
            .split("<pre id=\"measure\">")
            .nth(1)
            .and_then(|rest| rest.split("</pre>").next())
            .unwrap_or_else(|| panic!("{name}: the page did not report its layout: {dom}"))
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let layout: serde_json::Value = serde_json::from_str(&json).unwrap();
        println!(
            "{name}: scroll width {} px, viewport {} px, {} property names",
            layout["scrollWidth"], layout["clientWidth"], layout["props"]
        );
        let (scroll, client) = (
            layout["scrollWidth"].as_u64().unwrap(),
            layout["clientWidth"].as_u64().unwrap(),
        );
        assert_eq!(client, u64::from(width), "{name}: the frame sets the viewport");
        assert!(
            scroll <= client,
            "{name}: the page is {scroll} px wide in a {client} px viewport; sticking out: {}",
            layout["wide"]
        );
        assert!(
            layout["props"].as_u64().unwrap() > 100,
            "{name}: property names rendered"
        );
        assert_eq!(
            layout["broken"],
            serde_json::json!([]),
            "{name}: property names broken across lines"
        );
        assert!(
            layout["bodyText"].as_u64().unwrap() > 10_000,
            "{name}: the page is (nearly) blank"
        );
        let rendered: Vec<&str> = layout["titles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        for title in &titles {
            assert!(
                rendered.contains(&title.as_str()),
                "{name}: {title} is not rendered: {rendered:?}"
            );
        }

        // Every in-page link lands on an element of the page.
        assert!(
            layout["links"].as_u64().unwrap() > 500,
            "{name}: in-page links counted: {}",
            layout["links"]
        );
        assert_eq!(
            layout["deadLinks"],
            serde_json::json!([]),
            "{name}: in-page links without a target element"
        );

        // The contents: beside the page on a desktop; one line above the
        // overview on a phone, which then starts on the first screen, and
        // the list one click away.
        let contents = &layout["contents"];
        println!(
            "{name}: {} in-page links, overview heading ends at {} px of {} px, contents {contents}",
            layout["links"], layout["overviewBottom"], layout["viewportHeight"]
        );
        assert_eq!(
            layout["viewportHeight"].as_u64(),
            Some(u64::from(height)),
            "{name}: the frame sets the viewport"
        );
        let overview_bottom = layout["overviewBottom"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: no overview heading"));
        if width >= 1000 {
            assert_eq!(
                contents["shown"], true,
                "{name}: the contents list is shown without a click"
            );
        } else {
            assert!(
                overview_bottom <= f64::from(height),
                "{name}: the overview's heading ends at {overview_bottom} px, below the first screen \
                 ({height} px): contents {contents}"
            );
            assert_eq!(contents["shown"], false, "{name}: the contents list is collapsed");
            assert!(
                contents["summaryBottom"].as_f64().is_some_and(|b| b <= overview_bottom),
                "{name}: the collapsed contents are above the overview: {contents}"
            );
            assert_eq!(contents["shownOpened"], true, "{name}: the collapsed contents open");
        }
    }
}
