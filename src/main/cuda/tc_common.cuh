// Shared helpers of the GEMM and tensor-core kernels (modeldiff_kernels.cu, modeldiff_wgmma.cu, modeldiff_moe.cu):
// cp.async, ldmatrix, mma.sync, the swizzled shared-memory tile layout, and the GEMM main loops the dense and the
// grouped-expert kernels share.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

// Rounding modes of the `bf` kernel argument: 0 = fp32 (nothing rounded), 1 = bfloat16, 2 = float16 (IEEE half,
// round to nearest even, overflow to inf as PyTorch's .to(torch.float16)). The 16-bit operand copies and weights are
// of the mode's type; the element-type templates below take __nv_bfloat16 or __half.
__device__ __forceinline__ float round_dt(float x, int mode) {
    if (mode == 1) return __bfloat162float(__float2bfloat16_rn(x));
    if (mode == 2) return __half2float(__float2half_rn(x));
    return x;
}
// The 16-bit copy of a value (exact when it was rounded in that mode): half bits in mode 2, else bfloat16 bits.
__device__ __forceinline__ void store16(__nv_bfloat16* p, float y, int mode) {
    if (mode == 2) *(__half*)p = __float2half_rn(y);
    else *p = __float2bfloat16_rn(y);
}
template <typename T> struct Elem;
template <> struct Elem<__nv_bfloat16> {
    static constexpr int MODE = 1;
    static __device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float x) { return __float2bfloat16_rn(x); }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *(unsigned*)&v;
    }
};
template <> struct Elem<__half> {
    static constexpr int MODE = 2;
    static __device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half from_f(float x) { return __float2half_rn(x); }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        __half2 v = __floats2half2_rn(lo, hi);
        return *(unsigned*)&v;
    }
};

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// 16-byte global -> shared copy; pred false writes 16 zero bytes (src-size 0, nothing is read).
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool pred) {
    int n = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
// D += A·B, m16n8k16, bf16 operands, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float* d, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// The same with fp16 operands.
__device__ __forceinline__ void mma_f16(float* d, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <typename T>
__device__ __forceinline__ void mma16(float* d, const unsigned* a, unsigned b0, unsigned b1) {
    if constexpr (Elem<T>::MODE == 2) mma_f16(d, a, b0, b1);
    else mma_bf16(d, a, b0, b1);
}
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) { return Elem<__nv_bfloat16>::pack(lo, hi); }

// Tiles of 64 bf16 (128 bytes) per row: 16-byte chunk c of row r lives at chunk c ^ (r & 7) (the hardware's 128-byte
// swizzle when the tile starts on a 1024-byte boundary): ldmatrix over 8 rows and wgmma reads are bank-conflict free.
__device__ __forceinline__ unsigned swz128(int r, int c) { return (unsigned)(r * 128 + ((c ^ (r & 7)) << 4)); }

// ROWS × 64 tile of a row-major 16-bit (bf16 / fp16) matrix with row stride ld (ld % 8 == 0) from (row0, k0); rows
// ≥ rowsMax and columns ≥ kMax (kMax % 8 == 0 or the end of the rows) are zero-filled.
template <int ROWS, int THREADS, typename T>
__device__ __forceinline__ void load_tile64(unsigned sbase, const T* G, int row0, int rowsMax, int k0, int kMax, int ld, int tid) {
#pragma unroll
    for (int i = 0; i < ROWS * 8 / THREADS; i++) {
        int id = tid + i * THREADS;
        int r = id >> 3, c = id & 7;
        int gr = row0 + r, gk = k0 + c * 8;
        bool ok = gr < rowsMax && gk < kMax;
        const T* src = ok ? G + (long long)gr * ld + gk : G;
        cp_async16(sbase + swz128(r, c), src, ok);
    }
}

// The FFMA main loop shared by gemm_f32 (modeldiff_kernels.cu) and moe_gemm_ffma (modeldiff_moe.cu): a 64×64 tile of
// A[M, K] · W[N, K]ᵀ from (m0, n0), 16-deep K steps through shared memory (As, Ws: [16][64 + 4]), 256 threads of 4×4
// outputs (rows tid / 16 + 16i, columns tid % 16 + 16j), zero beyond M, N and K; W fp32 or bf16 (read as fp32).
__device__ __forceinline__ float ffma_ld(const float* p) { return *p; }
__device__ __forceinline__ float ffma_ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
template <typename WT>
__device__ __forceinline__ void ffma_tile64(float (&acc)[4][4], float (&As)[16][68], float (&Ws)[16][68], const float* A,
                                            const WT* W, int m0, int M, int n0, int N, int K, int tid) {
    int tr = tid / 16, tc = tid % 16;
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int e = tid; e < 64 * 16; e += 256) {
            int r = e / 16, kk = e % 16;
            int gm = m0 + r, gk = k0 + kk;
            As[kk][r] = (gm < M && gk < K) ? A[(long long)gm * K + gk] : 0.f;
            int gn = n0 + r;
            Ws[kk][r] = (gn < N && gk < K) ? ffma_ld(W + (long long)gn * K + gk) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < 16; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) { a[i] = As[kk][tr + 16 * i]; b[i] = Ws[kk][tc + 16 * i]; }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
}

