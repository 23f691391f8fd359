// Global average pooling [n, hw, c] -> [n, c], one invocation per output.

struct Params {
    n: u32,
    hw: u32,
    c: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    let b = i / p.c;
    let ch = i % p.c;
    var s = 0.0;
    for (var q = 0u; q < p.hw; q++) {
        s += x[(b * p.hw + q) * p.c + ch];
    }
    y[i] = s * (1.0 / f32(p.hw));
}
