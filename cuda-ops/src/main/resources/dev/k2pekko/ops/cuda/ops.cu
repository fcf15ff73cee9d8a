// Elementwise, reduction, normalisation, softmax and cross-entropy kernels of CudaOps.
// Compiled at run time by NVRTC for the device's architecture (see Kernels.java); no headers needed.
// Tensors are fp32 row-major; bf16 (unsigned short holding the bits) appears as GEMM operands and as the storage of
// CudaOps' bf16 tensors (outputs read only as bf16 operands: the *_fb, *_bb, *_ffb, *_fbb and *_bf kernels).
// Every kernel takes its sizes as arguments and checks its bounds; 1-D kernels use grid-stride loops.

typedef unsigned short bf16_t;
#define K_INF __int_as_float(0x7f800000)
#define K_NAN __int_as_float(0x7fffffff)

__device__ __forceinline__ bf16_t f2bf(float f) {
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum (or max) over the block; every thread gets the result. sh holds 32 floats.
__device__ float block_sum(float v, float* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float r = 0.f;
  for (int i = 0; i < nw; i++) r += sh[i];
  return r;
}

__device__ float block_max(float v, float* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float r = -K_INF;
  for (int i = 0; i < nw; i++) r = fmaxf(r, sh[i]);
  return r;
}

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// 1-D maps: 16-byte loads and stores where every pointer is 16-byte aligned (pool blocks are), four elements a
// thread per step, then the tail one at a time. f4 and the lambdas keep the loads independent (several in flight
// per thread), which plain fp32 grid-stride loops over possibly aliasing pointers did not.
struct __align__(16) f4 { float x, y, z, w; };
struct __align__(8) h4 { unsigned lo, hi; };

__device__ __forceinline__ bool al16(const void* p) { return ((unsigned long long)p & 15) == 0; }

__device__ __forceinline__ unsigned bf2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

#define VEC_STRIDE(i, n4) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n4); i += (long long)gridDim.x * blockDim.x)

template <typename F>
__device__ __forceinline__ void map1(float* __restrict__ out, const float* __restrict__ a, long long n, F f) {
  long long n4 = (al16(out) && al16(a)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 x = ((const f4*)a)[i];
    f4 y = {f(x.x), f(x.y), f(x.z), f(x.w)};
    ((f4*)out)[i] = y;
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[i] = f(a[i]);
}

template <typename F>
__device__ __forceinline__ void map2(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b, long long n, F f) {
  long long n4 = (al16(out) && al16(a) && al16(b)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 x = ((const f4*)a)[i], z = ((const f4*)b)[i];
    f4 y = {f(x.x, z.x), f(x.y, z.y), f(x.z, z.z), f(x.w, z.w)};
    ((f4*)out)[i] = y;
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[i] = f(a[i], b[i]);
}

// Typed 4-element and 1-element loads and stores: fp32 (16-byte vectors) or bf16 (8-byte vectors), so one map
// template serves every mix of fp32 and bf16 inputs and outputs. alv: the vector alignment of the type.
__device__ __forceinline__ bool alv(const float* p) { return ((unsigned long long)p & 15) == 0; }
__device__ __forceinline__ bool alv(const bf16_t* p) { return ((unsigned long long)p & 7) == 0; }
__device__ __forceinline__ float bflo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bfhi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ f4 ld4(const float* p, long long i) { return ((const f4*)p)[i]; }
__device__ __forceinline__ f4 ld4(const bf16_t* p, long long i) {
  h4 h = ((const h4*)p)[i];
  f4 r = {bflo(h.lo), bfhi(h.lo), bflo(h.hi), bfhi(h.hi)};
  return r;
}
__device__ __forceinline__ void st4(float* p, long long i, f4 v) { ((f4*)p)[i] = v; }
__device__ __forceinline__ void st4(bf16_t* p, long long i, f4 v) {
  h4 h = {bf2(v.x, v.y), bf2(v.z, v.w)};
  ((h4*)p)[i] = h;
}
__device__ __forceinline__ float ld1(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld1(const bf16_t* p, long long i) { return __uint_as_float(((unsigned)p[i]) << 16); }
__device__ __forceinline__ void st1(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st1(bf16_t* p, long long i, float v) { p[i] = f2bf(v); }

template <typename TO, typename TA, typename F>
__device__ __forceinline__ void map1t(TO* __restrict__ out, const TA* __restrict__ a, long long n, F f) {
  long long n4 = (alv(out) && alv(a)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 x = ld4(a, i);
    f4 y = {f(x.x), f(x.y), f(x.z), f(x.w)};
    st4(out, i, y);
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    st1(out, i, f(ld1(a, i)));
}

template <typename TO, typename TA, typename TB, typename F>
__device__ __forceinline__ void map2t(TO* __restrict__ out, const TA* __restrict__ a, const TB* __restrict__ b, long long n, F f) {
  long long n4 = (alv(out) && alv(a) && alv(b)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 x = ld4(a, i), z = ld4(b, i);
    f4 y = {f(x.x, z.x), f(x.y, z.y), f(x.z, z.z), f(x.w, z.w)};
    st4(out, i, y);
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    st1(out, i, f(ld1(a, i), ld1(b, i)));
}

extern "C" __global__ void k_to_bf16(bf16_t* __restrict__ out, const float* __restrict__ a, long long n) {
  long long n4 = (al16(out) && al16(a)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 x = ((const f4*)a)[i];
    h4 y = {bf2(x.x, x.y), bf2(x.z, x.w)};
    ((h4*)out)[i] = y;
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[i] = f2bf(a[i]);
}

extern "C" __global__ void k_linear(float* out, const float* a, const float* b, float alpha, float beta, long long n) {
  map2(out, a, b, n, [=](float x, float y) { return alpha * x + beta * y; });
}

extern "C" __global__ void k_scale(float* out, const float* a, float s, long long n) {
  map1(out, a, n, [=](float x) { return s * x; });
}

extern "C" __global__ void k_hadamard(float* out, const float* a, const float* b, long long n) {
  map2(out, a, b, n, [](float x, float y) { return x * y; });
}

extern "C" __global__ void k_scale_rows(float* out, const float* a, int cols, int from, int to, float f, long long n) {
  GRID_STRIDE(i, n) {
    long long r = i / cols;
    out[i] = (r >= from && r < to) ? a[i] * f : a[i];
  }
}

extern "C" __global__ void k_adam_dir(float* out, const float* m, const float* v, float bc1, float bc2, float eps, long long n) {
  GRID_STRIDE(i, n) out[i] = (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
}

// One fused AdamW update (CudaOps.adamW): m, v, w are updated out of place into m1, v1, w1.
__device__ __forceinline__ void adamw1(float& w1, float& m1, float& v1, float w, float g, float m, float v, float b1, float b2,
                                       float bc1, float bc2, float eps, float lr, float wd) {
  float mi = b1 * m + (1.f - b1) * g;
  float vi = b2 * v + (1.f - b2) * g * g;
  m1 = mi;
  v1 = vi;
  w1 = (1.f - lr * wd) * w - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps));
}

extern "C" __global__ void k_adamw(float* __restrict__ w1, float* __restrict__ m1, float* __restrict__ v1, const float* __restrict__ w,
                                   const float* __restrict__ g, const float* __restrict__ m, const float* __restrict__ v, float b1,
                                   float b2, float bc1, float bc2, float eps, float lr, float wd, long long n) {
  long long n4 = (al16(w1) && al16(m1) && al16(v1) && al16(w) && al16(g) && al16(m) && al16(v)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 wi = ((const f4*)w)[i], gi = ((const f4*)g)[i], mi = ((const f4*)m)[i], vi = ((const f4*)v)[i], wo, mo, vo;
    adamw1(wo.x, mo.x, vo.x, wi.x, gi.x, mi.x, vi.x, b1, b2, bc1, bc2, eps, lr, wd);
    adamw1(wo.y, mo.y, vo.y, wi.y, gi.y, mi.y, vi.y, b1, b2, bc1, bc2, eps, lr, wd);
    adamw1(wo.z, mo.z, vo.z, wi.z, gi.z, mi.z, vi.z, b1, b2, bc1, bc2, eps, lr, wd);
    adamw1(wo.w, mo.w, vo.w, wi.w, gi.w, mi.w, vi.w, b1, b2, bc1, bc2, eps, lr, wd);
    ((f4*)w1)[i] = wo;
    ((f4*)m1)[i] = mo;
    ((f4*)v1)[i] = vo;
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    adamw1(w1[i], m1[i], v1[i], w[i], g[i], m[i], v[i], b1, b2, bc1, bc2, eps, lr, wd);
}

// out (C,R) = a^T, a (R,C); 32x32 tiles through shared memory, block (32,8).
extern "C" __global__ void k_transpose(float* out, const float* a, int rows, int cols) {
  __shared__ float tile[32][33];
  int bx = blockIdx.x * 32, by = blockIdx.y * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = by + j, c = bx + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = a[(long long)r * cols + c];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = bx + j, c = by + threadIdx.x;  // out row = a's column
    if (r < cols && c < rows) out[(long long)r * rows + c] = tile[threadIdx.x][j];
  }
}

// acc[0] += sum of a (mode 0) or of a^2 (mode 1), accumulated in double.
extern "C" __global__ void k_reduce(double* acc, const float* a, int mode, long long n) {
  __shared__ double sh[32];
  double s = 0;
  GRID_STRIDE(i, n) {
    double x = a[i];
    s += mode ? x * x : x;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < (blockDim.x + 31) / 32; i++) t += sh[i];
    atomicAdd(acc, t);
  }
}

// out (1,C) += column sums of a (R,C) over this block's rows; out zeroed by the caller. Block (32,8).
extern "C" __global__ void k_col_sums(float* out, const float* a, int rows, int cols, int rowsPerBlock) {
  __shared__ float sh[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int r0 = blockIdx.y * rowsPerBlock, r1 = min(rows, r0 + rowsPerBlock);
  float s = 0.f;
  if (c < cols) {
    for (int r = r0 + threadIdx.y; r < r1; r += 8) s += a[(long long)r * cols + c];
  }
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (int j = 0; j < 8; j++) t += sh[j][threadIdx.x];
    atomicAdd(out + c, t);
  }
}

extern "C" __global__ void k_embedding(float* out, const float* table, const int* ids, int cols, long long n) {
  GRID_STRIDE(i, n) {
    long long r = i / cols;
    int c = (int)(i - r * cols);
    out[i] = table[(long long)ids[r] * cols + c];
  }
}

// dtable (zeroed by the caller) += dout rows at ids.
extern "C" __global__ void k_embedding_bwd(float* dtable, const float* dout, const int* ids, int cols, long long n) {
  GRID_STRIDE(i, n) {
    long long r = i / cols;
    int c = (int)(i - r * cols);
    atomicAdd(dtable + (long long)ids[r] * cols + c, dout[i]);
  }
}

// One warp per row, 8 rows a block of 256: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); vector accesses
// where the width is a multiple of 4. out is fp32 (k_rmsnorm) or bf16 (k_rmsnorm_bf).
template <typename TO>
__device__ __forceinline__ void rmsnorm_rows(TO* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ x,
                                             const float* __restrict__ w, int rows, int cols, float eps) {
  int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float* xr = x + (long long)row * cols;
  TO* orow = out + (long long)row * cols;
  bool vec = (cols & 3) == 0 && al16(x) && alv(out) && al16(w);
  float ss = 0.f;
  if (vec) {
    for (int j = lane; j < cols / 4; j += 32) {
      f4 v = ((const f4*)xr)[j];
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (int j = lane; j < cols; j += 32) ss += xr[j] * xr[j];
  }
  float r = rsqrtf(warp_sum(ss) / cols + eps);
  if (lane == 0) rstd[row] = r;
  if (vec) {
    for (int j = lane; j < cols / 4; j += 32) {
      f4 v = ((const f4*)xr)[j], ww = ((const f4*)w)[j];
      f4 o = {v.x * r * ww.x, v.y * r * ww.y, v.z * r * ww.z, v.w * r * ww.w};
      st4(orow, j, o);
    }
  } else {
    for (int j = lane; j < cols; j += 32) st1(orow, j, xr[j] * r * w[j]);
  }
}

extern "C" __global__ void k_rmsnorm(float* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ x,
                                     const float* __restrict__ w, int rows, int cols, float eps) {
  rmsnorm_rows(out, rstd, x, w, rows, cols, eps);
}

extern "C" __global__ void k_rmsnorm_bf(bf16_t* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ x,
                                        const float* __restrict__ w, int rows, int cols, float eps) {
  rmsnorm_rows(out, rstd, x, w, rows, cols, eps);
}

// Each block takes rowsPerBlock rows: dx = r (g w - xhat mean(g w xhat)); dwPart[block] = sum over its rows of g xhat.
// Dynamic shared memory: cols floats for the block's dw accumulators (each thread owns columns j = tid mod blockDim).
extern "C" __global__ void k_rmsnorm_bwd(float* dx, float* dwPart, const float* g, const float* x, const float* w,
                                         const float* rstd, const float* res, int rows, int cols, int rowsPerBlock) {
  __shared__ float sh[32];
  extern __shared__ float dws[];
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dws[j] = 0.f;
  int r0 = blockIdx.x * rowsPerBlock, r1 = min(rows, r0 + rowsPerBlock);
  for (int i = r0; i < r1; i++) {
    const float* xr = x + (long long)i * cols;
    const float* gr = g + (long long)i * cols;
    float r = rstd[i];
    float dot = 0.f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
      float xh = xr[j] * r;
      dws[j] += gr[j] * xh;
      dot += gr[j] * w[j] * xh;
    }
    dot = block_sum(dot, sh) / cols;
    float* dr = dx + (long long)i * cols;
    const float* rr = res ? res + (long long)i * cols : nullptr;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dr[j] = (rr ? rr[j] : 0.f) + r * (gr[j] * w[j] - xr[j] * r * dot);
  }
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dwPart[(long long)blockIdx.x * cols + j] = dws[j];
}

// The same backward with a warp per row (rows warp, warp + nw, ... of the block's rowsPerBlock), no block barrier per
// row: each warp adds g xhat of its rows into its own slice of shared memory (each lane its own columns), and the
// slices are summed into dwPart[block] at the end. Dynamic shared memory: (blockDim / 32) * cols floats.
extern "C" __global__ void k_rmsnorm_bwd_w(float* __restrict__ dx, float* __restrict__ dwPart, const float* __restrict__ g,
                                           const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ rstd,
                                           const float* __restrict__ res, int rows, int cols, int rowsPerBlock) {
  extern __shared__ float dws[];
  int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* my = dws + warp * cols;
  for (int j = lane; j < cols; j += 32) my[j] = 0.f;
  __syncwarp();
  bool vec = (cols & 3) == 0 && al16(g) && al16(x) && al16(w) && al16(dx) && (!res || al16(res));
  int r0 = blockIdx.x * rowsPerBlock, r1 = min(rows, r0 + rowsPerBlock);
  for (int i = r0 + warp; i < r1; i += nw) {
    const float* xr = x + (long long)i * cols;
    const float* gr = g + (long long)i * cols;
    float* dr = dx + (long long)i * cols;
    const float* rr = res ? res + (long long)i * cols : nullptr;
    float r = rstd[i], dot = 0.f;
    if (vec) {
      for (int j = lane; j < cols / 4; j += 32) {
        f4 xv = ((const f4*)xr)[j], gv = ((const f4*)gr)[j], wv = ((const f4*)w)[j], d = ((f4*)my)[j];
        float a = xv.x * r, b = xv.y * r, c = xv.z * r, e = xv.w * r;
        d.x += gv.x * a; d.y += gv.y * b; d.z += gv.z * c; d.w += gv.w * e;
        ((f4*)my)[j] = d;
        dot += gv.x * wv.x * a + gv.y * wv.y * b + gv.z * wv.z * c + gv.w * wv.w * e;
      }
      dot = warp_sum(dot) / cols;
      for (int j = lane; j < cols / 4; j += 32) {
        f4 xv = ((const f4*)xr)[j], gv = ((const f4*)gr)[j], wv = ((const f4*)w)[j];
        f4 o = {r * (gv.x * wv.x - xv.x * r * dot), r * (gv.y * wv.y - xv.y * r * dot), r * (gv.z * wv.z - xv.z * r * dot),
                r * (gv.w * wv.w - xv.w * r * dot)};
        if (rr) {
          f4 rv = ((const f4*)rr)[j];
          o.x += rv.x; o.y += rv.y; o.z += rv.z; o.w += rv.w;
        }
        ((f4*)dr)[j] = o;
      }
    } else {
      for (int j = lane; j < cols; j += 32) {
        float xh = xr[j] * r;
        my[j] += gr[j] * xh;
        dot += gr[j] * w[j] * xh;
      }
      dot = warp_sum(dot) / cols;
      for (int j = lane; j < cols; j += 32) dr[j] = (rr ? rr[j] : 0.f) + r * (gr[j] * w[j] - xr[j] * r * dot);
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float sum = 0.f;
    for (int k = 0; k < nw; k++) sum += dws[k * cols + j];
    dwPart[(long long)blockIdx.x * cols + j] = sum;
  }
}

#define GELU_S 0.7978845608028654f

__device__ __forceinline__ float gelu1(float v) {
  return 0.5f * v * (1.f + tanhf(GELU_S * (v + 0.044715f * v * v * v)));
}

__device__ __forceinline__ float geluGrad1(float g, float v) {
  float t = tanhf(GELU_S * (v + 0.044715f * v * v * v));
  float du = GELU_S * (1.f + 3.f * 0.044715f * v * v);
  return g * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
}

extern "C" __global__ void k_gelu(float* out, const float* x, long long n) {
  map1(out, x, n, [](float v) { return gelu1(v); });
}

extern "C" __global__ void k_gelu_bwd(float* dx, const float* g, const float* x, long long n) {
  map2(dx, g, x, n, [](float gi, float v) { return geluGrad1(gi, v); });
}

// bf16 outputs (fb: fp32 input; bb: bf16 input) and, for the backward, the gradient g in fp32 with x in fp32 (ffb)
// or bf16 (fbb).
extern "C" __global__ void k_gelu_fb(bf16_t* out, const float* x, long long n) {
  map1t(out, x, n, [](float v) { return gelu1(v); });
}

extern "C" __global__ void k_gelu_bb(bf16_t* out, const bf16_t* x, long long n) {
  map1t(out, x, n, [](float v) { return gelu1(v); });
}

extern "C" __global__ void k_gelu_bwd_ffb(bf16_t* dx, const float* g, const float* x, long long n) {
  map2t(dx, g, x, n, [](float gi, float v) { return geluGrad1(gi, v); });
}

extern "C" __global__ void k_gelu_bwd_fbb(bf16_t* dx, const float* g, const bf16_t* x, long long n) {
  map2t(dx, g, x, n, [](float gi, float v) { return geluGrad1(gi, v); });
}

// The incoming gradient as bf16 too (the w2 GEMM's dX written as bf16: matmulBackwardLowPrecision)
extern "C" __global__ void k_gelu_bwd_bfb(bf16_t* dx, const bf16_t* g, const float* x, long long n) {
  map2t(dx, g, x, n, [](float gi, float v) { return geluGrad1(gi, v); });
}

extern "C" __global__ void k_gelu_bwd_bbb(bf16_t* dx, const bf16_t* g, const bf16_t* x, long long n) {
  map2t(dx, g, x, n, [](float gi, float v) { return geluGrad1(gi, v); });
}

// One block per row.
extern "C" __global__ void k_softmax(float* out, const float* x, int cols) {
  __shared__ float sh[32];
  const float* xr = x + (long long)blockIdx.x * cols;
  float* orow = out + (long long)blockIdx.x * cols;
  float m = -K_INF;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_max(m, sh);
  float s = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) s += __expf(xr[j] - m);
  s = block_sum(s, sh);
  float inv = 1.f / s;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) orow[j] = __expf(xr[j] - m) * inv;
}

extern "C" __global__ void k_softmax_bwd(float* dx, const float* g, const float* y, int cols) {
  __shared__ float sh[32];
  long long o = (long long)blockIdx.x * cols;
  float dot = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += g[o + j] * y[o + j];
  dot = block_sum(dot, sh);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = y[o + j] * (g[o + j] - dot);
}

// Log-sum-exp of one row in one pass (a running maximum and a sum rescaled when it grows, per thread, then
// combined over the block), for the cross-entropy kernels; 16-byte loads where the row allows.
__device__ __forceinline__ void lse_step(float v, float& m, float& s) {
  if (v > m) {
    s = s * __expf(m - v) + 1.f;
    m = v;
  } else {
    s += __expf(v - m);
  }
}

__device__ float row_lse(const float* xr, int cols, float* sh) {
  float m = -K_INF, s = 0.f;
  if ((cols & 3) == 0 && al16(xr)) {
    for (int j = threadIdx.x; j < cols / 4; j += blockDim.x) {
      f4 v = ((const f4*)xr)[j];
      lse_step(v.x, m, s);
      lse_step(v.y, m, s);
      lse_step(v.z, m, s);
      lse_step(v.w, m, s);
    }
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) lse_step(xr[j], m, s);
  }
  float M = block_max(m, sh);
  s = m == -K_INF ? 0.f : s * __expf(m - M);
  s = block_sum(s, sh);
  return M + logf(s);
}

// nll[r] = lse(x[r]) - x[r][t[r]] where mask[r] != 0, else 0; lseOut[r] keeps lse for the backward.
extern "C" __global__ void k_xent(float* nll, float* lseOut, const float* x, const int* targets, const float* mask, int cols) {
  __shared__ float sh[32];
  int r = blockIdx.x;
  if (mask[r] == 0.f) {
    if (threadIdx.x == 0) { nll[r] = 0.f; lseOut[r] = K_NAN; }
    return;
  }
  const float* xr = x + (long long)r * cols;
  float lse = row_lse(xr, cols, sh);
  if (threadIdx.x == 0) { nll[r] = lse - xr[targets[r]]; lseOut[r] = lse; }
}

// dx[r] = dnll[r] (softmax(x[r]) - onehot(t[r])); rows with dnll 0 are written as zeros.
// lse is the forward's row log-sum-exp where known (not NaN), else recomputed here.
extern "C" __global__ void k_xent_bwd(float* __restrict__ dx, const float* __restrict__ x, const int* targets, const float* dnll,
                                      const float* lse, int cols) {
  __shared__ float sh[32];
  int r = blockIdx.x;
  long long o = (long long)r * cols;
  float d = dnll[r];
  bool vec = (cols & 3) == 0 && al16(x + o) && al16(dx + o);
  if (d == 0.f) {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = 0.f;
    return;
  }
  float l = lse ? lse[r] : K_NAN;
  if (l != l) l = row_lse(x + o, cols, sh);
  int t = targets[r];
  if (vec) {
    for (int j = threadIdx.x; j < cols / 4; j += blockDim.x) {
      f4 v = ((const f4*)(x + o))[j];
      f4 y = {d * __expf(v.x - l), d * __expf(v.y - l), d * __expf(v.z - l), d * __expf(v.w - l)};
      ((f4*)(dx + o))[j] = y;
    }
    __syncthreads();  // the one-hot term after every vector store of the row
    if (threadIdx.x == 0) dx[o + t] -= d;
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = d * (__expf(x[o + j] - l) - (j == t ? 1.f : 0.f));
  }
}

// The same gradient stored as bf16 (it is read only as a GEMM operand); the one-hot term is subtracted in place.
extern "C" __global__ void k_xent_bwd_bf(bf16_t* __restrict__ dx, const float* __restrict__ x, const int* targets, const float* dnll,
                                         const float* lse, int cols) {
  __shared__ float sh[32];
  int r = blockIdx.x;
  long long o = (long long)r * cols;
  float d = dnll[r];
  if (d == 0.f) {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = 0;
    return;
  }
  float l = lse ? lse[r] : K_NAN;
  if (l != l) l = row_lse(x + o, cols, sh);
  int t = targets[r];
  if ((cols & 3) == 0 && al16(x + o) && alv(dx + o)) {
    for (int j = threadIdx.x; j < cols / 4; j += blockDim.x) {
      f4 v = ((const f4*)(x + o))[j];
      int c = 4 * j;
      f4 y = {d * (__expf(v.x - l) - (c == t ? 1.f : 0.f)), d * (__expf(v.y - l) - (c + 1 == t ? 1.f : 0.f)),
              d * (__expf(v.z - l) - (c + 2 == t ? 1.f : 0.f)), d * (__expf(v.w - l) - (c + 3 == t ? 1.f : 0.f))};
      st4(dx + o, j, y);
    }
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) st1(dx + o, j, d * (__expf(x[o + j] - l) - (j == t ? 1.f : 0.f)));
  }
}

// ---- Newton-Schulz in bf16 (CudaOps.newtonSchulz) ----

// x = bf16(g / (sqrt(*sumsq) + eps)): the scaled start of the iteration, the norm read on the device.
extern "C" __global__ void k_ns_init(bf16_t* x, const float* g, const double* sumsq, float eps, long long n) {
  float inv = 1.f / ((float)sqrt(*sumsq) + eps);
  GRID_STRIDE(i, n) x[i] = f2bf(g[i] * inv);
}

extern "C" __global__ void k_bf16_to_f32(float* out, const bf16_t* x, long long n) {
  map1t(out, x, n, [](float v) { return v; });
}

// ---- batched Newton-Schulz (CudaOps.newtonSchulzBatch): same-shaped matrices, one launch each for all ----
// gs / outs: device arrays of `batch` device pointers, one per matrix. Grid z (or y) is the matrix index.

// acc[m] += sum of gs[m][0..n)^2 in double, as k_reduce's mode 1 per matrix. Grid (blocks, batch), acc zeroed.
extern "C" __global__ void k_sumsq_batch(double* acc, const unsigned long long* gs, long long n) {
  __shared__ double sh[32];
  const float* a = (const float*)gs[blockIdx.y];
  double s = 0;
  GRID_STRIDE(i, n) {
    double x = a[i];
    s += x * x;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < (blockDim.x + 31) / 32; i++) t += sh[i];
    atomicAdd(acc + blockIdx.y, t);
  }
}

// out (rows*cols bf16) = bf16(g / (sqrt(sumsq) + eps)) (k_ns_init's arithmetic) for this block's 32x32 tile of
// g (rows, cols) fp32, stored transposed (cols, rows) when transpose != 0. Block (32, 8); tile is the block's shared tile.
__device__ __forceinline__ void ns_init_tile(bf16_t* out, const float* g, double sumsq, float eps, int rows, int cols, int transpose,
                                             float (*tile)[33]) {
  float inv = 1.f / ((float)sqrt(sumsq) + eps);
  int bx = blockIdx.x * 32, by = blockIdx.y * 32;
  if (!transpose) {
    for (int j = threadIdx.y; j < 32; j += 8) {
      int r = by + j, c = bx + threadIdx.x;
      if (r < rows && c < cols) out[(long long)r * cols + c] = f2bf(g[(long long)r * cols + c] * inv);
    }
    return;
  }
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = by + j, c = bx + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = g[(long long)r * cols + c];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = bx + j, c = by + threadIdx.x;  // out row = g's column
    if (r < cols && c < rows) out[(long long)r * rows + c] = f2bf(tile[threadIdx.x][j] * inv);
  }
}

// x + m*rows*cols = bf16(gs[m] / (sqrt(sumsq[m]) + eps)) (k_ns_init's arithmetic), stored transposed (cols, rows)
// when transpose != 0. gs[m] is (rows, cols) fp32. Grid (ceil(cols/32), ceil(rows/32), batch), block (32, 8).
extern "C" __global__ void k_ns_init_batch(bf16_t* x, const unsigned long long* gs, const double* sumsq, float eps, int rows,
                                           int cols, int transpose) {
  __shared__ float tile[32][33];
  int m = blockIdx.z;
  ns_init_tile(x + (long long)m * rows * cols, (const float*)gs[m], sumsq[m], eps, rows, cols, transpose, tile);
}

// outs[m] (fp32) = x + m*rows*cols (bf16, (rows, cols)), transposed into (cols, rows) when transpose != 0.
// Grid (ceil(cols/32), ceil(rows/32), batch), block (32, 8).
extern "C" __global__ void k_ns_unpack_batch(const unsigned long long* outs, const bf16_t* x, int rows, int cols, int transpose) {
  __shared__ float tile[32][33];
  int m = blockIdx.z;
  float* out = (float*)outs[m];
  const bf16_t* a = x + (long long)m * rows * cols;
  int bx = blockIdx.x * 32, by = blockIdx.y * 32;
  if (!transpose) {
    for (int j = threadIdx.y; j < 32; j += 8) {
      int r = by + j, c = bx + threadIdx.x;
      if (r < rows && c < cols) out[(long long)r * cols + c] = ld1(a, (long long)r * cols + c);
    }
    return;
  }
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = by + j, c = bx + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = ld1(a, (long long)r * cols + c);
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = bx + j, c = by + threadIdx.x;  // out row = x's column
    if (r < cols && c < rows) out[(long long)r * rows + c] = tile[threadIdx.x][j];
  }
}

