// Causal multi-head attention in 64x64 tiles (flash-style: the T x T score matrix is never stored), on the
// bf16 tensor cores through mma.sync.m16n8k16 with fp32 accumulation. Compiled by NVRTC with -DHD=<head dim>;
// HDP pads the head dimension to a multiple of 16 with zeros. q, k, v, dout arrive as bf16 (the tensors' cached
// GEMM-operand copies or their bf16 storage); lse is fp32; out and the gradients are fp32 or, where the kernel's
// flag obf is set, bf16 (CudaOps' bf16 tensors: read only as GEMM operands and by k_attn_D); all (B*T, C) with
// C = H*HD, head h in columns [h*HD, (h+1)*HD). A block of 128 threads (4 warps) owns 64 rows; each warp 16.
// The tiles a block loops over are copied token-major into shared memory by cp.async, two stages deep (the next
// tile loads while the current one is computed); B fragments come out of shared memory through ldmatrix, with
// .trans where the operand is needed dim-major, so no tile is ever stored transposed. Only the diagonal tile is
// masked: every other tile a block visits lies wholly below the diagonal and inside [0, T).
//
// Forward: out, lse (natural log-sum-exp of each (b,h,row)'s scaled logits) and, as a by-product, each head's
// maximum scaled logit max_{b,i,j<=i} q_i.k_j/sqrt(HD), read off the online softmax's final row maxima (one
// reduction per block, then atomicMax on an order-preserving encoding of floats).
// Blocks of the query-tile kernels (forward, dQ) take the longest rows first (query tile gridDim.x - 1 - blockIdx.x):
// the causal work of a tile grows with its index, and the last wave then holds the short ones.
// Backward (FlashAttention-2's split): D = rowsum(dout*out) from their bf16 forms, then one kernel for dK, dV (a block per key tile,
// looping over query tiles) and one for dQ (a block per query tile, looping over key tiles); no atomics.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"), g = lane/4, t = lane%4:
//   A (16x16, row-major): reg0 (g, 2t..2t+1), reg1 (g+8, 2t..), reg2 (g, 2t+8..), reg3 (g+8, 2t+8..)
//   B (16x8, k x n):      reg0 (k = 2t..2t+1, n = g), reg1 (k = 2t+8.., n = g)
//   C (16x8, fp32):       c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1)
// so the accumulators of two adjacent 8-column tiles are exactly the A fragment of a 16-wide k step.
// ldmatrix gives lane (g, t) elements (g, 2t..2t+1) of each 8x8 matrix, and with .trans elements (2t..2t+1, g):
// the B fragment from an n-major tile without, from a k-major tile with .trans.

typedef unsigned short bf16_t;
#define K_INF __int_as_float(0x7f800000)
#define HDP ((((HD) + 15) / 16) * 16)
#define TILE 64
#define SR (HDP + 8)        // stride of a token-major tile X[token][dim]; rows 16-byte aligned, ldmatrix conflict-free
#define TSZ (TILE * SR)     // elements of one tile
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// dK/dV takes the keys' queries in two halves of 32 per tile (half the score registers) at 3 blocks per SM where the
// padded head dimension allows it (up to 64); wider heads take whole tiles, as the halves would spill registers.
#if HDP <= 64
#define DKDV_HALVES 1
#define DKDV_BOUNDS __launch_bounds__(128, 3)
#else
#define DKDV_HALVES 0
#define DKDV_BOUNDS __launch_bounds__(128)
#endif

