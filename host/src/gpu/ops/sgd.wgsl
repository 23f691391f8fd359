// SGD with momentum and L2 weight decay, in place: v = momentum·v + g + wd·w; w -= lr·v.

struct Params {
    len: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.len) {
        return;
    }
    let wi = w[i];
    let vi = p.momentum * v[i] + g[i] + p.weight_decay * wi;
    v[i] = vi;
    w[i] = wi - p.lr * vi;
}