// ---- fused Muon step of a group of same-shaped matrices (CudaOps.muonGroupStep) ----
// The per-matrix device pointers travel as kernel parameters (PtrTable, passed by value: nothing is uploaded, so the
// host never waits), MUON_TABLE of them per launch; CudaOps.MUON_TABLE must equal it. A larger group runs in chunks:
// matrix z of a launch (grid y or z) is matrix m0 + z of the group, which places it in the group's contiguous buffers.
#define MUON_TABLE 64
struct PtrTable {
  unsigned long long p[MUON_TABLE];
};

// m1 = mu*m + g and u = nesterov ? g + mu*m1 : m1 (Muon.step's two linear ops) for matrix z = blockIdx.y of the chunk:
// m1 into m1s[z], u into u + (m0 + z)*n (fp32, (rows, cols) as the weight: the batch's Newton-Schulz input), and the
// sum of u^2 in double added to sumsq[m0 + z] (k_sumsq_batch's accumulation; zeroed by the caller). Grid (blocks, chunk).
extern "C" __global__ void k_muon_momentum(float* __restrict__ u, double* __restrict__ sumsq, PtrTable gs, PtrTable ms, PtrTable m1s,
                                           float mu, int nesterov, int m0, long long n) {
  __shared__ double sh[32];
  int z = blockIdx.y;
  const float* g = (const float*)gs.p[z];
  const float* m = (const float*)ms.p[z];
  float* m1 = (float*)m1s.p[z];
  float* uz = u + (long long)(m0 + z) * n;
  double s = 0;
  long long n4 = (al16(g) && al16(m) && al16(m1) && al16(uz)) ? n >> 2 : 0;
  VEC_STRIDE(i, n4) {
    f4 gi = ((const f4*)g)[i], mi = ((const f4*)m)[i], mo, uo;
    mo.x = mu * mi.x + gi.x;
    mo.y = mu * mi.y + gi.y;
    mo.z = mu * mi.z + gi.z;
    mo.w = mu * mi.w + gi.w;
    uo.x = nesterov ? gi.x + mu * mo.x : mo.x;
    uo.y = nesterov ? gi.y + mu * mo.y : mo.y;
    uo.z = nesterov ? gi.z + mu * mo.z : mo.z;
    uo.w = nesterov ? gi.w + mu * mo.w : mo.w;
    ((f4*)m1)[i] = mo;
    ((f4*)uz)[i] = uo;
    s += (double)uo.x * uo.x + (double)uo.y * uo.y + (double)uo.z * uo.z + (double)uo.w * uo.w;
  }
  for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float gi = g[i], mo = mu * m[i] + gi, uo = nesterov ? gi + mu * mo : mo;
    m1[i] = mo;
    uz[i] = uo;
    s += (double)uo * uo;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < (blockDim.x + 31) / 32; i++) t += sh[i];
    atomicAdd(sumsq + m0 + z, t);
  }
}

