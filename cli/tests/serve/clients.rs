//! Real clients against the server: the official `openai` Python package, the curl
//! commands of the README's "Serve" section, and the chat page in headless Chromium. Each
//! runs where its tool is installed and otherwise skips saying why; `LAMINA_REQUIRE_OPENAI=1`,
//! `LAMINA_REQUIRE_CURL=1` and `LAMINA_REQUIRE_BROWSER=1` turn those skips into failures.

use crate::model;
use crate::server::Server;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    lamina_testkit::repo_root()
}

/// Whether `probe` runs successfully; if not, skip (or fail under `require`).
fn available(probe: &mut Command, what: &str, require: &str) -> bool {
    if probe.output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{require}=1 but {what} is not available");
    }
    eprintln!("skipping: {what} is not available (set {require}=1 to make this a failure)");
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_openai_python_client_works() {
    let Some(m) = model() else { return };
    if !available(
        Command::new("python3").args(["-c", "import openai"]),
        "python3 with `openai`",
        "LAMINA_REQUIRE_OPENAI",
    ) {
        return;
    }
    let server = Server::start(&["-m", &m, "--ctx", "1024", "--parallel", "2"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/openai_client.py");
    let out = run(Command::new("python3").arg(script).arg(format!("http://{}", server.addr)));
    assert!(out.contains("ok:"), "{out}");
}

/// The curl commands in the README's "Serve" section, pointed at this server.
fn readme_curl_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("\n## Serve").nth(1).expect("the README has a Serve section");
    let section = section.split("\n## ").next().unwrap();
    let mut commands = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("curl ") {
            continue;
        }
        let mut cmd = line.to_string();
        while cmd.ends_with('\\') {
            cmd.pop();
            cmd.push_str(lines.next().unwrap_or(""));
        }
        commands.push(cmd);
    }
    commands
}

#[test]
fn the_readme_curl_examples_work() {
    let Some(m) = model() else { return };
    if !available(Command::new("curl").arg("--version"), "curl", "LAMINA_REQUIRE_CURL") {
        return;
    }
    let commands = readme_curl_commands();
    assert!(commands.len() >= 2, "expected curl examples in the README's Serve section");
    let server = Server::start(&["-m", &m, "--ctx", "512", "--parallel", "2"]);
    for cmd in commands {
        let cmd = cmd.replace("127.0.0.1:8080", &server.addr).replace("localhost:8080", &server.addr);
        let out = run(Command::new("sh").args(["-c", &format!("{cmd} --fail-with-body --silent --show-error")]));
        assert!(!out.contains("\"error\""), "{cmd}:\n{out}");
        assert!(out.contains("\"choices\"") || out.contains("\"data\"") || out.contains("\"status\""), "{cmd}:\n{out}");
    }
}

/// CI does not install Chromium (too large for its time budget), so there this skips;
/// `scripts/test_chat_page.py` runs the same check against any running server.
#[test]
fn the_chat_page_streams_an_answer_in_chromium() {
    let Some(m) = model() else { return };
    let probe =
        "import selenium, shutil, sys; sys.exit(0 if shutil.which('chromium') and shutil.which('chromedriver') else 1)";
    if !available(
        Command::new("python3").args(["-c", probe]),
        "chromium, chromedriver and selenium",
        "LAMINA_REQUIRE_BROWSER",
    ) {
        return;
    }
    let server = Server::start(&["-m", &m, "--ctx", "512", "--parallel", "2"]);
    let out = run(Command::new("python3")
        .arg(repo().join("scripts/test_chat_page.py"))
        .arg(format!("http://{}", server.addr)));
    assert!(out.contains("ok:"), "{out}");
}
