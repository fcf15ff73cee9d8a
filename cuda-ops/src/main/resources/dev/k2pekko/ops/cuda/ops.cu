// Elementwise, reduction, normalisation, softmax and cross-entropy kernels of CudaOps.
// Compiled at run time by NVRTC for the device's architecture (see Kernels.java); no headers needed.
// Tensors are fp32 row-major; bf16 appears only as GEMM operands (unsigned short holding the bits).
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

extern "C" __global__ void k_to_bf16(bf16_t* out, const float* a, long long n) {
  GRID_STRIDE(i, n) out[i] = f2bf(a[i]);
}

extern "C" __global__ void k_linear(float* out, const float* a, const float* b, float alpha, float beta, long long n) {
  GRID_STRIDE(i, n) out[i] = alpha * a[i] + beta * b[i];
}

extern "C" __global__ void k_scale(float* out, const float* a, float s, long long n) {
  GRID_STRIDE(i, n) out[i] = s * a[i];
}

extern "C" __global__ void k_hadamard(float* out, const float* a, const float* b, long long n) {
  GRID_STRIDE(i, n) out[i] = a[i] * b[i];
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
extern "C" __global__ void k_adamw(float* w1, float* m1, float* v1, const float* w, const float* g, const float* m,
                                   const float* v, float b1, float b2, float bc1, float bc2, float eps, float lr,
                                   float wd, long long n) {
  GRID_STRIDE(i, n) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.f - b1) * gi;
    float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m1[i] = mi;
    v1[i] = vi;
    w1[i] = (1.f - lr * wd) * w[i] - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps));
  }
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

// One block per row: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
extern "C" __global__ void k_rmsnorm(float* out, float* rstd, const float* x, const float* w, int cols, float eps) {
  __shared__ float sh[32];
  const float* xr = x + (long long)blockIdx.x * cols;
  float* orow = out + (long long)blockIdx.x * cols;
  float ss = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) ss += xr[j] * xr[j];
  float r = rsqrtf(block_sum(ss, sh) / cols + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) orow[j] = xr[j] * r * w[j];
}

// Each block takes rowsPerBlock rows: dx = r (g w - xhat mean(g w xhat)); dwPart[block] = sum over its rows of g xhat.
// Dynamic shared memory: cols floats for the block's dw accumulators (each thread owns columns j = tid mod blockDim).
extern "C" __global__ void k_rmsnorm_bwd(float* dx, float* dwPart, const float* g, const float* x, const float* w,
                                         const float* rstd, int rows, int cols, int rowsPerBlock) {
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
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dr[j] = r * (gr[j] * w[j] - xr[j] * r * dot);
  }
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dwPart[(long long)blockIdx.x * cols + j] = dws[j];
}

#define GELU_S 0.7978845608028654f

extern "C" __global__ void k_gelu(float* out, const float* x, long long n) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    out[i] = 0.5f * v * (1.f + tanhf(GELU_S * (v + 0.044715f * v * v * v)));
  }
}

extern "C" __global__ void k_gelu_bwd(float* dx, const float* g, const float* x, long long n) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    float t = tanhf(GELU_S * (v + 0.044715f * v * v * v));
    float du = GELU_S * (1.f + 3.f * 0.044715f * v * v);
    dx[i] = g[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
  }
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

// Row max and log-sum-exp of one row, for the cross-entropy kernels.
__device__ float row_lse(const float* xr, int cols, float* sh) {
  float m = -K_INF;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_max(m, sh);
  float s = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) s += __expf(xr[j] - m);
  s = block_sum(s, sh);
  return m + logf(s);
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
extern "C" __global__ void k_xent_bwd(float* dx, const float* x, const int* targets, const float* dnll, const float* lse, int cols) {
  __shared__ float sh[32];
  int r = blockIdx.x;
  long long o = (long long)r * cols;
  float d = dnll[r];
  if (d == 0.f) {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = 0.f;
    return;
  }
  float l = lse ? lse[r] : K_NAN;
  if (l != l) l = row_lse(x + o, cols, sh);
  int t = targets[r];
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = d * (__expf(x[o + j] - l) - (j == t ? 1.f : 0.f));
}

// ---- Newton-Schulz in bf16 (CudaOps.newtonSchulz) ----

// x = bf16(g / (sqrt(*sumsq) + eps)): the scaled start of the iteration, the norm read on the device.
extern "C" __global__ void k_ns_init(bf16_t* x, const float* g, const double* sumsq, float eps, long long n) {
  float inv = 1.f / ((float)sqrt(*sumsq) + eps);
  GRID_STRIDE(i, n) x[i] = f2bf(g[i] * inv);
}

extern "C" __global__ void k_bf16_to_f32(float* out, const bf16_t* x, long long n) {
  GRID_STRIDE(i, n) out[i] = __uint_as_float(((unsigned)x[i]) << 16);
}