__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ bf16_t bf1(float f) {
  bf16_t h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// dst[i], dst[i+1] (the second only if two) = x, y as fp32 or, with obf, bf16; one 8- or 4-byte store where aligned.
__device__ __forceinline__ void st2(void* dst, int obf, long long i, float x, float y, bool two) {
  if (obf) {
    bf16_t* p = (bf16_t*)dst + i;
    if (two && (i & 1) == 0) {
      *(unsigned*)p = pack2(x, y);
    } else {
      p[0] = bf1(x);
      if (two) p[1] = bf1(y);
    }
  } else {
    float* p = (float*)dst + i;
    if (two && (i & 1) == 0) {
      *(float2*)p = make_float2(x, y);
    } else {
      p[0] = x;
      if (two) p[1] = y;
    }
  }
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void mma(float* c, const unsigned* a, unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned smemAddr(const void* p) {
  unsigned r;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
  return r;
}

// B fragments of the n-tiles [n0, n0+8) (b[0], b[1]) and [n0+8, n0+16) (b[2], b[3]) for k rows [k0, k0+16), from a
// tile stored n-major with k contiguous (M[n*SR + k]): one ldmatrix.x4.
__device__ __forceinline__ void ldB2(const bf16_t* M, int n0, int k0, unsigned b[4]) {
  int lane = threadIdx.x & 31, j = lane >> 3, r = lane & 7;
  unsigned a = smemAddr(M + (n0 + (j >> 1) * 8 + r) * SR + k0 + (j & 1) * 8);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(a));
}

// The same fragments from a tile stored k-major with n contiguous (M[k*SR + n]), through the transposing load.
__device__ __forceinline__ void ldB2t(const bf16_t* M, int n0, int k0, unsigned b[4]) {
  int lane = threadIdx.x & 31, j = lane >> 3, r = lane & 7;
  unsigned a = smemAddr(M + (k0 + (j & 1) * 8 + r) * SR + n0 + (j >> 1) * 8);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(a));
}

// A fragments (16 tokens x HDP dims) straight from bf16 global memory; out-of-range tokens and padding dims read 0.
__device__ __forceinline__ unsigned at2(const bf16_t* src, long long base, int C, int r, int c, int T) {
  if (r >= T || c >= HD) return 0u;
  const bf16_t* p = src + base + (long long)r * C + c;
  if (HD % 2 == 0 && (C & 1) == 0) return *(const unsigned*)p;  // c even and c + 1 < HD: one aligned word
  unsigned hi = c + 1 < HD ? p[1] : 0u;
  return p[0] | (hi << 16);
}

__device__ __forceinline__ void ldA(unsigned a[HDP / 16][4], const bf16_t* src, long long base, int C, int tok0, int T) {
  int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  int rA = tok0 + g, rB = rA + 8;
#pragma unroll
  for (int ks = 0; ks < HDP / 16; ks++) {
    int c = ks * 16 + 2 * t;
    a[ks][0] = at2(src, base, C, rA, c, T);
    a[ks][1] = at2(src, base, C, rB, c, T);
    a[ks][2] = at2(src, base, C, rA, c + 8, T);
    a[ks][3] = at2(src, base, C, rB, c + 8, T);
  }
}

// A fragment of k step kk from accumulators s[nt][4] of 8-column tiles.
__device__ __forceinline__ void accToA(unsigned a[4], const float s[][4], int kk) {
  a[0] = pack2(s[2 * kk][0], s[2 * kk][1]);
  a[1] = pack2(s[2 * kk][2], s[2 * kk][3]);
  a[2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  a[3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cpWaitAll() { asm volatile("cp.async.wait_group 0;\n" ::); }
__device__ __forceinline__ void cpWaitButOne() { asm volatile("cp.async.wait_group 1;\n" ::); }

// A 64-token tile of one head (bf16 in global memory) into shared memory, token-major (dst[token*SR + dim]),
// zeros outside [0, T) x [0, HD). Where rows are 16-byte aligned (HD and C multiples of 8): cp.async, 16 bytes a
// thread (zero-filled outside), complete at the caller's cp.async.wait_group; else plain loads and stores.
__device__ __forceinline__ void loadTile(bf16_t* dst, const bf16_t* src, long long base, int C, int tok0, int T) {
  if (HD % 8 == 0 && (C & 7) == 0) {
    for (int idx = threadIdx.x; idx < TILE * (HDP / 8); idx += blockDim.x) {
      int r = idx / (HDP / 8), c8 = (idx - r * (HDP / 8)) * 8, tok = tok0 + r;
      bool ok = tok < T && c8 < HD;
      const bf16_t* g = ok ? src + base + (long long)tok * C + c8 : src;
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(dst + r * SR + c8)), "l"(g), "r"(ok ? 16 : 0));
    }
    return;
  }
  for (int idx = threadIdx.x; idx < TILE * HDP; idx += blockDim.x) {
    int r = idx / HDP, c = idx - r * HDP, tok = tok0 + r;
    dst[r * SR + c] = (tok < T && c < HD) ? src[base + (long long)tok * C + c] : (bf16_t)0;
  }
}

__device__ __forceinline__ float quadMax(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quadSum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

__device__ __forceinline__ unsigned orderedBits(float f) {
  unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// s (16 rows x 64 columns of the warp, accumulators of 8 n-tiles) += A (16 x HDP, registers) . M^T, M a token-major
// tile (64 x HDP) in shared memory.
__device__ __forceinline__ void mmaRowsByTile(float s[8][4], const unsigned a[HDP / 16][4], const bf16_t* M) {
#pragma unroll
  for (int ks = 0; ks < HDP / 16; ks++) {
#pragma unroll
    for (int np = 0; np < 4; np++) {
      unsigned b[4];
      ldB2(M, np * 16, ks * 16, b);
      mma(s[2 * np], a[ks], b[0], b[1]);
      mma(s[2 * np + 1], a[ks], b[2], b[3]);
    }
  }
}

// acc (16 x HDP, accumulators of HDP/8 n-tiles) += P (16 x 64, accumulators s) . M, M a token-major tile (64 x HDP).
__device__ __forceinline__ void mmaAccByTile(float acc[HDP / 8][4], const float s[8][4], const bf16_t* M) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    unsigned pa[4];
    accToA(pa, s, kk);
#pragma unroll
    for (int dp = 0; dp < HDP / 16; dp++) {
      unsigned b[4];
      ldB2t(M, dp * 16, kk * 16, b);
      mma(acc[2 * dp], pa, b[0], b[1]);
      mma(acc[2 * dp + 1], pa, b[2], b[3]);
    }
  }
}

// The same over half a tile: s (16 rows x the 32 columns [n0, n0+32), 4 n-tiles) += A . M^T over M's rows n0..n0+31.
__device__ __forceinline__ void mmaRowsByHalf(float s[4][4], const unsigned a[HDP / 16][4], const bf16_t* M, int n0) {
#pragma unroll
  for (int ks = 0; ks < HDP / 16; ks++) {
#pragma unroll
    for (int np = 0; np < 2; np++) {
      unsigned b[4];
      ldB2(M, n0 + np * 16, ks * 16, b);
      mma(s[2 * np], a[ks], b[0], b[1]);
      mma(s[2 * np + 1], a[ks], b[2], b[3]);
    }
  }
}

// acc (16 x HDP) += P (16 x 32, accumulators s of 4 n-tiles) . M's rows [k0, k0+32) (token-major, 32 x HDP).
__device__ __forceinline__ void mmaAccByHalf(float acc[HDP / 8][4], const float s[4][4], const bf16_t* M, int k0) {
#pragma unroll
  for (int kk = 0; kk < 2; kk++) {
    unsigned pa[4];
    accToA(pa, s, kk);
#pragma unroll
    for (int dp = 0; dp < HDP / 16; dp++) {
      unsigned b[4];
      ldB2t(M, dp * 16, k0 + kk * 16, b);
      mma(acc[2 * dp], pa, b[0], b[1]);
      mma(acc[2 * dp + 1], pa, b[2], b[3]);
    }
  }
}

// grid (ceil(T/64), B*H), block 128, dynamic shared memory 2 stages * (K, V) * 64*SR * 2 bytes.
extern "C" __global__ void k_attn_fwd(void* out, int obf, float* lse, unsigned* maxbits, const bf16_t* q,
    const bf16_t* k, const bf16_t* v, int T, int H, int C, float scale) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* buf = (bf16_t*)smem;  // stage s: K at buf + 2*s*TSZ, V right after
  __shared__ float wmax[4];
  int qb = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh - b * H;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  long long base = (long long)b * T * C + (long long)h * HD;
  int q0 = qb * TILE + warp * 16, rA = q0 + g, rB = rA + 8;
  int lrA = warp * 16 + g, lrB = lrA + 8;  // rows within the tile
  float sl = scale * LOG2E;
  loadTile(buf, k, base, C, 0, T);
  loadTile(buf + TSZ, v, base, C, 0, T);
  cpCommit();
  unsigned qa[HDP / 16][4];
  ldA(qa, q, base, C, q0, T);
  float o[HDP / 8][4];
#pragma unroll
  for (int i = 0; i < HDP / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float mA = -K_INF, mB = -K_INF, lA = 0.f, lB = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    if (kt < qb) {
      bf16_t* nb = buf + ((kt + 1) & 1) * 2 * TSZ;
      loadTile(nb, k, base, C, (kt + 1) * TILE, T);
      loadTile(nb + TSZ, v, base, C, (kt + 1) * TILE, T);
      cpCommit();
      cpWaitButOne();
    } else {
      cpWaitAll();
    }
    __syncthreads();
    const bf16_t* Ks = buf + (kt & 1) * 2 * TSZ;
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    mmaRowsByTile(s, qa, Ks);
    float tmA = -K_INF, tmB = -K_INF;
    bool diag = kt == qb;
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int key = nt * 8 + 2 * t + (e & 1);
        float x = s[nt][e] * sl;
        if (diag && key > (e < 2 ? lrA : lrB)) x = -K_INF;
        s[nt][e] = x;
        if (e < 2) tmA = fmaxf(tmA, x); else tmB = fmaxf(tmB, x);
      }
    }
    float nmA = fmaxf(mA, quadMax(tmA)), nmB = fmaxf(mB, quadMax(tmB));
    float sfA = nmA == -K_INF ? 0.f : nmA, sfB = nmB == -K_INF ? 0.f : nmB;
    float cA = ex2(mA - sfA), cB = ex2(mB - sfB);
    mA = nmA;
    mB = nmB;
    lA *= cA;
    lB *= cB;
#pragma unroll
    for (int dt = 0; dt < HDP / 8; dt++) {
      o[dt][0] *= cA; o[dt][1] *= cA; o[dt][2] *= cB; o[dt][3] *= cB;
    }
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      s[nt][0] = ex2(s[nt][0] - sfA); s[nt][1] = ex2(s[nt][1] - sfA);
      s[nt][2] = ex2(s[nt][2] - sfB); s[nt][3] = ex2(s[nt][3] - sfB);
      lA += s[nt][0] + s[nt][1];
      lB += s[nt][2] + s[nt][3];
    }
    mmaAccByTile(o, s, Ks + TSZ);
    __syncthreads();  // the stage just read is the next iteration's load target
  }
  lA = quadSum(lA);
  lB = quadSum(lB);
  float iA = 1.f / lA, iB = 1.f / lB;
