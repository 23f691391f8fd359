//! The dashboard's router, called with `oneshot` (no socket): pages, JSON API, metrics,
//! the admin token and CSRF checks, upload validation and its size cap, history drill-down,
//! exports and escaping; serverless streams on the live, window and run pages and in
//! `/metrics`. One test, one runtime: the state holds a pool bound to it.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use tandem::compute::cpu::CpuBackend;
use tandem::engine::WindowReport;
use tandem::engine::phases::{Phase, WakeCosts, WakeKind};
use tandem::engine::report::{
    Allocation, ColdStartRecord, JobReport, LifecycleReport, PolicyCall, PredictionRecord,
    StreamLife, StreamReport, ZooCheckRecord, ZooReport, ZooUse,
};
use tandem::engine::zoo::{PRETRAINED, Zoo};
use tandem::history::{NewRun, RunEnd};
use tandem::http::{self, AppState};
use tandem::model::{Arch, Model};

pub(crate) const TOKEN: &str = "test-admin-token";
const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// The sign-in form's request: `token`, and the page to go back to.
fn login(token: &str, next: &str) -> Request<Body> {
    Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("tandem_csrf={CSRF}"))
        .body(Body::from(format!("csrf={CSRF}&token={token}&next={next}")))
        .unwrap()
}

/// Sign in with the admin token; returns the session cookie (`name=value`), after checking
/// that it is HttpOnly and does not hold the token.
async fn sign_in(app: &Router, next: &str) -> String {
    let resp = app.clone().oneshot(login(TOKEN, next)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.starts_with("tandem_session=") && set.contains("HttpOnly"),
        "{set}"
    );
    assert!(
        !set.contains(TOKEN),
        "the cookie must not hold the token: {set}"
    );
    set.split(';').next().unwrap().to_string()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.expect("router answers");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub(crate) fn multipart(
    uri: &str,
    cookie: Option<&str>,
    bearer: bool,
    csrf: &str,
    file: &[u8],
) -> Request<Body> {
    let boundary = "XtandemBoundaryX";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"<bad>.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = Request::post(uri).header(
        header::CONTENT_TYPE,
        format!("multipart/form-data; boundary={boundary}"),
    );
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    req.body(Body::from(body)).unwrap()
}

pub(crate) fn window() -> WindowReport {
    WindowReport {
        window: 0,
        mean_accuracy: 0.75,
        streams: vec![StreamReport {
            stream: "<cam>".into(),
            accuracy: 0.75,
            chunks: vec![0.7, 0.8],
            start_accuracy: 0.6,
            end_accuracy: 0.8,
            frames: 100,
            frames_processed: 90,
            infer_allocated_share: Some(0.3),
            infer_delivered_share: Some(0.29),
            // A finished job whose model validated worse and was not deployed.
            retrain: Some(JobReport {
                config: "head-e30".into(),
                predicted_accuracy: 0.9,
                actual_accuracy: Some(0.55),
                predicted_gpu_seconds: 10.0,
                actual_gpu_seconds: 11.0,
                started_at: 10.0,
                finished_at: Some(50.0),
                allocated_share: 0.5,
                delivered_share: 0.49,
                deployed: false,
            }),
            infer_config: "k1-r28".into(),
            infer_share: 0.25,
        }],
        profiler_gpu_seconds: 1.5,
        profiler_saved_gpu_seconds: 0.0,
        // Two zoo models checked for the stream, the better deployed as it is, and a selector
        // failure whose text needs escaping.
        zoo: Some(ZooReport {
            detections: Vec::new(),
            checks: vec![
                ZooCheckRecord {
                    stream: "<cam>".into(),
                    model: "m1".into(),
                    accuracy: 0.875,
                },
                ZooCheckRecord {
                    stream: "<cam>".into(),
                    model: "pretrained".into(),
                    accuracy: 0.5,
                },
            ],
            uses: vec![ZooUse {
                stream: "<cam>".into(),
                model: "m1".into(),
                as_is: true,
            }],
            added: vec![],
            evicted: vec!["m2".into()],
            models: 2,
            bytes: 4880,
            check_gpu_seconds: 0.25,
            errors: vec!["selector <script>alert(1)</script> failed".into()],
        }),
        lifecycle: None,
        gpus: 1,
        window_seconds: 200.0,
        decision_at: 10.0,
        // The policy failed its one call: the fallback decided.
        policy_calls: vec![PolicyCall {
            at: 10.0,
            plugin: "thief@0.1.0".into(),
            digest: "00".into(),
            input: tandem_plugin_sdk::sample::policy_input(1, 1, 18, 1),
            output: None,
            error: Some("plugin thief 0.1.0: trapped: on purpose".into()),
            micros: 5,
        }],
        allocations: vec![Allocation {
            at: 10.0,
            stream: "<cam>".into(),
            infer_share: 0.25,
            retrain_share: 0.5,
            infer_config: "k1-r28".into(),
            retrain_config: Some("head-e30".into()),
        }],
        predictions: vec![PredictionRecord {
            stream: "<cam>".into(),
            config: "head-e30".into(),
            predicted_accuracy: 0.9,
            predicted_gpu_seconds: 10.0,
            actual_accuracy: Some(0.55),
            actual_gpu_seconds: Some(11.0),
            estimator_error: None,
        }],
        gpu_utilization: 0.5,
    }
}

