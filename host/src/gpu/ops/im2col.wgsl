// Unfolds NHWC x into cols[rows × patch], rows = n·oh·ow, column (ky·kw + kx)·c + ci;
// positions in the padding read 0. One invocation per element of cols.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    patch_len: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    let row = i / p.patch_len;
    let col = i % p.patch_len;
    let b = row / (p.oh * p.ow);
    let rem = row % (p.oh * p.ow);
    let oy = rem / p.ow;
    let ox = rem % p.ow;
    let kidx = col / p.c;
    let ci = col % p.c;
    let ky = kidx / p.kw;
    let kx = kidx % p.kw;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
        v = x[((b * p.h + u32(iy)) * p.w + u32(ix)) * p.c + ci];
    }
    cols[i] = v;
}
