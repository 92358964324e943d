//! The HTML report as a browser shows it: `knockoff-score` writes the report for the tiny
//! model and the labelled fixture, headless Chromium renders it, and the test checks the
//! rendered DOM and takes a screenshot.
//!
//! Needs `/usr/bin/chromium` (Debian: `apt-get install -y chromium`). Without it the test
//! prints "SKIPPED: chromium not installed" and passes, except when `CI` is set: CI installs
//! Chromium, so there a missing browser is a failure.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Upper bound for one Chromium run (they take about two seconds).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// A blank 1280×2400 PNG compresses to a few kilobytes; the rendered report is far larger.
const MIN_SCREENSHOT_BYTES: u64 = 30_000;

/// Returns the browser, or `None` after printing why the test is skipped.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing; CI must install it (apt-get install -y chromium)");
    }
    println!(
        "SKIPPED: chromium not installed ({CHROMIUM}); install it with \
         `apt-get install -y chromium` to run this test"
    );
    None
}

struct BrowserRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium on `page` with `extra` flags and a fresh profile, within
/// [`BROWSER_TIMEOUT`]. The browser and its helper processes get a process group of their
/// own, which is killed whole if the run overruns.
fn run_chromium(browser: &Path, page: &Path, extra: &[String]) -> BrowserRun {
    let profile = tempfile::tempdir().expect("temporary profile directory");
    let url = format!("file://{}", page.display());
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", browser.display()));
    let group = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // Only called while the group certainly exists (its leader not yet reaped, or a member
    // still holding our pipes open), so the id cannot belong to anyone else.
    let kill_group = || {
        // SAFETY: kill(2) with a negative pid signals the process group created above.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    };

    // Pipes are drained from the start: a dumped DOM is larger than a pipe buffer.
    let (sent, received) = mpsc::channel();
    let pipes: [(usize, Box<dyn Read + Send>); 2] = [
        (0, Box::new(child.stdout.take().expect("piped stdout"))),
        (1, Box::new(child.stderr.take().expect("piped stderr"))),
    ];
    for (stream, mut pipe) in pipes {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = sent.send(Event::Pipe(
                stream,
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        });
    }
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = sent.send(Event::Exited);
        status
    });

    let mut streams = [String::new(), String::new()];
    let mut timed_out = false;
    for _ in 0..3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = received.recv_timeout(left).unwrap_or_else(|_| {
            timed_out = true;
            kill_group();
            received.recv().expect("chromium watcher threads")
        });
        if let Event::Pipe(stream, text) = event {
            streams[stream] = text;
        }
    }
    let status = waiter
        .join()
        .expect("waiter thread")
        .expect("waiting for chromium");
    let [stdout, stderr] = streams;
    assert!(
        !timed_out,
        "chromium did not finish within {BROWSER_TIMEOUT:?} for {url}\nstderr:\n{stderr}"
    );
    BrowserRun {
        status,
        stdout,
        stderr,
    }
}

enum Event {
    Pipe(usize, String),
    Exited,
}

/// The markup of the element whose opening tag carries `id="{id}"`, up to the matching
/// close of its tag name (same-name nesting is counted).
fn element<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no element with {marker} in the rendered DOM"));
    let start = dom[..at].rfind('<').expect("opening tag");
    let name: String = dom[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let (open, close) = (format!("<{name}"), format!("</{name}>"));
    let mut depth = 0usize;
    let mut pos = start;
    loop {
        let next_open = dom[pos + 1..].find(&open).map(|i| i + pos + 1);
        let next_close = dom[pos + 1..]
            .find(&close)
            .map(|i| i + pos + 1)
            .unwrap_or_else(|| panic!("element {id} is not closed"));
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                pos = o;
            }
            _ if depth > 0 => {
                depth -= 1;
                pos = next_close;
            }
            _ => return &dom[start..next_close + close.len()],
        }
    }
}

/// Text content of some markup: tags dropped, entities for `&`, `<`, `>` decoded.
fn text_of(markup: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn assert_chart(dom: &str, id: &str) {
    let figure = element(dom, id);
    let svg = figure
        .find("<svg")
        .map(|i| &figure[i..])
        .unwrap_or_else(|| panic!("#{id} has no svg: {}", &figure[..figure.len().min(300)]));
    let shapes = ["<rect", "<path", "<polyline", "<circle", "<line"]
        .iter()
        .map(|tag| svg.matches(tag).count())
        .sum::<usize>();
    assert!(
        shapes >= 5,
        "#{id} svg draws almost nothing ({shapes} shapes)"
    );
    assert!(svg.contains("<text"), "#{id} svg has no labels");
}

#[test]
fn html_report_renders_in_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let output = Command::new(env!("CARGO_BIN_EXE_knockoff-score"))
        .arg("--model")
        .arg(model.path())
        .arg("--input")
        .arg(common::fixture("tiny-listings.csv"))
        .arg("--output")
        .arg(dir.path().join("scored.csv"))
        .arg("--report")
        .arg(&report)
        .arg("--store")
        .arg(dir.path().join("knockoff.db"))
        .args(["--min-group-rows", "100"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("running knockoff-score");
    assert!(
        output.status.success(),
        "knockoff-score failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let run = run_chromium(&browser, &report, &["--dump-dom".to_string()]);
    assert!(
        run.status.success(),
        "chromium --dump-dom failed ({}):\n{}",
        run.status,
        run.stderr
    );
    let dom = run.stdout;
    assert!(dom.contains("</html>"), "no DOM dumped:\n{}", run.stderr);

    let headline = text_of(element(&dom, "headline"));
    assert!(
        headline.starts_with("Estimated ") && headline.contains("300 listings"),
        "{headline}"
    );
    let percent = headline
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.strip_suffix('%'))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no leading percentage in {headline:?}"));
    assert!((0.0..=100.0).contains(&percent), "{headline}");
    assert!(headline.contains("95% CI"), "{headline}");

    for id in [
        "chart-category",
        "chart-scores",
        "chart-roc",
        "chart-pr",
        "chart-reliability",
    ] {
        assert_chart(&dom, id);
    }

    let table = element(&dom, "groups-table");
    let rows: Vec<&str> = table.split("<tr").skip(2).collect(); // header row first
    assert!(rows.len() > 20, "only {} group rows", rows.len());
    let currency = rows
        .iter()
        .map(|r| text_of(&format!("<tr{r}")))
        .find(|t| t.starts_with("currencyCNY"))
        .expect("a row for currency CNY");
    assert!(
        currency.contains('%') && currency.contains('–'),
        "{currency}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("too few listings (fewer than 100)")),
        "no group marked too small"
    );

    let screenshot = dir.path().join("report.png");
    let run = run_chromium(
        &browser,
        &report,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2400".to_string(),
        ],
    );
    assert!(
        run.status.success(),
        "chromium --screenshot failed ({}):\n{}",
        run.status,
        run.stderr
    );
    let bytes = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", screenshot.display(), run.stderr));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() as u64 >= MIN_SCREENSHOT_BYTES,
        "screenshot is only {} bytes",
        bytes.len()
    );
    // PNG IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2400));
}