// The Newton-Schulz start of every matrix of the group from the contiguous u of k_muon_momentum: matrix m's
// u + m*rows*cols (fp32 (rows, cols)) into x + m*rows*cols, as k_ns_init_batch. Grid (ceil(cols/32), ceil(rows/32), batch).
extern "C" __global__ void k_muon_ns_init(bf16_t* x, const float* u, const double* sumsq, float eps, int rows, int cols, int transpose) {
  __shared__ float tile[32][33];
  long long off = (long long)blockIdx.z * rows * cols;
  ns_init_tile(x + off, u + off, sumsq[blockIdx.z], eps, rows, cols, transpose, tile);
}

// w1s[z] = alpha*ws[z] + beta*(s*O) (Muon.step's scale and decay ops: alpha = 1 - lr*wd, beta = -lr,
// s = 0.2*sqrt(max(A, B))), O the Newton-Schulz result of matrix m0 + z read from x + (m0 + z)*rows*cols, bf16 (rows, cols),
// transposed back into the weight's (cols, rows) when transpose != 0 (k_ns_unpack_batch's reading).
// Grid (ceil(cols/32), ceil(rows/32), chunk), block (32, 8); rows and cols are the iterate's.
extern "C" __global__ void k_muon_decay(PtrTable ws, PtrTable w1s, const bf16_t* x, float alpha, float beta, float s, int m0, int rows,
                                        int cols, int transpose) {
  __shared__ float tile[32][33];
  int z = blockIdx.z;
  const float* w = (const float*)ws.p[z];
  float* w1 = (float*)w1s.p[z];
  const bf16_t* a = x + (long long)(m0 + z) * rows * cols;
  int bx = blockIdx.x * 32, by = blockIdx.y * 32;
  if (!transpose) {
    for (int j = threadIdx.y; j < 32; j += 8) {
      int r = by + j, c = bx + threadIdx.x;
      if (r < rows && c < cols) {
        long long i = (long long)r * cols + c;
        float o = s * ld1(a, i);
        w1[i] = alpha * w[i] + beta * o;
      }
    }
    return;
  }
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = by + j, c = bx + threadIdx.x;
    if (r < rows && c < cols) tile[j][threadIdx.x] = ld1(a, (long long)r * cols + c);
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = bx + j, c = by + threadIdx.x;  // the weight's row = x's column; the weight is (cols, rows)
    if (r < cols && c < rows) {
      long long i = (long long)r * rows + c;
      float o = s * tile[threadIdx.x][j];
      w1[i] = alpha * w[i] + beta * o;
    }
  }
}
