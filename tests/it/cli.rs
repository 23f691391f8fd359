//! The real `tandem` binary, as a user runs it: bad arguments refused before anything runs, a
//! policy that fails every call failing the run, a scenario error said once, no graphics
//! noise, Ctrl-C stopping a run after its window (resumable), and `serve` shutting down within
//! 5 s with a Live page's event stream open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tandem::history::History;

use super::engine::TINY;
use super::support::runtime;

/// A fresh data directory whose compiled-plugin cache is shared by every test here (debug
/// wasmtime compiles a built-in in about a second; the cache is written atomically).
pub(crate) fn data_dir() -> PathBuf {
    let dir = super::data::tempdir();
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-compiled");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, dir.join("compiled")).unwrap();
    dir
}

/// `tandem` with `args`, no graphics runtime dir (as on a bare server), output captured.
pub(crate) fn tandem(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null());
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tiny scenario with `windows` windows, written into `dir`.
pub(crate) fn tiny_scenario(dir: &Path, windows: u32) -> PathBuf {
    let path = dir.join("tiny.toml");
    let text = TINY.replace("windows = 2", &format!("windows = {windows}"));
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Runs' (id, status, windows, mean accuracy) as the history reads them.
pub(crate) fn runs(data: &Path) -> Vec<(i64, String, i64, Option<f64>)> {
    runtime().block_on(async {
        let h = History::open(&data.join("history.sqlite")).await.unwrap();
        h.runs()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.status, r.windows_done, r.mean_accuracy))
            .collect()
    })
}

/// Committed windows in `data`'s history (0 before it exists), read-only.
pub(crate) fn committed(data: &Path) -> i64 {
    let db = data.join("history.sqlite");
    runtime().block_on(async {
        let Ok(pool) = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .read_only(true),
        )
        .await
        else {
            return 0;
        };
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM windows")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        pool.close().await;
        n
    })
}

/// Wait until `data`'s history holds `n` windows, the child still running.
pub(crate) fn wait_for_windows(child: &mut Child, data: &Path, n: i64) {
    let started = Instant::now();
    while committed(data) < n {
        assert!(child.try_wait().unwrap().is_none(), "tandem exited early");
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no window in 10 min"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_arguments_are_refused_before_anything_runs() {
    let _one = super::support::one_binary_at_a_time();
    let dir = data_dir();
    let scenario = tiny_scenario(&dir, 2);
    let s = scenario.to_str().unwrap();
    let d = dir.to_str().unwrap();
    // No windows: refused by the argument parser.
    let out = tandem(&["run", s, "--windows", "0", "--data-dir", d])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("--windows"), "{}", text(&out).1);
    // A parameter the policy does not declare: refused with the valid names, nothing run.
    let out = tandem(&[
        "run",
        s,
        "--policy",
        "thief:bogus=1",
        "--backend",
        "cpu",
        "--data-dir",
        d,
    ])
    .output()
    .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no parameter `bogus`"), "{err}");
    assert!(err.contains("variant (text)"), "{err}");
    assert_eq!(committed(&dir), 0, "nothing ran");
    // A missing scenario and a binary one: one clear line each, the OS error said once.
    let out = tandem(&["run", "/no/such/scenario.toml"]).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let binary = dir.join("binary.toml");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255]).unwrap();
    let out = tandem(&["run", binary.to_str().unwrap()]).output().unwrap();
    let (_, err) = text(&out);
    assert!(err.contains("not a text file"), "{err}");
    assert_eq!(err.matches("valid UTF-8").count(), 0, "{err}");
    // A modelled server of a billion GPUs is refused, naming the key.
    let huge = dir.join("huge.toml");
    std::fs::write(
        &huge,
        TINY.replace("seed = 5", "seed = 5\ngpus = 1000000000"),
    )
    .unwrap();
    let out = tandem(&["run", huge.to_str().unwrap()]).output().unwrap();
    let (_, err) = text(&out);
    assert!(err.contains("`gpus`: must be from 1 to 1024"), "{err}");
    // A samplelist outside the scenario's folder is refused, naming the key and line.
    let escape = dir.join("escape.toml");
    std::fs::write(
        &escape,
        "name = \"x\"\nwindows = 1\n[[cameras]]\nname = \"a\"\nsource = \"samplelist\"\nsamplelist = \"../../etc/passwd\"\n",
    )
    .unwrap();
    let out = tandem(&["run", escape.to_str().unwrap()]).output().unwrap();
    let (_, err) = text(&out);
    assert!(
        err.contains("escape.toml:6: `cameras[0].samplelist`") && err.contains("outside"),
        "{err}"
    );
}

