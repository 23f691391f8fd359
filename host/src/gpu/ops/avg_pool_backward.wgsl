// Gradient of average pooling: one invocation per input element sums dy/(k·k) over the
// windows that cover it (inputs no window covers get 0). Overwrites dx.

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
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

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
    let ix = t % p.w;
    t = t / p.w;
    let iy = t % p.h;
    let b = t / p.h;
    // Windows oy with oy·stride <= iy <= oy·stride + k - 1, and oy < oh (same for x).
    var oy_lo = 0u;
    if (iy + 1u > p.k) {
        oy_lo = (iy + 1u - p.k + p.stride - 1u) / p.stride;
    }
    let oy_hi = min(iy / p.stride, p.oh - 1u);
    var ox_lo = 0u;
    if (ix + 1u > p.k) {
        ox_lo = (ix + 1u - p.k + p.stride - 1u) / p.stride;
    }
    let ox_hi = min(ix / p.stride, p.ow - 1u);
    var s = 0.0;
    for (var oy = oy_lo; oy <= oy_hi; oy++) {
        for (var ox = ox_lo; ox <= ox_hi; ox++) {
            s += dy[((b * p.oh + oy) * p.ow + ox) * p.c + ch];
        }
    }
    dx[i] = s * (1.0 / f32(p.k * p.k));
}