#pragma unroll
  for (int dt = 0; dt < HDP / 8; dt++) {
    int c = dt * 8 + 2 * t;
    if (c < HD) {
      if (rA < T) st2(out, obf, base + (long long)rA * C + c, o[dt][0] * iA, o[dt][1] * iA, c + 1 < HD);
      if (rB < T) st2(out, obf, base + (long long)rB * C + c, o[dt][2] * iB, o[dt][3] * iB, c + 1 < HD);
    }
  }
  if (t == 0) {
    if (rA < T) lse[(long long)bh * T + rA] = (mA + log2f(lA)) * LN2;
    if (rB < T) lse[(long long)bh * T + rB] = (mB + log2f(lB)) * LN2;
  }
  // the final row maxima are the rows' largest scaled logits (times log2 e): no work per element
  float raw = fmaxf(rA < T ? mA : -K_INF, rB < T ? mB : -K_INF) * LN2;
  for (int off = 16; off > 0; off >>= 1) raw = fmaxf(raw, __shfl_xor_sync(0xffffffffu, raw, off));
  if (lane == 0) wmax[warp] = raw;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = fmaxf(fmaxf(wmax[0], wmax[1]), fmaxf(wmax[2], wmax[3]));
    if (m > -K_INF) atomicMax(maxbits + h, orderedBits(m));
  }
}

