// Average pooling over NHWC x with a k×k window, no padding; one invocation per output.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    stride: u32,
    oh: u32,
    ow: u32,
    total: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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
    let ch = i % p.c;
    var t = i / p.c;
    let ox = t % p.ow;
    t = t / p.ow;
    let oy = t % p.oh;
    let b = t / p.oh;
    let base = ((b * p.h + oy * p.stride) * p.w + ox * p.stride) * p.c + ch;
    var s = 0.0;
    for (var ky = 0u; ky < p.k; ky++) {
        for (var kx = 0u; kx < p.k; kx++) {
            s += x[base + (ky * p.w + kx) * p.c];
        }
    }
    y[i] = s * (1.0 / f32(p.k * p.k));
}
