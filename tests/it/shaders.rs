//! naga parses and validates every `.wgsl` file under `host/src/gpu`, and each kernel's
//! interface is checked against its Rust [`KernelSpec`]: bindings, access, params size,
//! entry point and the `Limits::default()` workgroup bounds. Needs no adapter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, StorageAccess};
use tandem::gpu::ops::{Access, KernelId, KernelSpec};

/// `Limits::default()` bounds the kernels are written for.
const MAX_INVOCATIONS: u32 = 256;
const MAX_WORKGROUP_BYTES: u32 = 16_384;

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading the shader directory") {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            wgsl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
}

/// Every `.wgsl` file by file stem (the kernel's label), with its text.
fn all_shaders() -> BTreeMap<String, (PathBuf, String)> {
    let mut files = Vec::new();
    wgsl_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu"),
        &mut files,
    );
    files
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("reading a shader");
            (stem, (path, text))
        })
        .collect()
}

fn parse_and_validate(path: &Path, text: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let shown = path.display().to_string();
    let module = naga::front::wgsl::parse_str(text)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(text, &shown)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(text, &shown)));
    (module, info)
}

#[test]
fn every_wgsl_file_parses_and_validates() {
    let shaders = all_shaders();
    assert!(!shaders.is_empty(), "no .wgsl files found");
    for (path, text) in shaders.values() {
        parse_and_validate(path, text);
    }
}

#[test]
fn every_kernel_matches_its_rust_spec_and_every_file_is_a_kernel() {
    let shaders = all_shaders();
    let specs: Vec<KernelSpec> = KernelId::ALL.iter().map(|id| id.spec()).collect();
    for name in shaders.keys() {
        assert!(
            specs.iter().any(|s| s.label == name),
            "{name}.wgsl is not used by any KernelId"
        );
    }
    for spec in specs {
        let (path, text) = shaders
            .get(spec.label)
            .unwrap_or_else(|| panic!("kernel {} has no {0}.wgsl", spec.label));
        assert_eq!(
            &spec.source, text,
            "{}: include_str! names another file",
            spec.label
        );
        check_interface(&spec, path, text);
    }
}

fn check_interface(spec: &KernelSpec, path: &Path, text: &str) {
    let label = spec.label;
    let (module, _) = parse_and_validate(path, text);
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");

    let entry = module
        .entry_points
        .iter()
        .find(|e| e.name == "main")
        .unwrap_or_else(|| panic!("{label}: no entry point `main`"));
    assert_eq!(
        entry.stage,
        naga::ShaderStage::Compute,
        "{label}: main is not compute"
    );
    let invocations: u32 = entry.workgroup_size.iter().product();
    assert!(
        invocations <= MAX_INVOCATIONS,
        "{label}: {invocations} invocations"
    );

    let mut bindings = BTreeMap::new();
    let mut workgroup_bytes = 0;
    for (_, var) in module.global_variables.iter() {
        if var.space == AddressSpace::WorkGroup {
            workgroup_bytes += layouter[var.ty].size;
        }
        if let Some(b) = &var.binding {
            assert_eq!(b.group, 0, "{label}: bind group");
            bindings.insert(b.binding, (var.space, layouter[var.ty].size));
        }
    }
    assert!(
        workgroup_bytes <= MAX_WORKGROUP_BYTES,
        "{label}: {workgroup_bytes} bytes of workgroup memory"
    );
    assert_eq!(
        bindings.len(),
        spec.buffers.len() + 1,
        "{label}: binding count"
    );
    let (space, size) = bindings[&0];
    assert_eq!(
        space,
        AddressSpace::Uniform,
        "{label}: binding 0 is not the params uniform"
    );
    assert_eq!(
        size as usize, spec.params_size,
        "{label}: params struct size"
    );
    for (i, access) in spec.buffers.iter().enumerate() {
        let binding = i as u32 + 1;
        let Some((AddressSpace::Storage { access: got }, _)) = bindings.get(&binding) else {
            panic!("{label}: binding {binding} is not a storage buffer");
        };
        let writable = got.contains(StorageAccess::STORE);
        assert_eq!(
            writable,
            *access == Access::ReadWrite,
            "{label}: binding {binding} access"
        );
    }
}