// D[(b*H+h)*T + t] = sum_d dout * out over head h of token (b,t), from their bf16 forms (what the tensor cores
// read); fp32 sums. One thread per (token, head), 16-byte loads where heads are 8-element aligned.
__device__ __forceinline__ float dotbf2(unsigned a, unsigned b) {
  return __uint_as_float(a << 16) * __uint_as_float(b << 16) + __uint_as_float(a & 0xffff0000u) * __uint_as_float(b & 0xffff0000u);
}

extern "C" __global__ void k_attn_D(float* D, const bf16_t* dout, const bf16_t* out, int T, int H, int C, int BT) {
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (long long)BT * H) return;
  int tok = (int)(idx / H), h = (int)(idx - (long long)tok * H), b = tok / T, tt = tok - b * T;
  const bf16_t* g = dout + (long long)tok * C + h * HD;
  const bf16_t* o = out + (long long)tok * C + h * HD;
  float s = 0.f;
  if (HD % 8 == 0 && (C & 7) == 0) {
#pragma unroll
    for (int d = 0; d < HD; d += 8) {
      uint4 gv = *(const uint4*)(g + d), ov = *(const uint4*)(o + d);
      s += dotbf2(gv.x, ov.x) + dotbf2(gv.y, ov.y) + dotbf2(gv.z, ov.z) + dotbf2(gv.w, ov.w);
    }
  } else {
    for (int d = 0; d < HD; d++) s += __uint_as_float(((unsigned)g[d]) << 16) * __uint_as_float(((unsigned)o[d]) << 16);
  }
  D[((long long)b * H + h) * T + tt] = s;
}

