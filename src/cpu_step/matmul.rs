//! The matrix product of the hand-written CPU step: `C = A · B`, with A and B read through any
//! strides (so `Aᵀ` and `Bᵀ` are views, never copies) and C a fresh row-major matrix.
//!
//! Why not burn's (the `gemm` crate's)? Its WebAssembly kernel keeps a 12 x 4 block of C in 12
//! vector registers, and with the 3 of A and 1 of B that makes 16: V8 has 15 to give on x86-64,
//! so the block spills on every step of the inner loop. A 4 x 8 block (8 accumulators, 2 of B,
//! 1 of A) fits. Timed in headless Chromium on the models' own shapes (32x784 by 784x128, 32x144
//! by 144x784, 64x1568 by 1568x16...), gemm's kernel ran at 26-32 GFLOP/s and this one at 32-39.
//!
//! B is copied 8 columns at a time into a contiguous panel (`k` rows of 8, zero-padded past
//! `n`), which every 4 rows of A then read in order; A is read in place, one number at a time,
//! broadcast across a vector.

/// A matrix read in place: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// `data` as a row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, with no copy.
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// Whether every element lies inside `data` (checked once per product, so that the kernels
    /// may read without bounds checks).
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// Columns of B per panel, and rows of A per block.
const NR: usize = 8;
const MR: usize = 4;
/// From this `k` on, an `A · Bᵀ` whose rows both run along `k` takes [`dots`].
const DOT_MIN_K: usize = 64;

/// `c` (resized to `a.rows x b.cols`, row-major) `= a · b`.
pub fn matmul(c: &mut Vec<f32>, a: View, b: View) {
    // Every element is written below: no need to clear what is kept.
    c.resize(a.rows * b.cols, 0.0);
    matmul_into(c, a, b);
}

/// `c` (exactly `a.rows x b.cols` numbers, row-major) `= a · b`.
pub fn matmul_into(c: &mut [f32], a: View, b: View) {
    assert_eq!(a.cols, b.rows, "the inner dimensions of a product differ");
    assert!(a.fits() && b.fits(), "a view reaches past its data");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(c.len(), m * n, "the product's matrix has the wrong size");
    if k == 0 {
        c.fill(0.0);
        return;
    }
    if m == 0 || n == 0 {
        return;
    }
    if a.col_stride == 1 && b.row_stride == 1 && k >= DOT_MIN_K {
        dots(c, a, b);
        return;
    }
    let mut panel = vec![0.0f32; k * NR];
    for j0 in (0..n).step_by(NR) {
        let width = NR.min(n - j0);
        pack_b(&mut panel, b, j0, width);
        let mut i = 0;
        while i < m {
            let rows = MR.min(m - i);
            let out = Out { c: &mut *c, ldc: n, i, j0, width };
            // SAFETY: rows i..i+rows of A exist and `a.fits()`; the panel holds k rows of 8.
            unsafe {
                match rows {
                    4 => block::<4>(a, i, &panel, out),
                    3 => block::<3>(a, i, &panel, out),
                    2 => block::<2>(a, i, &panel, out),
                    _ => block::<1>(a, i, &panel, out),
                }
            }
            i += rows;
        }
    }
}

/// `A · Bᵀ` where the rows of A and of Bᵀ both run along `k` in memory (a weight's gradient:
/// the layer's output gradient times its input, transposed), as dot products of those rows, 4
/// rows of A by 2 of Bᵀ at a time: nothing is copied, and each step's 6 vector loads feed 8
/// multiply-adds. Through the panels, such a product with a long `k` and 9 columns (the first
/// and last layers' kernels) ran at 15 GFLOP/s in Chromium: the panel is copied one number at a
/// time from 8 rows far apart, and is half padding.
fn dots(c: &mut [f32], a: View, b: View) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut i = 0;
    while i < m {
        let rows = MR.min(m - i);
        let mut j = 0;
        while j < n {
            let cols = 2.min(n - j);
            let a_rows: [&[f32]; MR] = std::array::from_fn(|r| &a.data[(i + r.min(rows - 1)) * a.row_stride..][..k]);
            let b_rows: [&[f32]; 2] = std::array::from_fn(|q| &b.data[(j + q.min(cols - 1)) * b.col_stride..][..k]);
            let sums = dot_block(a_rows, b_rows);
            for r in 0..rows {
                for q in 0..cols {
                    c[(i + r) * n + j + q] = sums[r][q];
                }
            }
            j += cols;
        }
        i += rows;
    }
}

