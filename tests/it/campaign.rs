//! The crash campaign: `tandem run` processes SIGKILLed at random moments (mid-window, mid-
//! commit, mid-resume), each kill followed by checks that the history is intact
//! (`PRAGMA integrity_check`), that every window committed before the kill is still there and
//! whole, and that the checkpoint the history names matches its last window; every run is then
//! resumed (and killed again at random, half the time) until it finishes, and its windows must
//! equal an uninterrupted run's exactly. One round here; `TANDEM_CRASH_ROUNDS=N` (and
//! `TANDEM_CRASH_SEED`) for the campaign in `scripts/reliability.sh`, which prints the figures.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tandem::history::History;

use super::cli::{committed, data_dir, runs, signal, tandem, tiny_scenario};
use super::support::{Rng, runtime};

const WINDOWS: u32 = 4;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every run's committed windows, and the database's own check: windows numbered from 0 with
/// no gap, each with both streams; the
/// checkpoint named for the run is whole and belongs to its last window. Returns each run's
/// windows' mean accuracies.
fn verify(data: &Path) -> Vec<(i64, Vec<f64>)> {
    runtime().block_on(async {
        let h = History::open(&data.join("history.sqlite")).await.unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(h.pool())
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let mut out = Vec::new();
        for r in h.runs().await.unwrap() {
            let rows = h.windows(r.id).await.unwrap();
            for (i, w) in rows.iter().enumerate() {
                assert_eq!(w.window, i as i64, "run {}: a gap before window {i}", r.id);
                assert_eq!(
                    h.stream_windows(r.id, Some(w.window)).await.unwrap().len(),
                    2
                );
            }
            let checkpoint: Option<String> =
                sqlx::query_scalar("SELECT checkpoint FROM runs WHERE id = ?")
                    .bind(r.id)
                    .fetch_one(h.pool())
                    .await
                    .unwrap();
            if r.status != "finished" && !rows.is_empty() {
                let dir = data.join(checkpoint.expect("a run with windows has a checkpoint"));
                let state: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap())
                        .unwrap();
                assert_eq!(state["next_window"], rows.len(), "run {}", r.id);
                for i in 0..2 {
                    assert!(dir.join(format!("stream-{i}.safetensors")).is_file());
                    assert!(dir.join(format!("memory-{i}.safetensors")).is_file());
                }
            }
            out.push((r.id, rows.iter().map(|w| w.mean_accuracy).collect()));
        }
        out
    })
}

/// Let `child` run for `after`, then SIGKILL it (unless it already ended): whether it was
/// killed, and the windows committed just before the signal.
fn kill_after(mut child: Child, after: Duration, data: &Path) -> (bool, i64) {
    let t = Instant::now();
    while t.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return (false, committed(data));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = committed(data);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        signal(&child, "-KILL");
    }
    child.wait().unwrap();
    (killed, before)
}

/// Wait until run `id` no longer reads as running (its lease lapsed); its status then.
fn settled(data: &Path, id: i64) -> String {
    let t = Instant::now();
    loop {
        let (_, status, _, _) = runs(data).into_iter().find(|r| r.0 == id).unwrap();
        if status != "running" {
            return status;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "run {id} still running"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn runs_killed_at_random_moments_stay_whole_and_resume_to_the_same_result() {
    let _one = super::support::one_binary_at_a_time();
    let rounds = env("TANDEM_CRASH_ROUNDS", 1);
    let seed = env("TANDEM_CRASH_SEED", 1);
    let mut rng = Rng::new(seed);
    let data = data_dir();
    let scenario = tiny_scenario(&data, WINDOWS);
    // Every run starts from an empty zoo, as the reference did (a finished run saves its zoo
    // to the data dir, where the next run would start from it); a resumed run takes its zoo
    // from its checkpoint.
    let mut text = std::fs::read_to_string(&scenario).unwrap();
    text.push_str("\n[zoo]\nstart = \"fresh\"\n");
    std::fs::write(&scenario, text).unwrap();
    let s = scenario.to_str().unwrap().to_string();
    let d = data.to_str().unwrap().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--backend", "cpu", "--data-dir", &d];
        args.extend_from_slice(extra);
        tandem(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The reference: one uninterrupted run. It pretrains the starting model, which later
    // runs find cached, so a run's life is estimated from its windows: one window's time to
    // start up, then the windows.
    let mut reference = run(&[&s]);
    while committed(&data) < 1 {
        assert!(
            reference.try_wait().unwrap().is_none(),
            "the reference run ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    assert!(reference.wait().unwrap().success());
    let window = t.elapsed().as_secs_f64() / f64::from(WINDOWS - 1);
    let run_time = window * f64::from(WINDOWS + 1);
    let whole = verify(&data).remove(0).1;
    assert_eq!(whole.len(), WINDOWS as usize);
    let (mut kills, mut resumes, mut lost) = (0, 0, 0);
    for _ in 0..rounds {
        // Kill at a random moment of the run's life (before its first window is recorded,
        // too), then resume until it finishes, killing half of the resumes at random.
        let known = runs(&data).len();
        let mut process = run(&[&s]);
        let mut id = None;
        loop {
            let after = Duration::from_secs_f64(run_time * f64::from(rng.uniform(0.05, 0.95)));
            let (killed, before) = kill_after(process, after, &data);
            kills += usize::from(killed);
            // Every window committed before the kill is still there, whole.
            let now: i64 = verify(&data).iter().map(|(_, w)| w.len() as i64).sum();
            lost += (before - now).max(0);
            let all = runs(&data);
            if id.is_none() && all.len() > known {
                id = Some(all[0].0);
            }
            let Some(id) = id else {
                // Killed before the run was recorded: start it again.
                process = run(&[&s]);
                continue;
            };
            if settled(&data, id) == "finished" {
                break;
            }
            resumes += 1;
            let mut resume = run(&["--resume", &id.to_string()]);
            if rng.below(2) == 0 {
                process = resume;
            } else {
                assert!(
                    resume.wait().unwrap().success(),
                    "resume of run {id} failed"
                );
                break;
            }
        }
        let id = id.unwrap();
        let (_, status, done, _) = runs(&data).into_iter().find(|r| r.0 == id).unwrap();
        assert_eq!((status.as_str(), done), ("finished", i64::from(WINDOWS)));
        let windows = verify(&data).into_iter().find(|r| r.0 == id).unwrap().1;
        assert_eq!(
            windows, whole,
            "run {id}: resumed windows differ from the uninterrupted run"
        );
    }
    eprintln!(
        "crash campaign (seed {seed}): {rounds} run(s), {kills} SIGKILLs, {resumes} resumes, \
         {lost} committed windows lost, every run finished equal to the uninterrupted one"
    );
    assert_eq!(lost, 0);
}
