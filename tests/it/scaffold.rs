//! `tandem plugin new` as a plugin author uses it: from an empty directory outside the
//! repository, with only the `tandem` binary and what `scripts/setup.sh` installs (cargo with
//! the wasm32-wasip2 target, componentize-py), scaffold a plugin of every kind in Rust and in
//! Python, build it with the command its README gives, and `tandem plugin validate` it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

use super::python::componentize_py;

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// An empty directory of its own (outside the repository: the target dir's tmp).
fn empty_dir(name: &str) -> PathBuf {
    let dir = tmp().join("scaffold").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{what}: {:.1} s", t.elapsed().as_secs_f64());
    out
}

fn tandem(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.current_dir(dir);
    cmd
}

/// `tandem plugin validate --json`, with a compiled-component cache under the target dir.
fn validate(dir: &Path, component: &Path) -> Value {
    let out = run(
        &format!("validate {}", component.display()),
        tandem(dir)
            .args(["plugin", "validate", "--json", "--cache-dir"])
            .arg(tmp().join("validate-cache"))
            .arg(component),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(v: &Value, name: &str, world: &str) {
    assert_eq!(v["world"], world, "{v}");
    assert_eq!(v["description"]["name"], name, "{v}");
    // Projects target the newest package the host accepts.
    let newest = tandem::plugin::bindings::WIT_VERSIONS[0];
    assert_eq!(v["wit_package"], format!("tandem:plugin@{newest}"), "{v}");
    assert!(
        v["sample_run"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
}

const KINDS: [(&str, &str); 3] = [
    ("policy", "policy"),
    ("config-space", "config-space"),
    ("estimator", "estimator"),
];

#[test]
fn rust_plugins_scaffold_build_and_validate_outside_the_repository() {
    let root = empty_dir("rust");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (kind, world) in KINDS {
        let name = format!("my-{kind}");
        run(
            &format!("tandem plugin new {name}"),
            tandem(&root).args(["plugin", "new", &name, "--kind", kind]),
        );
        let dir = root.join(&name);
        for f in [
            "Cargo.toml",
            "README.md",
            "src/lib.rs",
            "sdk/src/estimate.rs",
        ] {
            assert!(dir.join(f).is_file(), "{name}: no {f}");
        }
        assert!(dir.join(format!("wit/{world}.wit")).is_file());
        // The README's build command; the target dir is shared between the three projects
        // and kept between runs, so wit-bindgen compiles once.
        run(
            &format!("cargo build {name}"),
            Command::new(&cargo)
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", tmp().join("scaffold-target"))
                .args(["build", "--release", "--target", "wasm32-wasip2"]),
        );
        let component = tmp().join(format!(
            "scaffold-target/wasm32-wasip2/release/tandem_plugin_{}.wasm",
            name.replace('-', "_")
        ));
        check(&validate(&dir, &component), &name, world);
    }
}

#[test]
fn python_plugins_scaffold_build_and_validate_outside_the_repository() {
    let root = empty_dir("python");
    let componentize = componentize_py();
    for (kind, world) in KINDS {
        let name = format!("my-py-{kind}");
        run(
            &format!("tandem plugin new {name}"),
            tandem(&root).args(["plugin", "new", &name, "--kind", kind, "--lang", "python"]),
        );
        let dir = root.join(&name);
        for f in ["app.py", "README.md", "tandem_sdk/estimate.py"] {
            assert!(dir.join(f).is_file(), "{name}: no {f}");
        }
        // The README installs the componentize-py scripts/setup.sh pins.
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("componentize-py=={}", setup_pin())),
            "{readme}"
        );
        let wasm = format!("{name}.wasm");
        run(
            &format!("componentize-py {name}"),
            Command::new(&componentize).current_dir(&dir).args([
                "-d",
                "wit",
                "-w",
                world,
                "componentize",
                "app",
                "-o",
                &wasm,
            ]),
        );
        let v = validate(&dir, &dir.join(&wasm));
        check(&v, &name, world);
        assert_eq!(
            v["limits"]["memory_bytes"],
            tandem::plugin::Limits::interpreter().memory_bytes,
            "{v}"
        );
    }
}

/// The componentize-py version scripts/setup.sh installs.
fn setup_pin() -> String {
    let setup =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh"))
            .unwrap();
    setup
        .lines()
        .find_map(|l| l.strip_prefix("COMPONENTIZE_PY_VERSION="))
        .expect("setup.sh pins componentize-py")
        .trim()
        .to_string()
}

#[test]
fn scaffolding_refuses_bad_names_and_non_empty_directories() {
    let root = empty_dir("refusals");
    let out = tandem(&root)
        .args(["plugin", "new", "Bad_Name", "--kind", "policy"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kebab-case"));
    std::fs::create_dir_all(root.join("taken")).unwrap();
    std::fs::write(root.join("taken/keep.txt"), "mine").unwrap();
    let out = tandem(&root)
        .args(["plugin", "new", "ok-name", "--kind", "policy", "taken"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(root.join("taken/keep.txt")).unwrap(),
        "mine"
    );
}
