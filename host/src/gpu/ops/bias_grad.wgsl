// db[j] = Σ_r dy[r, j]: one workgroup per column j; its invocations stride over the rows
// and the partial sums are reduced in workgroup memory.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let col = wid.y * nwg.x + wid.x;
    // Workgroups past the last column (2-D grid overshoot) still reach every barrier.
    var s = 0.0;
    if (col < p.cols) {
        for (var r = li; r < p.rows; r += 256u) {
            s += dy[r * p.cols + col];
        }
    }
    partial[li] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (li < half) {
            partial[li] += partial[li + half];
        }
        workgroupBarrier();
    }
    if (li == 0u && col < p.cols) {
        db[col] = partial[0];
    }
}
