// Softmax cross-entropy, one invocation per sample: loss[b] = log Σ exp(z - max) - (z[label]
// - max), grad[b, j] = (softmax_j - [j = label]) / n. Labels are f32 class indices.

struct Params {
    n: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b = gid.y * nwg.x * 256u + gid.x;
    if (b >= p.n) {
        return;
    }
    let base = b * p.classes;
    var mx = logits[base];
    for (var j = 1u; j < p.classes; j++) {
        mx = max(mx, logits[base + j]);
    }
    // grad holds exp(z - max) until the sum is known.
    var sum = 0.0;
    for (var j = 0u; j < p.classes; j++) {
        let e = exp(logits[base + j] - mx);
        grad[base + j] = e;
        sum += e;
    }
    let label = u32(labels[b]);
    loss[b] = log(sum) - (logits[base + label] - mx);
    let inv_n = 1.0 / f32(p.n);
    for (var j = 0u; j < p.classes; j++) {
        let onehot = select(0.0, 1.0, j == label);
        grad[base + j] = (grad[base + j] / sum - onehot) * inv_n;
    }
}
