// GEMM c = op(a)·op(b) + beta·c, 64×64 output tile per workgroup staged through
// workgroup memory in 16-deep slices of the reduction; 16×16 invocations, each owning a
// 4×4 block of c at rows ty + 16·i and columns tx + 16·j (so neighbouring invocations
// touch neighbouring columns: coalesced stores and B loads).

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

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

// as_[kk * TM + r] = op(A)[row0 + r, k0 + kk]; bs[kk * TN + j] = op(B)[k0 + kk, col0 + j].
var<workgroup> as_: array<f32, 1024>;
var<workgroup> bs: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;
    var acc: array<f32, 16>;
    let tiles = (p.k + TK - 1u) / TK;
    for (var t = 0u; t < tiles; t++) {
        let k0 = t * TK;
        // 256 invocations load 1024 elements of each tile. The mapping follows the
        // operand's contiguous direction so that neighbouring invocations read
        // neighbouring addresses.
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            var r: u32;
            var kk: u32;
            if (p.csa == 1u) {
                kk = idx % TK;
                r = idx / TK;
            } else {
                r = idx % TM;
                kk = idx / TM;
            }
            var va = 0.0;
            if (row0 + r < p.m && k0 + kk < p.k) {
                va = a[(row0 + r) * p.rsa + (k0 + kk) * p.csa];
            }
            as_[kk * TM + r] = va;

            var j: u32;
            if (p.csb == 1u) {
                j = idx % TN;
                kk = idx / TN;
            } else {
                kk = idx % TK;
                j = idx / TK;
            }
            var vb = 0.0;
            if (k0 + kk < p.k && col0 + j < p.n) {
                vb = b[(k0 + kk) * p.rsb + (col0 + j) * p.csb];
            }
            bs[kk * TN + j] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = as_[kk * TM + lid.y + 16u * i];
                br[i] = bs[kk * TN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(ar[i], br[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
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