/// A zoo as a run saves it into `dir`: the pretrained model and `m1`, used once.
fn save_zoo(dir: &std::path::Path) {
    let be = CpuBackend::new(1);
    let arch = Arch {
        in_channels: 1,
        channels: [4, 4, 4],
        hidden: 8,
        classes: 4,
    };
    let mut zoo = Zoo::new(24, u64::MAX);
    let model = Model::new(&be, arch, 1);
    zoo.insert(&be, &model, (PRETRAINED, 0), vec![0.25; 18], 0.5);
    let (id, _) = zoo.insert(&be, &model, ("<cam>", 0), vec![0.5; 18], 0.75);
    assert_eq!(id, "m1");
    zoo.used(&id, 0);
    zoo.save(dir).unwrap();
}

/// The Zoo page, its JSON, and the window page's zoo part.
async fn zoo_pages(app: &Router) {
    let (status, body) = call(app, get("/zoo")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"<a href="/zoo" class="here">Zoo</a>"#),
        "{body}"
    );
    // The saved models, with origin, uses and signature summary.
    assert!(body.contains("&#60;cam&#62;, window 0"), "{body}");
    assert!(body.contains("brightness 0.50, contrast 0.50"), "{body}");
    // The latest run's windows: what was checked, what it measured, what served.
    assert!(body.contains("<code>m1</code> 0.875"), "{body}");
    assert!(body.contains("(deployed as it is)"), "{body}");
    assert!(body.contains("deployed as it is m1"), "{body}");
    assert!(body.contains("selector &#60;script&#62;"), "{body}");
    let (status, _) = call(app, get("/zoo?run=999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(app, get("/api/zoo")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["models"][1]["id"], "m1");
    assert_eq!(v["models"][1]["uses"], 1);
    assert_eq!(v["evictions"][0]["model"], "m2");
    let (status, body) = call(app, get("/api/zoo/m1")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"]["origin_stream"], "<cam>");
    // Both recorded runs checked and deployed it (neither was compared side by side).
    let story: Vec<(i64, &str)> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["run_id"].as_i64().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        story,
        [
            (1, "checked"),
            (1, "deployed"),
            (2, "checked"),
            (2, "deployed")
        ],
        "{v}"
    );
    let (status, _) = call(app, get("/api/zoo/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The window page and its JSON carry the window's zoo part.
    let (_, body) = call(app, get("/history/runs/1/windows/0")).await;
    assert!(body.contains("<h2>Model zoo</h2>"), "{body}");
    assert!(body.contains("<code>pretrained</code> 0.500"), "{body}");
    assert!(body.contains("evicted from the zoo: m2"), "{body}");
    let (_, body) = call(app, get("/api/runs/1/windows/0")).await;
    let w: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(w["zoo"]["uses"][0]["model"], "m1", "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_routes() {
    let dir = super::data::tempdir();
    let state = AppState::open(&dir, TOKEN.into(), http::scenario_choices(None))
        .await
        .expect("state opens");
    // A finished run whose names need escaping, straight into the history.
    let run = state
        .history
        .start_run(&NewRun {
            scenario: "tiny",
            scenario_json: r#"{"window_seconds": 200.0, "gpus": 1}"#,
            policy: "<script>alert(1)</script>",
            policy_digest: "00",
            backend: "cpu",
            windows_planned: 1,
            comparison: None,
        })
        .await
        .unwrap();
    state.history.record_window(run, &window()).await.unwrap();
    state
        .history
        .finish_run(run, RunEnd::Finished(0.75))
        .await
        .unwrap();
    save_zoo(&dir.join("zoo"));
    let app = http::app(state.clone());

    // Pages render, and a fresh browser gets a CSRF cookie.
    let resp = app.clone().oneshot(get("/live")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("tandem_csrf="), "{set_cookie}");
    for uri in [
        "/live",
        "/compare",
        "/history",
        "/plugins",
        "/zoo",
        "/zoo?run=1",
        "/history/runs/1",
        "/history/runs/1/windows/0",
    ] {
        let (status, body) = call(&app, get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(
            !body.contains("<script>alert"),
            "{uri} must escape stored names"
        );
    }
    let (_, body) = call(&app, get("/history?policy=script")).await;
    assert!(
        body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{body}"
    );
    // A run whose policy failed says so, on the list and on its page.
    assert!(body.contains("fallback decided 1 of 1"), "{body}");
    let (_, page) = call(&app, get("/history/runs/1")).await;
    assert!(page.contains("fallback decided 1 of 1"), "{page}");
    let (_, body) = call(&app, get("/history?policy=nothing-like-this")).await;
    assert!(body.contains("no runs match"));
    let (status, _) = call(&app, get("/history/runs/999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // JSON API and exports.
    let (status, body) = call(&app, get("/api/runs")).await;
    assert_eq!(status, StatusCode::OK);
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs[0]["policy"], "<script>alert(1)</script>");
    let (_, body) = call(&app, get("/api/runs/1/windows/0")).await;
    let w: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(w["allocations"][0]["retrain_config"], "head-e30");
    assert_eq!(w["jobs"][0]["deployed"], false, "{w}");
    assert_eq!(w["predictions"][0]["actual_accuracy"], 0.55, "{w}");
    // The window page says which job was not deployed, and why.
    let (_, body) = call(&app, get("/history/runs/1/windows/0")).await;
    assert!(body.contains("0.900 → 0.550"), "{body}");
    assert!(
        body.contains("validated worse than the serving model"),
        "{body}"
    );
    for uri in [
        "/api/live",
        "/api/streams",
        "/api/plugins",
        "/api/comparisons",
        "/api/runs/1/windows",
    ] {
        let (status, body) = call(&app, get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
    let (_, csv) = call(&app, get("/history/runs/1/export.csv")).await;
    assert!(csv.starts_with("run,policy,window,stream"), "{csv}");
    assert!(
        csv.contains("\"<script>alert(1)</script>\"") || csv.contains("<script>alert(1)</script>")
    );
    let (_, csv) = call(&app, get("/history/export.csv?scenario=tiny")).await;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let (status, _) = call(&app, get("/history/export.json")).await;
    assert_eq!(status, StatusCode::OK);
    // A label with a comma, quotes and a line break is quoted, and reads back whole.
    let odd = "fair:note=a, \"b\"\nc";
    let odd_run = state
        .history
        .start_run(&NewRun {
            scenario: "odd",
            scenario_json: "{}",
            policy: odd,
            policy_digest: "00",
            backend: "cpu",
            windows_planned: 1,
            comparison: None,
        })
        .await
        .unwrap();
    state
        .history
        .record_window(odd_run, &window())
        .await
        .unwrap();
    for (uri, column) in [
        (format!("/history/runs/{odd_run}/export.csv"), 1),
        ("/history/export.csv?scenario=odd".to_string(), 3),
    ] {
        let (_, text) = call(&app, get(&uri)).await;
        assert!(
            text.contains("\"fair:note=a, \"\"b\"\"\nc\""),
            "{uri}: {text}"
        );
        let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
            .records()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1, "{uri}: {text}");
        assert_eq!(&rows[0][column], odd, "{uri}");
    }
    // The filter travels percent-encoded into the page's export links.
    let (_, body) = call(
        &app,
        get("/history?policy=a%2Cb%20c%26d%C3%A9&comparison=3"),
    )
    .await;
    assert!(
        body.contains("export.csv?policy=a%2Cb%20c%26d%C3%A9&#38;comparison=3"),
        "{body}"
    );

    zoo_pages(&app).await;

    // Metrics in Prometheus text format.
    state.metrics.observe("live", "thief", &window());
    let (status, body) = call(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(
            "tandem_stream_accuracy{run=\"live\",policy=\"thief\",stream=\"<cam>\"} 0.75"
        ),
        "{body}"
    );
    assert!(body.contains("# TYPE tandem_plugin_failures_total counter"));

    // State changes need the token...
    let (status, _) = call(
        &app,
        multipart("/plugins/upload", None, false, CSRF, b"junk"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // ...a cookie holding the raw token is worth nothing (the cookie holds a session)...
    let raw = format!("tandem_admin={TOKEN}; tandem_session={TOKEN}; tandem_csrf={CSRF}");
    let (status, _) = call(
        &app,
        multipart("/plugins/upload", Some(&raw), false, CSRF, b"junk"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // ...and, by a signed-in session's cookie, the matching CSRF field.
    let session = sign_in(&app, "/plugins").await;
    let cookies = format!("{session}; tandem_csrf={CSRF}");
    let (status, body) = call(
        &app,
        multipart(
            "/plugins/upload",
            Some(&cookies),
            false,
            "ffffffffffffffffffffffffffffffff",
            b"junk",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A bad component is refused with the reason, and nothing is stored.
    let before = state.catalog.registry.list().unwrap().len();
    let (status, body) = call(
        &app,
        multipart("/plugins/upload", Some(&cookies), false, CSRF, b"not wasm"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("refused &#60;bad&#62;.wasm"), "{body}");
    assert!(body.contains("not a WebAssembly file"), "{body}");
    assert_eq!(state.catalog.registry.list().unwrap().len(), before);
    // Over the cap: 413.
    let big = vec![0u8; http::plugins::MAX_UPLOAD + 1];
    let (status, _) = call(&app, multipart("/plugins/upload", None, true, "", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Sign-in: wrong token refused; the right one opens a session (tested in `sign_in`).
    let (status, _) = call(&app, login("wrong", "/plugins")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Signing out ends the session on the server: its cookie no longer works.
    let logout = Request::post("/logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookies)
        .body(Body::from(format!("csrf={CSRF}")))
        .unwrap();
    let (status, _) = call(&app, logout).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = call(
        &app,
        multipart("/plugins/upload", Some(&cookies), false, CSRF, b"junk"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Comparisons check their policies before starting anything.
    let form = |body: &str| {
        Request::post("/compare")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body) = call(&app, form("scenario=demo&policy=no-such-policy")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = call(&app, form("scenario=nope&policy=thief")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&app, form("scenario=demo&policy=/etc/passwd.wasm")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // No windows, too many, or a parameter the policy does not declare: refused up front.
    for body in [
        "scenario=demo&policy=thief&windows=0",
        "scenario=demo&policy=thief&windows=51",
        "scenario=demo&policy=thief:bogus=1",
    ] {
        let (status, page) = call(&app, form(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {page}");
    }
    let (_, page) = call(&app, form("scenario=demo&policy=thief:bogus=1")).await;
    assert!(page.contains("no parameter `bogus`"), "{page}");
    assert!(state.arenas.list().is_empty(), "nothing started");

    // Built-ins can be disabled but not deleted.
    if let Some(thief) = state.catalog.registry.find("thief").unwrap() {
        let post = |path: String| {
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::from("csrf="))
                .unwrap()
        };
        let (status, _) = call(&app, post(format!("/plugins/{}/delete", thief.digest))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(&app, post(format!("/plugins/{}/disable", thief.digest))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(state.catalog.registry.find("thief").unwrap().is_none());
        let (status, _) = call(&app, post(format!("/plugins/{}/enable", thief.digest))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(state.catalog.registry.find("thief").unwrap().is_some());
    }
    let (status, _) = call(&app, get("/plugins/../../etc/passwd/delete")).await;
    assert_ne!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_hardened_against_other_sites() {
    let dir = super::data::tempdir();
    let mut state = AppState::open(&dir, TOKEN.into(), http::scenario_choices(None))
        .await
        .expect("state opens");
    state.hosts = std::sync::Arc::new(http::security::Hosts::new(
        [127, 0, 0, 1].into(),
        &["tandem.lan".to_string()],
    ));
    let app = http::app(state);
    let with_host = |uri: &str, host: &str| {
        Request::get(uri)
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    // Every answer carries the security headers, a refusal too.
    for host in ["127.0.0.1:8080", "evil.example"] {
        let resp = app.clone().oneshot(with_host("/live", host)).await.unwrap();
        let h = resp.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    // The Host allow-list: loopback, localhost, the bound address and configured names; a
    // DNS-rebinding page's name is refused, for pages and the API alike.
    for (host, ok) in [
        ("127.0.0.1:8080", true),
        ("localhost:8080", true),
        ("LOCALHOST", true),
        ("[::1]:8080", true),
        ("tandem.lan:8080", true),
        ("evil.example", false),
        ("evil.example:8080", false),
        ("127.0.0.1.evil.example", false),
        ("10.1.2.3:8080", false),
        ("", false),
    ] {
        for uri in ["/live", "/api/runs"] {
            let (status, _) = call(&app, with_host(uri, host)).await;
            assert_eq!(status == StatusCode::OK, ok, "{host} {uri}: {status}");
            if !ok {
                assert_eq!(status.as_u16() / 100, 4, "{host}: {status}");
            }
        }
    }
    // After signing in, `next` stays on this site; control characters are a bad request.
    for (next, want) in [
        ("/plugins", Some("/plugins")),
        ("/history?policy=thief", Some("/history?policy=thief")),
        ("//evil.example", Some("/live")),
        ("/%5Cevil.example", Some("/live")),
        ("/%5C/evil.example", Some("/live")),
        ("https://evil.example/", Some("/live")),
        ("/%09/evil.example", None),
        ("/%0d%0aLocation:%20x", None),
    ] {
        let resp = app.clone().oneshot(login(TOKEN, next)).await.unwrap();
        match want {
            Some(to) => {
                assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next}");
                assert_eq!(resp.headers()[header::LOCATION], to, "{next}");
            }
            None => assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{next}"),
        }
    }
}

#[test]
fn labels_are_cut_to_fit() {
    use tandem::http::charts::{Series, accuracy_lines};
    use tandem::text::truncate;
    // Chart legends mark the cut; the CLI's fixed-width columns cut bare; a character is
    // counted once whatever its bytes.
    assert_eq!(truncate("thief:profile=false", 10, Some('…')), "thief:pro…");
    assert_eq!(truncate("thief:profile=false", 10, None), "thief:prof");
    assert_eq!(truncate("çamera", 6, Some('…')), "çamera");
    assert_eq!(truncate("çamera-7", 6, None), "çamera");
    let svg = accuracy_lines(
        &[Series {
            name: "a-camera-with-a-long-name".into(),
            points: vec![(0.0, 0.5), (1.0, 0.6)],
        }],
        "window",
    );
    assert!(svg.contains(">a-camera-with-a-lon…<"), "{svg}");
}

#[test]
fn a_generated_admin_token_is_never_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = super::data::tempdir();
    let (token, fresh) = http::security::admin_token(&dir, None).unwrap();
    assert!(fresh && token.len() == 32);
    let mode = std::fs::metadata(dir.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Read back, not regenerated.
    assert_eq!(
        http::security::admin_token(&dir, None).unwrap(),
        (token, false)
    );
}

const MIB: u64 = 1 << 20;

/// A serverless window: `<cam>` went idle and then cold (a pre-warmed wake-up earlier), and
/// `gate "b"` came back from cold and serves; a budget of 6 MiB; names that need escaping in
/// HTML, SVG and Prometheus labels alike.
fn serverless_window() -> WindowReport {
    let mut w = window();
    w.window_seconds = 300.0;
    w.lifecycle = Some(LifecycleReport {
        policy: "keep-alive".into(),
        memory_budget_bytes: Some(6 * MIB),
        memory_mean_bytes: 2.5 * MIB as f64,
        memory_peak_bytes: 3 * MIB,
        cold_starts: vec![
            ColdStartRecord {
                stream: "<cam>".into(),
                at: 10.0,
                path: WakeKind::Prewarmed,
                seconds: 0.012,
            },
            ColdStartRecord {
                stream: "gate \"b\"".into(),
                at: 30.0,
                path: WakeKind::Cold,
                seconds: 0.25,
            },
        ],
        streams: vec![
            StreamLife {
                stream: "<cam>".into(),
                phases: vec![
                    (0.0, Phase::Active),
                    (120.0, Phase::WarmIdle),
                    (150.0, Phase::Cold),
                ],
                end_phase: Phase::Cold,
                frames_lost: 12,
                resident_bytes: 3 * MIB / 2,
                resident_mean_bytes: 0.75 * MIB as f64,
                evictions: 1,
                memory_wait_seconds: 4,
            },
            StreamLife {
                stream: "gate \"b\"".into(),
                phases: vec![
                    (0.0, Phase::Cold),
                    (30.0, Phase::Starting),
                    (31.0, Phase::Active),
                ],
                end_phase: Phase::Active,
                frames_lost: 3,
                resident_bytes: MIB,
                resident_mean_bytes: 0.9 * MIB as f64,
                evictions: 0,
                memory_wait_seconds: 0,
            },
        ],
        calls: 2,
        errors: vec!["keep-alive <b>trapped</b>".into()],
        wake_costs: WakeCosts {
            cold: 0.25,
            preprocessed: 0.08,
            prewarmed: 0.012,
            steps: vec![
                (WakeKind::Cold, "decode <weights>".into(), 120.0),
                (WakeKind::Cold, "compile".into(), 130.0),
                (WakeKind::Prewarmed, "upload".into(), 12.0),
            ],
        },
    });
    w
}

/// Record `w` as the one window of a finished run; its id.
async fn record_run(state: &AppState, window_seconds: f64, w: &WindowReport) -> i64 {
    let scenario_json = format!(r#"{{"window_seconds": {window_seconds}, "gpus": 1}}"#);
    let run = state
        .history
        .start_run(&NewRun {
            scenario: "serverless",
            scenario_json: &scenario_json,
            policy: "fair",
            policy_digest: "00",
            backend: "cpu",
            windows_planned: 1,
            comparison: None,
        })
        .await
        .unwrap();
    state.history.record_window(run, w).await.unwrap();
    state
        .history
        .finish_run(run, RunEnd::Finished(0.75))
        .await
        .unwrap();
    run
}

/// The window page and its JSON show a serverless window's lifecycle, escaped; a window whose
/// cameras are always on shows none.
async fn lifecycle_window_page(app: &Router, plain: i64, serverless: i64) {
    let (status, body) = call(app, get(&format!("/history/runs/{serverless}/windows/0"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for want in [
        "<h2>Lifecycle</h2>",
        "keep-alive</strong> <span class=\"note\">(2 calls)</span>",
        "mean 2.50 MiB, peak 3.00 MiB, budget 6.00 MiB",
        // Phases as spans to the window's end, and the end phase as a badge.
        "0–120 s <span class=\"phase phase-active\">active</span> · 120–150 s <span class=\"phase phase-warm-idle\">warm-idle</span> · 150–300 s <span class=\"phase phase-cold\">cold</span>",
        "<td><span class=\"phase phase-cold\">cold</span></td>",
        "<td class=\"num\">12</td><td class=\"num\">1</td><td class=\"num\">4 s</td>",
        "1.50 MiB / 0.75 MiB",
        // Every wake-up, and the costs by path with their steps.
        "<td>gate &#34;b&#34;</td><td class=\"num\">30.0 s</td><td>cold</td><td class=\"num\">250.0 ms</td>",
        "<td>&#60;cam&#62;</td><td class=\"num\">10.0 s</td><td>prewarmed</td><td class=\"num\">12.0 ms</td>",
        "<td>cold</td><td class=\"num\">250.0 ms</td>",
        "decode &#60;weights&#62; 120.0 ms, compile 130.0 ms",
        "<td>preprocessed</td><td class=\"num\">80.0 ms</td>",
        "keep-alive &#60;b&#62;trapped&#60;/b&#62;",
        // The phase chart escapes the names it draws.
        ">&lt;cam&gt;</text>",
        ">gate &quot;b&quot;</text>",
    ] {
        assert!(body.contains(want), "{want}\n{body}");
    }
    assert!(!body.contains("<cam>") && !body.contains("<weights>") && !body.contains("<b>"));
    let (_, body) = call(app, get(&format!("/history/runs/{plain}/windows/0"))).await;
    assert!(
        !body.contains("Lifecycle") && !body.contains("class=\"phase"),
        "{body}"
    );

    let (_, body) = call(app, get(&format!("/api/runs/{serverless}/windows/0"))).await;
    let w: serde_json::Value = serde_json::from_str(&body).unwrap();
    let l = &w["lifecycle"];
    assert_eq!(l["streams"][0]["end_phase"], "cold", "{w}");
    assert_eq!(l["streams"][1]["stream"], "gate \"b\"", "{w}");
    assert_eq!(l["cold_starts"][1]["path"], "cold", "{w}");
    assert_eq!(l["memory_budget_bytes"], 6 * MIB, "{w}");
    let (_, body) = call(app, get(&format!("/api/runs/{plain}/windows/0"))).await;
    let w: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(w["lifecycle"].is_null(), "{w}");
}

/// The run page, the runs list and the run's JSON carry the run's serverless figures.
async fn lifecycle_run_pages(app: &Router, plain: i64, serverless: i64) {
    let line = "lifecycle keep-alive: 1 cold starts (median 250.0 ms), 1 pre-warmed starts, 15 of 100 frames lost (15.00%); resident memory mean 2.50 MiB, peak 3.00 MiB (budget 6.00 MiB)";
    let (_, body) = call(app, get(&format!("/history/runs/{serverless}"))).await;
    assert!(body.contains(line), "{body}");
    let (_, body) = call(app, get(&format!("/history/runs/{plain}"))).await;
    assert!(!body.contains("lifecycle-summary"), "{body}");
    let (_, body) = call(app, get("/history")).await;
    let short =
        "1 cold, 1 pre-warmed starts; 15.00% frames lost; memory 2.50 MiB mean, 3.00 MiB peak";
    assert_eq!(body.matches(short).count(), 1, "{body}");
    let (_, body) = call(app, get(&format!("/api/runs/{serverless}"))).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["lifecycle"]["cold_starts"], 1, "{v}");
    assert_eq!(v["lifecycle"]["cold_start_p50_seconds"], 0.25, "{v}");
    assert_eq!(v["lifecycle"]["frames"], 100, "{v}");
    let (_, body) = call(app, get(&format!("/api/runs/{plain}"))).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["lifecycle"].is_null(), "{v}");
}

/// The Live page shows the latest window's serverless part only when it has one.
async fn lifecycle_live_page(app: &Router, state: &AppState) {
    let scenario = http::scenario_choices(None)[0].scenario.clone();
    state.live.update(|s| {
        s.scenario = Some(scenario);
        s.status = "running".into();
        s.windows.push_back(window());
    });
    let (_, body) = call(app, get("/live")).await;
    assert!(body.contains("<td>&#60;cam&#62;</td>"), "{body}");
    assert!(!body.contains("Serverless streams") && !body.contains("class=\"phase"));
    let (_, body) = call(app, get("/api/streams")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("lifecycle").is_none(), "{v}");

    state
        .live
        .update(|s| s.windows.push_back(serverless_window()));
    let (_, body) = call(app, get("/live")).await;
    for want in [
        "<h2>Serverless streams</h2>",
        "mean 2.50 MiB, peak 3.00 MiB, budget 6.00 MiB",
        // A cold stream holds nothing now; a serving one its resident set.
        "<tr><td>&#60;cam&#62;</td><td><span class=\"phase phase-cold\">cold</span></td><td class=\"num\">0.00 MiB</td><td class=\"num\">0.75 MiB</td><td class=\"num\">12</td></tr>",
        "<tr><td>gate &#34;b&#34;</td><td><span class=\"phase phase-active\">active</span></td><td class=\"num\">1.00 MiB</td><td class=\"num\">0.90 MiB</td><td class=\"num\">3</td></tr>",
        "<td>gate &#34;b&#34;</td><td class=\"num\">30.0 s</td><td>cold</td><td class=\"num\">250.0 ms</td>",
    ] {
        assert!(body.contains(want), "{want}\n{body}");
    }
    assert!(!body.contains("<cam>"), "{body}");
    let (_, body) = call(app, get("/api/streams")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["lifecycle"]["streams"][1]["end_phase"], "active", "{v}");
}

/// `/metrics` has the serverless series, labels escaped, counters adding up over windows;
/// a server whose streams are always on has none of them.
fn lifecycle_metrics(state: &AppState) {
    let plain = http::metrics::Metrics::default();
    plain.observe("live", "fair", &window());
    let text = plain.render();
    assert!(text.contains("tandem_stream_accuracy"), "{text}");
    assert!(!text.contains("tandem_stream_state") && !text.contains("tandem_server_"));

    state.metrics.observe("live", "fair", &serverless_window());
    state.metrics.observe("live", "fair", &serverless_window());
    let text = state.metrics.render();
    let cam = r#"run="live",policy="fair",stream="<cam>""#;
    let gate = r#"run="live",policy="fair",stream="gate \"b\"""#;
    for want in [
        "# TYPE tandem_stream_state gauge".to_string(),
        format!("tandem_stream_state{{{cam},state=\"cold\"}} 1"),
        format!("tandem_stream_state{{{cam},state=\"active\"}} 0"),
        format!("tandem_stream_state{{{gate},state=\"active\"}} 1"),
        format!("tandem_stream_resident_bytes{{{cam}}} 0"),
        format!("tandem_stream_resident_bytes{{{gate}}} {MIB}"),
        "# TYPE tandem_cold_starts_total counter".to_string(),
        format!("tandem_cold_starts_total{{{gate},path=\"cold\"}} 2"),
        format!("tandem_cold_starts_total{{{gate},path=\"prewarmed\"}} 0"),
        format!("tandem_cold_starts_total{{{cam},path=\"prewarmed\"}} 2"),
        format!("tandem_frames_lost_total{{{cam}}} 24"),
        format!("tandem_frames_lost_total{{{gate}}} 6"),
        "# HELP tandem_server_resident_bytes Peak bytes".to_string(),
        format!(
            "tandem_server_resident_bytes{{run=\"live\",policy=\"fair\"}} {}",
            3 * MIB
        ),
        format!(
            "tandem_server_memory_budget_bytes{{run=\"live\",policy=\"fair\"}} {}",
            6 * MIB
        ),
    ] {
        assert!(text.contains(&want), "{want}\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_streams_on_the_dashboard() {
    let dir = super::data::tempdir();
    let state = AppState::open(&dir, TOKEN.into(), http::scenario_choices(None))
        .await
        .expect("state opens");
    let plain = record_run(&state, 200.0, &window()).await;
    let serverless = record_run(&state, 300.0, &serverless_window()).await;
    let app = http::app(state.clone());
    lifecycle_window_page(&app, plain, serverless).await;
    lifecycle_run_pages(&app, plain, serverless).await;
    lifecycle_live_page(&app, &state).await;
    lifecycle_metrics(&state);
}