/// The 8 dot products of 4 rows by 2 rows, all of one length (a block at an edge repeats its
/// last row, whose sums are not kept).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_block(a: [&[f32]; MR], b: [&[f32]; 2]) -> [[f32; 2]; MR] {
    use core::arch::wasm32::*;
    let k = a[0].len();
    assert!(a.iter().chain(&b).all(|row| row.len() == k));
    let mut acc = [[f32x4_splat(0.0); 2]; MR];
    let whole = k / 4 * 4;
    for p in (0..whole).step_by(4) {
        // SAFETY: p + 4 <= k, the length of every row (checked above); loads need no alignment.
        unsafe {
            let y = [v128_load(b[0].as_ptr().add(p) as *const v128), v128_load(b[1].as_ptr().add(p) as *const v128)];
            for (acc, row) in acc.iter_mut().zip(&a) {
                let x = v128_load(row.as_ptr().add(p) as *const v128);
                acc[0] = madd(x, y[0], acc[0]);
                acc[1] = madd(x, y[1], acc[1]);
            }
        }
    }
    let lanes = |v: v128| f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v));
    std::array::from_fn(|r| {
        std::array::from_fn(|q| lanes(acc[r][q]) + a[r][whole..].iter().zip(&b[q][whole..]).map(|(x, y)| x * y).sum::<f32>())
    })
}

/// [`dot_block`] without SIMD (native builds, where the product only runs in tests): the same
/// sums in four lanes, in the same order.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn dot_block(a: [&[f32]; MR], b: [&[f32]; 2]) -> [[f32; 2]; MR] {
    let k = a[0].len();
    let whole = k / 4 * 4;
    std::array::from_fn(|r| {
        std::array::from_fn(|q| {
            let mut lanes = [0.0f32; 4];
            for p in (0..whole).step_by(4) {
                for (l, lane) in lanes.iter_mut().enumerate() {
                    *lane += a[r][p + l] * b[q][p + l];
                }
            }
            let tail: f32 = a[r][whole..].iter().zip(&b[q][whole..]).map(|(x, y)| x * y).sum();
            lanes[0] + lanes[1] + (lanes[2] + lanes[3]) + tail
        })
    })
}

/// Columns `j0..j0 + width` of B into `panel` as `k` rows of 8, zeros past `width`.
fn pack_b(panel: &mut [f32], b: View, j0: usize, width: usize) {
    let k = b.rows;
    if width < NR {
        panel.fill(0.0);
    }
    if b.col_stride == 1 && width == NR {
        // A copy of a constant size compiles to two vector moves; one of `width` numbers would be
        // a call to `memcpy`, per row of the panel.
        for p in 0..k {
            let row: &[f32; NR] = b.data[p * b.row_stride + j0..][..NR].try_into().expect("8 numbers");
            panel[p * NR..][..NR].copy_from_slice(row);
        }
    } else if b.col_stride == 1 {
        for p in 0..k {
            let row = &b.data[p * b.row_stride + j0..][..width];
            panel[p * NR..][..width].copy_from_slice(row);
        }
    } else {
        // A transposed B: read each column of the panel along its contiguous run.
        for jj in 0..width {
            let base = (j0 + jj) * b.col_stride;
            for p in 0..k {
                panel[p * NR + jj] = b.data[base + p * b.row_stride];
            }
        }
    }
}

/// Where a block of C goes: rows from `i`, columns `j0..j0 + width` of a row-major C with `ldc`
/// columns.
struct Out<'a> {
    c: &'a mut [f32],
    ldc: usize,
    i: usize,
    j0: usize,
    width: usize,
}

impl Out<'_> {
    /// Row `r` of the block: the first `width` numbers of `row`.
    fn put(&mut self, r: usize, row: &[f32; NR]) {
        self.c[(self.i + r) * self.ldc + self.j0..][..self.width].copy_from_slice(&row[..self.width]);
    }
}

