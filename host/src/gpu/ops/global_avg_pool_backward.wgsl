// Gradient of global average pooling: dx[b, q, ch] = dy[b, ch] / hw. Overwrites dx.

struct Params {
    n: u32,
    hw: u32,
    c: u32,
    total: u32,
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
    let b = i / (p.hw * p.c);
    dx[i] = dy[b * p.c + ch] * (1.0 / f32(p.hw));
}
