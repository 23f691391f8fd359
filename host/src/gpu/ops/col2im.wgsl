// Folds dcols[rows × patch] back into NHWC dx, the adjoint of im2col: each invocation owns
// one element of dx and sums the entries of every patch that covers it (a gather, so
// overlapping patches need no atomics). Overwrites dx.

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
@group(0) @binding(1) var<storage, read> dcols: array<f32>;
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
    let ci = i % p.c;
    var t = i / p.c;
    let ix = t % p.w;
    t = t / p.w;
    let iy = t % p.h;
    let b = t / p.h;
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        // Output row oy covers iy with kernel row ky when oy·stride + ky = iy + pad.
        let ty = i32(iy + p.pad) - i32(ky);
        if (ty < 0 || u32(ty) % p.stride != 0u) {
            continue;
        }
        let oy = u32(ty) / p.stride;
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pad) - i32(kx);
            if (tx < 0 || u32(tx) % p.stride != 0u) {
                continue;
            }
            let ox = u32(tx) / p.stride;
            if (ox >= p.ow) {
                continue;
            }
            s += dcols[((b * p.oh + oy) * p.ow + ox) * p.patch_len + (ky * p.kw + kx) * p.c + ci];
        }
    }
    dx[i] = s;
}