/// Rows `i..i + R` of A times the panel: an R x 8 block of C, written to `out`.
///
/// SAFETY: the caller guarantees rows `i..i + R` of `a` are inside its data (`a.fits()`), and
/// that `panel` holds `a.cols` rows of 8.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
unsafe fn block<const R: usize>(a: View, i: usize, panel: &[f32], mut out: Out) {
    use core::arch::wasm32::*;
    let (ap, pp) = (a.data.as_ptr(), panel.as_ptr());
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    for p in 0..a.cols {
        // SAFETY: p < k and the panel has k rows of 8; the A elements are inside its data.
        unsafe {
            let b0 = v128_load(pp.add(p * NR) as *const v128);
            let b1 = v128_load(pp.add(p * NR + 4) as *const v128);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = v128_load32_splat(ap.add((i + r) * a.row_stride + p * a.col_stride) as *const u32);
                acc[0] = madd(x, b0, acc[0]);
                acc[1] = madd(x, b1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        if out.width == NR {
            // A whole panel's width: straight into C.
            let at = (out.i + r) * out.ldc + out.j0;
            let row = &mut out.c[at..at + NR];
            // SAFETY: `row` is 8 floats, two v128s; v128 stores need no alignment.
            unsafe {
                v128_store(row.as_mut_ptr() as *mut v128, acc[0]);
                v128_store(row.as_mut_ptr().add(4) as *mut v128, acc[1]);
            }
        } else {
            let mut row = [0.0; NR];
            // SAFETY: `row` is 8 floats, two v128s.
            unsafe {
                v128_store(row.as_mut_ptr() as *mut v128, acc[0]);
                v128_store(row.as_mut_ptr().add(4) as *mut v128, acc[1]);
            }
            out.put(r, &row);
        }
    }
}

/// `c + a * b`, four lanes: a multiply then an add, each rounded.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn madd(a: core::arch::wasm32::v128, b: core::arch::wasm32::v128, c: core::arch::wasm32::v128) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    f32x4_add(c, f32x4_mul(a, b))
}

/// [`block`] without SIMD (native builds, where the product only runs in tests): the same sums
/// in the same order.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
unsafe fn block<const R: usize>(a: View, i: usize, panel: &[f32], mut out: Out) {
    let mut acc = [[0.0f32; NR]; R];
    for p in 0..a.cols {
        let b = &panel[p * NR..][..NR];
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = a.data[(i + r) * a.row_stride + p * a.col_stride];
            for (acc, b) in acc.iter_mut().zip(b) {
                *acc += x * b;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        out.put(r, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View, b: View) -> Vec<f32> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[i * a.row_stride + p * a.col_stride] as f64 * b.data[p * b.row_stride + j * b.col_stride] as f64;
                }
                c[i * b.cols + j] = s as f32;
            }
        }
        c
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
    }

    #[test]
    fn products_of_every_shape_and_transpose_match_the_sums() {
        // Sizes on both sides of the 4-row blocks, the 8-column panels, the 4-by-2 dot
        // blocks and their 4-lane steps (k of 64 and more, with A · Bᵀ), and empty ones.
        for (m, k, n) in [(1, 1, 1), (4, 3, 8), (5, 7, 9), (13, 17, 23), (32, 144, 50), (0, 3, 4), (3, 0, 4), (9, 16, 3), (6, 600, 11), (5, 64, 3), (9, 131, 9)] {
            let (a_rows, b_rows) = (values(m * k, 1), values(k * n, 2));
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = if ta { View::rows(&a_rows, k, m).t() } else { View::rows(&a_rows, m, k) };
                let b = if tb { View::rows(&b_rows, n, k).t() } else { View::rows(&b_rows, k, n) };
                let mut c = vec![1.0; 3]; // stale contents are replaced
                matmul(&mut c, a, b);
                let expected = naive(a, b);
                assert_eq!(c.len(), expected.len());
                for (got, want) in c.iter().zip(&expected) {
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{m}x{k}x{n} ({ta}, {tb}): {got} against {want}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "inner dimensions")]
    fn mismatched_products_are_refused() {
        let x = vec![0.0; 12];
        matmul(&mut Vec::new(), View::rows(&x, 3, 4), View::rows(&x, 3, 4));
    }
}
