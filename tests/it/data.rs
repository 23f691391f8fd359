use std::path::Path;

use tandem::data::{DataError, Drift, drift, fashion, idx, synthetic};

fn idx_bytes(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn idx_parses_a_valid_file() {
    let bytes = idx_bytes(0x0803, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let a = idx::parse(Path::new("x.idx"), &bytes, 3).unwrap();
    assert_eq!(a.dims, vec![2, 2, 3]);
    assert_eq!(a.data[11], 12);
}

#[test]
fn idx_errors_name_the_file_and_the_problem() {
    let p = Path::new("/data/images.idx");
    let bad_magic = idx::parse(p, &idx_bytes(0x0801, &[2], &[0, 0]), 3).unwrap_err();
    assert!(
        matches!(bad_magic, DataError::BadMagic { found: 0x0801, .. }),
        "{bad_magic}"
    );
    assert!(
        bad_magic.to_string().contains("/data/images.idx"),
        "{bad_magic}"
    );

    let truncated = idx::parse(p, &idx_bytes(0x0803, &[10, 28, 28], &[0; 100]), 3).unwrap_err();
    assert!(
        matches!(
            truncated,
            DataError::Truncated {
                expected: 7840,
                found: 100,
                ..
            }
        ),
        "{truncated}"
    );
    assert!(truncated.to_string().contains("truncated"), "{truncated}");

    let short_header = idx::parse(p, &[0, 0, 8, 3, 0, 0], 3).unwrap_err();
    assert!(
        matches!(short_header, DataError::Truncated { .. }),
        "{short_header}"
    );
}

#[test]
fn idx_reads_gzip_and_reports_missing_files() {
    let dir = tempdir();
    let path = dir.join("labels-idx1-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &idx_bytes(0x0801, &[3], &[7, 8, 9])).unwrap();
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    assert_eq!(idx::read(&path, 1).unwrap().data, vec![7, 8, 9]);

    let missing = idx::read(&dir.join("nope.gz"), 1).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }) && missing.to_string().contains("nope.gz"));
}

#[test]
fn fashion_loader_checks_dimensions_and_labels() {
    let dir = tempdir();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), gz(&bytes)).unwrap();
    // 2 images of 4x4: wrong dimensions for Fashion-MNIST.
    write(
        "t10k-images-idx3-ubyte.gz",
        idx_bytes(0x0803, &[2, 4, 4], &[0; 32]),
    );
    write(
        "t10k-labels-idx1-ubyte.gz",
        idx_bytes(0x0801, &[2], &[1, 2]),
    );
    let err = fashion::load_from(&dir, fashion::Split::Test).unwrap_err();
    assert!(matches!(err, DataError::Dimensions { .. }), "{err}");

    write(
        "t10k-images-idx3-ubyte.gz",
        idx_bytes(0x0803, &[2, 28, 28], &[0; 2 * 784]),
    );
    write(
        "t10k-labels-idx1-ubyte.gz",
        idx_bytes(0x0801, &[2], &[1, 12]),
    );
    let err = fashion::load_from(&dir, fashion::Split::Test).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                label: 12,
                index: 1,
                ..
            }
        ),
        "{err}"
    );

    write(
        "t10k-labels-idx1-ubyte.gz",
        idx_bytes(0x0801, &[3], &[1, 2, 3]),
    );
    let err = fashion::load_from(&dir, fashion::Split::Test).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 2,
                n_labels: 3,
                ..
            }
        ),
        "{err}"
    );

    write(
        "t10k-labels-idx1-ubyte.gz",
        idx_bytes(0x0801, &[2], &[1, 9]),
    );
    let ds = fashion::load_from(&dir, fashion::Split::Test).unwrap();
    assert_eq!(
        (ds.len(), ds.h, ds.w, ds.c, ds.labels[1]),
        (2, 28, 28, 1, 9)
    );

    let err = fashion::load_from(&dir.join("absent"), fashion::Split::Test).unwrap_err();
    assert!(matches!(err, DataError::NotInstalled { .. }), "{err}");
}

#[test]
fn fashion_mnist_when_installed() {
    if !fashion::is_installed() {
        eprintln!("skipping: Fashion-MNIST not installed (scripts/setup.sh installs it)");
        return;
    }
    let test = fashion::load(fashion::Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert!(test.class_counts().iter().all(|&c| c == 1000));
    assert!(test.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn synthetic_is_deterministic_and_balanced() {
    let a = synthetic::generate(400, 3);
    let b = synthetic::generate(400, 3);
    let c = synthetic::generate(400, 4);
    assert_eq!(a, b);
    assert_ne!(a.images, c.images);
    assert_eq!((a.h, a.w, a.c, a.classes), (32, 32, 3, 8));
    assert!(
        a.class_counts().iter().all(|&n| n > 25),
        "{:?}",
        a.class_counts()
    );
    // Class mix knob: only classes 0 and 1.
    let skewed = synthetic::generate_with_mix(200, 3, &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(skewed.labels.iter().all(|&l| l < 2));
}

#[test]
fn drift_changes_images_deterministically() {
    let base = synthetic::generate(50, 1);
    assert_eq!(Drift::default().apply(&base, 9), base);
    let dusk = Drift {
        brightness: 0.5,
        noise: 0.05,
        blur: 1.0,
        rotation: 30.0,
        scale: 1.2,
        ..Drift::default()
    };
    let a = dusk.apply(&base, 9);
    assert_eq!(a, dusk.apply(&base, 9));
    let mean = |d: &tandem::data::Dataset| d.images.iter().sum::<f32>() / d.images.len() as f32;
    assert!(
        mean(&a) < 0.7 * mean(&base),
        "darker: {} vs {}",
        mean(&a),
        mean(&base)
    );
    assert_eq!(a.labels, base.labels);
}

#[test]
fn class_mix_resampling_follows_weights() {
    let base = synthetic::generate(800, 2);
    let mut w = vec![0.0; 8];
    w[2] = 3.0;
    w[5] = 1.0;
    let d = drift::resample_mix(&base, &w, 2000, 4);
    let counts = d.class_counts();
    assert_eq!(counts.iter().sum::<usize>(), 2000);
    assert_eq!(counts[2] + counts[5], 2000);
    let ratio = counts[2] as f32 / counts[5] as f32;
    assert!((2.4..3.8).contains(&ratio), "ratio {ratio}");
}

#[test]
fn resize_averages_when_shrinking() {
    let mut ds = tandem::data::Dataset::empty(4, 4, 1, 2);
    ds.push(&(0..16).map(|i| i as f32).collect::<Vec<_>>(), 1);
    let small = drift::resize(&ds, 2, 2);
    assert_eq!(small.images, vec![2.5, 4.5, 10.5, 12.5]);
    let big = drift::resize(&small, 4, 4);
    assert_eq!(big.len(), 1);
    assert_eq!(big.images.len(), 16);
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}

pub fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tandem-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