// The mma.sync main loop shared by gemm_mma (modeldiff_kernels.cu) and moe_gemm_mma (modeldiff_moe.cu): 8 warps as
// 2 (M) × 4 (N) of 64×64 over a BM×BN block tile; acc += A[m0 + r, k] · W[n0 + c, k] over KT 64-wide K tiles
// (rows ≥ rowsA / rowsW and columns ≥ kMax zero-filled, row stride ld), ST-stage cp.async pipeline in the
// 1024-byte-aligned shared memory at sb; mma.sync m16n8k16 (element type T) fed by ldmatrix from 128-byte-swizzled tiles.
template <typename T, int BM, int BN, int ST>
__device__ __forceinline__ void mma_mainloop(float (&acc)[4][8][4], unsigned sb, const T* A, const T* W, int m0, int rowsA,
                                             int n0, int rowsW, int KT, int kMax, int ld, int tid) {
    const unsigned STAGE = (BM + BN) * 128;
    int warp = tid >> 5, lane = tid & 31;
    int wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;
#pragma unroll
    for (int s = 0; s < ST - 1; s++) {
        if (s < KT) {
            load_tile64<BM, 256>(sb + s * STAGE, A, m0, rowsA, s * 64, kMax, ld, tid);
            load_tile64<BN, 256>(sb + s * STAGE + BM * 128, W, n0, rowsW, s * 64, kMax, ld, tid);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        cp_async_wait<ST - 2>();
        __syncthreads();
        int nk = kt + ST - 1;
        if (nk < KT) {
            unsigned st = sb + (nk % ST) * STAGE;
            load_tile64<BM, 256>(st, A, m0, rowsA, nk * 64, kMax, ld, tid);
            load_tile64<BN, 256>(st + BM * 128, W, n0, rowsW, nk * 64, kMax, ld, tid);
        }
        cp_async_commit();
        unsigned As = sb + (kt % ST) * STAGE, Bs = As + BM * 128;
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            unsigned af[4][4], bfr[8][2];
#pragma unroll
            for (int i = 0; i < 4; i++)
                ldsm_x4(As + swz128(wm * 64 + i * 16 + (lane & 15), kk * 2 + (lane >> 4)), af[i][0], af[i][1], af[i][2], af[i][3]);
#pragma unroll
            for (int j = 0; j < 4; j++)
                ldsm_x4(Bs + swz128(wn * 64 + j * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)),
                        bfr[2 * j][0], bfr[2 * j][1], bfr[2 * j + 1][0], bfr[2 * j + 1][1]);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) mma16<T>(acc[i][j], af[i], bfr[j][0], bfr[j][1]);
        }
    }
    cp_async_wait<0>();
}

__device__ __forceinline__ float round_bf(float x, int bf) { return round_dt(x, bf); }
// GEMM epilogue for two adjacent columns (col, col + 1) of one row: + bias, rounded in mode MODE (0 none, 1 bf16,
// 2 fp16). MODE is a template argument: a run-time branch per element made the mma kernel's accumulators spill.
// res (may be null; the fused residual, -Dmodeldiff.cuda.fuseResidual): res = R(res + C) after C is stored, as the
// residual_add kernel would do next.
template <int MODE>
__device__ __forceinline__ void store2(float* C, const float* bias, int M, int N, int row, int col, float v0, float v1,
                                       float* res = nullptr) {
    if (row >= M) return;
    long long at = (long long)row * N + col;
    float* p = C + at;
    if (col + 1 < N) {
        if (bias) { v0 += bias[col]; v1 += bias[col + 1]; }
        v0 = round_dt(v0, MODE);
        v1 = round_dt(v1, MODE);
        if ((N & 1) == 0) *(float2*)p = make_float2(v0, v1);
        else { p[0] = v0; p[1] = v1; }
        if (res) {
            res[at] = round_dt(res[at] + v0, MODE);
            res[at + 1] = round_dt(res[at + 1] + v1, MODE);
        }
    } else if (col < N) {
        if (bias) v0 += bias[col];
        p[0] = round_dt(v0, MODE);
        if (res) res[at] = round_dt(res[at] + p[0], MODE);
    }
}