#[test]
fn a_policy_that_fails_every_call_fails_the_run() {
    let _one = super::support::one_binary_at_a_time();
    let dir = data_dir();
    // One window long enough for the policy to be asked after the profile.
    let scenario = dir.join("long-window.toml");
    std::fs::write(
        &scenario,
        TINY.replace("windows = 2", "windows = 1\nwindow_seconds = 1000"),
    )
    .unwrap();
    let wasm = dir.join("misbehave.wasm");
    std::fs::write(&wasm, super::plugins::guest_bytes("test-misbehave")).unwrap();
    let policy = format!("{}:mode=panic", wasm.display());
    // `auto` enumerates the graphics adapters: with no XDG_RUNTIME_DIR that used to print two
    // alarming lines.
    let out = tandem(&[
        "run",
        scenario.to_str().unwrap(),
        "--policy",
        &policy,
        "--json",
        "--backend",
        "auto",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed every call"), "{err}");
    assert!(err.contains("misbehaving on purpose"), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let f = &json["policy_fallbacks"];
    assert!(f["calls"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(f["calls"], f["failed"], "{json}");
    assert!(
        f["reasons"][0][0]
            .as_str()
            .unwrap()
            .contains("misbehaving on purpose"),
        "{json}"
    );
}

#[test]
fn ctrl_c_stops_a_run_after_its_window_and_it_resumes() {
    let _one = super::support::one_binary_at_a_time();
    let dir = data_dir();
    let scenario = tiny_scenario(&dir, 6);
    let d = dir.to_str().unwrap();
    let mut child = tandem(&[
        "run",
        scenario.to_str().unwrap(),
        "--backend",
        "cpu",
        "--data-dir",
        d,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_windows(&mut child, &dir, 1);
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--resume 1"), "{err}");
    // Closed as interrupted by the run itself (no lease to wait for), with its mean.
    let (id, status, done, mean) = runs(&dir).remove(0);
    assert_eq!((id, status.as_str()), (1, "interrupted"));
    assert!((1..6).contains(&done) && mean.is_some(), "{done} {mean:?}");
    // Resumed, it runs the remaining windows and finishes.
    let out = tandem(&["run", "--resume", "1", "--backend", "cpu", "--data-dir", d])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let (_, status, done, _) = runs(&dir).remove(0);
    assert_eq!((status.as_str(), done), ("finished", 6));
    // A finished run is not resumed again, and its checkpoints are gone.
    let out = tandem(&["run", "--resume", "1", "--data-dir", d])
        .output()
        .unwrap();
    assert!(text(&out).1.contains("finished all its windows"));
    assert!(!dir.join("checkpoints/run-1").exists());
}

/// Read from an SSE connection until `needle` arrives (or the stream ends); whether it came.
fn read_until(r: &mut impl BufRead, needle: &str) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.contains(needle) => return true,
            Ok(_) => {}
        }
    }
}

#[test]
fn serve_shuts_down_within_5_s_with_an_event_stream_open() {
    let _one = super::support::one_binary_at_a_time();
    let dir = data_dir();
    let scenario = tiny_scenario(&dir, 2);
    let port = 20000 + (std::process::id() % 5000) as u16;
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "port = {port}\ndata_dir = \"{}\"\nscenario = \"{}\"\npace_seconds = 0.2\n",
            dir.display(),
            scenario.display()
        ),
    )
    .unwrap();
    let mut child = tandem(&["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(read_until(&mut stdout, "tandem dashboard:"), "no address");
    // A Live page's event stream, open and receiving.
    let mut sse = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sse.write_all(b"GET /live/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut events = BufReader::new(sse.try_clone().unwrap());
    assert!(read_until(&mut events, "event: window"), "no first event");
    // The live run commits a window, then SIGTERM mid-run.
    wait_for_windows(&mut child, &dir, 1);
    let t = Instant::now();
    signal(&child, "-TERM");
    // The event stream ends...
    let mut rest = Vec::new();
    let _ = events.read_to_end(&mut rest);
    // ...and the server exits, within 5 s of the signal.
    let status = child.wait().unwrap();
    let took = t.elapsed();
    eprintln!(
        "shutdown: serve exited {:.2} s after SIGTERM with an SSE stream open",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    assert!(status.success(), "{status:?}");
    // The live run is closed as interrupted at once, with the mean over its windows.
    let (_, status, done, mean) = runs(&dir).remove(0);
    assert_eq!(status, "interrupted");
    assert!(done >= 1 && mean.is_some(), "{done} {mean:?}");
}

#[test]
fn replay_json_carries_the_fallbacks_reasons_and_checks_its_options() {
    let _one = super::support::one_binary_at_a_time();
    let dir = data_dir();
    let wasm = dir.join("misbehave.wasm");
    std::fs::write(&wasm, super::plugins::guest_bytes("test-misbehave")).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ekya");
    let files: Vec<String> = ["city_a", "city_b"]
        .iter()
        .map(|c| fixtures.join(format!("{c}.json")).display().to_string())
        .collect();
    let policy = format!("{}:mode=panic", wasm.display());
    let d = dir.to_str().unwrap();
    let mut args = vec!["replay", "--json", "--data-dir", d, "--policies", &policy];
    args.extend(files.iter().map(String::as_str));
    let out = tandem(&args).output().unwrap();
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let f = &json["policies"][&policy]["policy_fallbacks"];
    assert_eq!(f["calls"], f["failed"], "{json}");
    assert!(
        f["reasons"][0][0]
            .as_str()
            .unwrap()
            .contains("misbehaving on purpose"),
        "{json}"
    );
    // A first decision after the window's end, and absurd GPU counts, are refused.
    for (bad, want) in [
        (&["--golden-delay", "1e9"][..], "is not shorter than the"),
        (&["--gpus", "1000000000"][..], "at most 1024"),
        (&["--policies", "thief:bogus=1"][..], "no parameter `bogus`"),
    ] {
        let mut args = vec!["replay", "--data-dir", d];
        args.extend_from_slice(bad);
        args.extend(files.iter().map(String::as_str));
        let out = tandem(&args).output().unwrap();
        let (_, err) = text(&out);
        assert!(
            !out.status.success() && err.contains(want),
            "{bad:?}: {err}"
        );
    }
}