// dQ: grid (ceil(T/64), B*H), block 128, dynamic shared memory 2 stages * (K, V) * 64*SR * 2 bytes.
extern "C" __global__ void k_attn_bwd_dq(void* dq, int obf, const bf16_t* q, const bf16_t* k, const bf16_t* v,
    const bf16_t* dout, const float* lse, const float* D, int T, int H, int C, float scale) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* buf = (bf16_t*)smem;  // stage s: K at buf + 2*s*TSZ, V right after
  int qb = gridDim.x - 1 - blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh - b * H;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  long long base = (long long)b * T * C + (long long)h * HD;
  int q0 = qb * TILE + warp * 16, rA = q0 + g, rB = rA + 8;
  int lrA = warp * 16 + g, lrB = lrA + 8;
  float sl = scale * LOG2E;
  loadTile(buf, k, base, C, 0, T);
  loadTile(buf + TSZ, v, base, C, 0, T);
  cpCommit();
  unsigned qa[HDP / 16][4], da[HDP / 16][4];
  ldA(qa, q, base, C, q0, T);
  ldA(da, dout, base, C, q0, T);
  // rows past T: lse +inf makes their probabilities 0
  float lseA = rA < T ? lse[(long long)bh * T + rA] * LOG2E : K_INF, lseB = rB < T ? lse[(long long)bh * T + rB] * LOG2E : K_INF;
  float DA = rA < T ? D[(long long)bh * T + rA] : 0.f, DB = rB < T ? D[(long long)bh * T + rB] : 0.f;
  float acc[HDP / 8][4];
#pragma unroll
  for (int i = 0; i < HDP / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  for (int kt = 0; kt <= qb; kt++) {
    if (kt < qb) {
      bf16_t* nb = buf + ((kt + 1) & 1) * 2 * TSZ;
      loadTile(nb, k, base, C, (kt + 1) * TILE, T);
      loadTile(nb + TSZ, v, base, C, (kt + 1) * TILE, T);
      cpCommit();
      cpWaitButOne();
    } else {
      cpWaitAll();
    }
    __syncthreads();
    const bf16_t* Ks = buf + (kt & 1) * 2 * TSZ;
    bool diag = kt == qb;
    float s[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.f;
    mmaRowsByTile(s, qa, Ks);
    mmaRowsByTile(dp, da, Ks + TSZ);
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int key = nt * 8 + 2 * t + (e & 1);
        float p = ex2(s[nt][e] * sl - (e < 2 ? lseA : lseB));
        if (diag && key > (e < 2 ? lrA : lrB)) p = 0.f;
        s[nt][e] = p * (dp[nt][e] - (e < 2 ? DA : DB));
      }
    }
    mmaAccByTile(acc, s, Ks);
    __syncthreads();
  }
#pragma unroll
  for (int dt = 0; dt < HDP / 8; dt++) {
    int c = dt * 8 + 2 * t;
    if (c < HD) {
      if (rA < T) st2(dq, obf, base + (long long)rA * C + c, acc[dt][0] * scale, acc[dt][1] * scale, c + 1 < HD);
      if (rB < T) st2(dq, obf, base + (long long)rB * C + c, acc[dt][2] * scale, acc[dt][3] * scale, c + 1 < HD);
    }
  }
}

