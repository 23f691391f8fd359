// GEMM c = op(a)·op(b) + beta·c without workgroup memory: each of 16×16 invocations
// accumulates a 4×4 block of c (rows ty + 16·i, columns tx + 16·j of the workgroup's 64×64
// tile) reading its operands straight from storage. On llvmpipe, which runs a workgroup's
// invocations as 8-wide SIMD lanes on a CPU core, this beats staging through workgroup
// memory: barriers cost a coroutine switch there and "shared" memory is ordinary memory.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    rsa: u32,
    csa: u32,
    rsb: u32,
    csb: u32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wid.y * 64u + lid.y;
    let col0 = wid.x * 64u + lid.x;
    // Rows and columns past the edge read a clamped (valid) address instead of branching,
    // and are dropped at the store.
    var ra: array<u32, 4>;
    var cb: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ra[i] = min(row0 + 16u * i, p.m - 1u) * p.rsa;
        cb[i] = min(col0 + 16u * i, p.n - 1u) * p.csb;
    }
    var acc: array<f32, 16>;
    for (var kk = 0u; kk < p.k; kk++) {
        let ka = kk * p.csa;
        let kb = kk * p.rsb;
        var ar: array<f32, 4>;
        var br: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            ar[i] = a[ra[i] + ka];
            br[i] = b[kb + cb[i]];
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i * 4u + j] = fma(ar[i], br[j], acc[i * 4u + j]);
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + 16u * j;
            if (row < p.m && col < p.n) {
                let o = row * p.n + col;
                var v = acc[i * 4u + j];
                // beta = 0 must not read c: it may hold NaN from an earlier use.
                if (p.beta != 0.0) {
                    v = fma(p.beta, c[o], v);
                }
                c[o] = v;
            }
        }
    }
}
