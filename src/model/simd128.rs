//! The browser's few-row product loops (`cpu_matvec`) in SIMD128 lanes. The site is built for size with link-time
//! optimisation, and there LLVM left the plain loops scalar; these are the same loops, four lanes at a time. Plain
//! Rust with no crate of its own, so that tests/wasm_kernels.rs can build them alone and check them in node.

use core::arch::wasm32::{f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat, v128, v128_load, v128_store};

/// `o += a · w`, sixteen elements (four lanes of four) a step.
#[inline(always)]
pub fn axpy(o: &mut [f32], a: f32, w: &[f32]) {
    let n = o.len().min(w.len());
    let whole = n / 16 * 16;
    let (a4, po, pw) = (f32x4_splat(a), o.as_mut_ptr(), w.as_ptr());
    for j in (0..whole).step_by(16) {
        // SAFETY: j + 16 <= n, within both slices; v128_load and v128_store need no alignment.
        unsafe {
            let (p, q) = (po.add(j) as *mut v128, pw.add(j) as *const v128);
            let (o0, o1, o2, o3) = (v128_load(p), v128_load(p.add(1)), v128_load(p.add(2)), v128_load(p.add(3)));
            let (w0, w1, w2, w3) = (v128_load(q), v128_load(q.add(1)), v128_load(q.add(2)), v128_load(q.add(3)));
            v128_store(p, f32x4_add(o0, f32x4_mul(a4, w0)));
            v128_store(p.add(1), f32x4_add(o1, f32x4_mul(a4, w1)));
            v128_store(p.add(2), f32x4_add(o2, f32x4_mul(a4, w2)));
            v128_store(p.add(3), f32x4_add(o3, f32x4_mul(a4, w3)));
        }
    }
    o[whole..n].iter_mut().zip(&w[whole..n]).for_each(|(o, w)| *o += a * w);
}

/// Σ a·b in four running sums of four lanes, added at the end.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let whole = n / 16 * 16;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [f32x4_splat(0.0); 4];
    for j in (0..whole).step_by(16) {
        // SAFETY: j + 16 <= n, within both slices.
        unsafe {
            let (p, q) = (pa.add(j) as *const v128, pb.add(j) as *const v128);
            s[0] = f32x4_add(s[0], f32x4_mul(v128_load(p), v128_load(q)));
            s[1] = f32x4_add(s[1], f32x4_mul(v128_load(p.add(1)), v128_load(q.add(1))));
            s[2] = f32x4_add(s[2], f32x4_mul(v128_load(p.add(2)), v128_load(q.add(2))));
            s[3] = f32x4_add(s[3], f32x4_mul(v128_load(p.add(3)), v128_load(q.add(3))));
        }
    }
    let t = f32x4_add(f32x4_add(s[0], s[1]), f32x4_add(s[2], s[3]));
    let tail: f32 = a[whole..n].iter().zip(&b[whole..n]).map(|(x, y)| x * y).sum();
    f32x4_extract_lane::<0>(t)
        + f32x4_extract_lane::<1>(t)
        + f32x4_extract_lane::<2>(t)
        + f32x4_extract_lane::<3>(t)
        + tail
}