// dK, dV: grid (ceil(T/64), B*H), block 128, dynamic shared memory 2 stages * ((Q, dout) * 64*SR * 2 + (lse, D) * 64 * 4)
// bytes. Each warp owns 16 keys and works on the transposed scores S^T = K Q^T.
extern "C" __global__ void DKDV_BOUNDS k_attn_bwd_dkdv(void* dk, void* dv, int obf, const bf16_t* q, const bf16_t* k,
    const bf16_t* v, const bf16_t* dout, const float* lse, const float* D, int T, int H, int C, float scale) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* buf = (bf16_t*)smem;             // stage s: Q at buf + 2*s*TSZ, dout right after
  float* rowS = (float*)(buf + 4 * TSZ);   // stage s: lse at rowS + 2*s*TILE, D right after
  int kb = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh - b * H;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  long long base = (long long)b * T * C + (long long)h * HD;
  int k0 = kb * TILE + warp * 16, kA = k0 + g, kB = kA + 8;
  int lkA = warp * 16 + g, lkB = lkA + 8;
  float sl = scale * LOG2E;
  int nqt = (T + TILE - 1) / TILE;
  // stage loader: the query tile qt's Q and dout (cp.async) and its lse (times log2 e; +inf past T) and D (plain)
  auto load = [&](int qt, int st) {
    loadTile(buf + 2 * st * TSZ, q, base, C, qt * TILE, T);
    loadTile(buf + (2 * st + 1) * TSZ, dout, base, C, qt * TILE, T);
    cpCommit();
    float* ls = rowS + 2 * st * TILE;
    for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
      int tok = qt * TILE + i;
      ls[i] = tok < T ? lse[(long long)bh * T + tok] * LOG2E : K_INF;
      ls[TILE + i] = tok < T ? D[(long long)bh * T + tok] : 0.f;
    }
  };
  load(kb, 0);
  unsigned ka[HDP / 16][4], va[HDP / 16][4];
  ldA(ka, k, base, C, k0, T);
  ldA(va, v, base, C, k0, T);
  float dka[HDP / 8][4], dva[HDP / 8][4];
#pragma unroll
  for (int i = 0; i < HDP / 8; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) dka[i][e] = dva[i][e] = 0.f;
  for (int qt = kb; qt < nqt; qt++) {
    int st = (qt - kb) & 1;
    if (qt + 1 < nqt) {
      load(qt + 1, st ^ 1);
      cpWaitButOne();
    } else {
      cpWaitAll();
    }
    __syncthreads();
    const bf16_t* Qs = buf + 2 * st * TSZ;
    const bf16_t* Os = Qs + TSZ;
    const float* lseS = rowS + 2 * st * TILE;
    const float* DS = lseS + TILE;
    bool diag = qt == kb;
    // s becomes P^T, dp becomes dS^T (without the 1/sqrt(d) factor, applied at the end)
#if DKDV_HALVES
#pragma unroll 1
    for (int hf = 0; hf < 2; hf++) {
      if (diag && hf * 32 + 31 < warp * 16) continue;  // every query of this half lies before every key of the warp
      float s[4][4], dp[4][4];
#pragma unroll
      for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.f;
      mmaRowsByHalf(s, ka, Qs, hf * 32);
      mmaRowsByHalf(dp, va, Os, hf * 32);
#pragma unroll
      for (int nt = 0; nt < 4; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          int qi = hf * 32 + nt * 8 + 2 * t + (e & 1);
          float p = ex2(s[nt][e] * sl - lseS[qi]);
          if (diag && qi < (e < 2 ? lkA : lkB)) p = 0.f;
          s[nt][e] = p;
          dp[nt][e] = p * (dp[nt][e] - DS[qi]);
        }
      }
      mmaAccByHalf(dva, s, Os, hf * 32);
      mmaAccByHalf(dka, dp, Qs, hf * 32);
    }
#else
    float s[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.f;
    mmaRowsByTile(s, ka, Qs);
    mmaRowsByTile(dp, va, Os);
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int qi = nt * 8 + 2 * t + (e & 1);
        float p = ex2(s[nt][e] * sl - lseS[qi]);
        if (diag && qi < (e < 2 ? lkA : lkB)) p = 0.f;
        s[nt][e] = p;
        dp[nt][e] = p * (dp[nt][e] - DS[qi]);
      }
    }
    mmaAccByTile(dva, s, Os);
    mmaAccByTile(dka, dp, Qs);
#endif
    __syncthreads();
  }
#pragma unroll
  for (int dt = 0; dt < HDP / 8; dt++) {
    int c = dt * 8 + 2 * t;
    if (c < HD) {
      bool two = c + 1 < HD;
      if (kA < T) {
        st2(dk, obf, base + (long long)kA * C + c, dka[dt][0] * scale, dka[dt][1] * scale, two);
        st2(dv, obf, base + (long long)kA * C + c, dva[dt][0], dva[dt][1], two);
      }
      if (kB < T) {
        st2(dk, obf, base + (long long)kB * C + c, dka[dt][2] * scale, dka[dt][3] * scale, two);
        st2(dv, obf, base + (long long)kB * C + c, dva[dt][2], dva[dt][3], two);
      }
    }
  }
}
