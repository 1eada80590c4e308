// modeldiff's own CUDA kernels for the cuda:fp32 and cuda:bf16 forward passes (docs/cuda.md).
// Compiled to PTX (-arch=compute_90) by src/main/cuda/build-ptx.sh during the Maven build and loaded by JCuda's
// driver API (cuModuleLoadData). Every kernel is extern "C" so its PTX name is its C name.
//
// Layout: activations are row-major [rows, width] float buffers. In bf16 mode (bf = 1) every op rounds its fp32
// result once to bfloat16 (round to nearest even) where HF's eager path rounds (forward/lowp/RoundingPoint), so the
// buffers hold bf16-representable values; weights are stored as bf16 (2 bytes) and GEMMs run on tensor cores with
// fp32 accumulation. In fp32 mode (bf = 0) nothing is rounded beyond fp32 and GEMMs use plain FFMA. bf = 2 is fp16
// mode (cuda:fp16): the same rounding points, to IEEE half; weights and operand copies are __half (kernels *_f16).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <math.h>
#include "tc_common.cuh"

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float R(float x, int bf) { return round_dt(x, bf); }
__device__ __forceinline__ float ld(const float* p) { return *p; }
// Llama 4's chunked attention: the first key query t may see is the start of its chunk of attention_chunk_size
// positions (absolute positions pos0 + t, as HF's chunked mask); chunk <= 0: no chunks.
__device__ __forceinline__ int chunk_first(int t, int chunk, int pos0) {
    if (chunk <= 0) return 0;
    long long p = (long long)pos0 + t;
    return (int)max(0LL, p - p % chunk - pos0);
}
__device__ __forceinline__ float ld(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float ld(const __half* p) { return __half2float(*p); }

// ---------------------------------------------------------------- embedding
// out[t, j] = table[ids[t], j] (* scale, rounded, when applyScale)
template <typename W>
__device__ void embed_impl(float* out, const W* table, const int* ids, int T, int H, float scale, int applyScale, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * H) return;
    int t = (int)(i / H), j = (int)(i % H);
    float v = ld(table + (long long)ids[t] * H + j);
    out[i] = applyScale ? R(v * scale, bf) : v;
}
extern "C" __global__ void embed_f32(float* out, const float* table, const int* ids, int T, int H, float scale, int applyScale, int bf) {
    embed_impl(out, table, ids, T, H, scale, applyScale, bf);
}
extern "C" __global__ void embed_bf16(float* out, const bf16* table, const int* ids, int T, int H, float scale, int applyScale, int bf) {
    embed_impl(out, table, ids, T, H, scale, applyScale, bf);
}
extern "C" __global__ void embed_f16(float* out, const __half* table, const int* ids, int T, int H, float scale, int applyScale, int bf) {
    embed_impl(out, table, ids, T, H, scale, applyScale, bf);
}
// GPT-2 learned positions: x[t, j] = R(x[t, j] + wpe[pos0 + t, j])
extern "C" __global__ void add_positions(float* x, const float* wpe, int T, int H, int pos0, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * H) return;
    int t = (int)(i / H), j = (int)(i % H);
    x[i] = R(x[i] + wpe[(long long)(pos0 + t) * H + j], bf);
}

// ---------------------------------------------------------------- norms
__device__ float block_sum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = 0.f;
    for (int w = 0; w < nw; w++) s += red[w];
    return s;
}

// One block per row. RMSNorm (centered = 0) or LayerNorm (centered = 1); unit: weight is stored as offset from 1.
// weightThenCast (Gemma): R(x̂·(1+w)); else (Llama): R(w'·R(x̂)) with w' = R(1+w) for a unit-offset weight.
// LayerNorm: R((x−mean)·rstd·γ + b), γ = R(1+w) for LayerNorm1P.
// outB (may be null): the same values as bf16 (the next GEMM's A operand; exact in bf16 mode).
extern "C" __global__ void norm_rows(float* out, bf16* outB, const float* x, const float* w, const float* b, int rows, int dim,
                                     float eps, int centered, int unit, int weightThenCast, int bf) {
    __shared__ float red[32];
    int row = blockIdx.x;
    if (row >= rows) return;
    const float* xr = x + (long long)row * dim;
    float* yr = out + (long long)row * dim;
    float mean = 0.f;
    if (centered) {
        float s = 0.f;
        for (int j = threadIdx.x; j < dim; j += blockDim.x) s += xr[j];
        mean = block_sum(s, red) / dim;
    }
    float sq = 0.f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float d = xr[j] - mean;
        sq += d * d;
    }
    float var = block_sum(sq, red) / dim;
    float rs = 1.0f / sqrtf(var + eps);
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float y;
        if (centered) {
            float g = unit ? R(w[j] + 1.f, bf) : w[j];
            y = ((xr[j] - mean) * rs) * g;
            if (b) y += b[j];
            y = R(y, bf);
        } else {
            float xh = xr[j] * rs;
            if (weightThenCast) y = R(xh * (unit ? 1.f + w[j] : w[j]), bf);
            else y = R((unit ? R(1.f + w[j], bf) : w[j]) * R(xh, bf), bf);
        }
        yr[j] = y;
        if (outB) store16(outB + (long long)row * dim + j, y, bf);
    }
}

// ---------------------------------------------------------------- GEMM, fp32 (FFMA)
// C[M, N] = R(A[M, K] · W[N, K]ᵀ + bias[N]); 64×64 tile, 16-deep K step, 256 threads, 4×4 outputs each.
#define F_BM 64
#define F_BN 64
#define F_BK 16
extern "C" __global__ void __launch_bounds__(256) gemm_f32(float* C, const float* A, const float* W, const float* bias,
                                                           int M, int N, int K, int bf) {
    __shared__ float As[F_BK][F_BM + 4];
    __shared__ float Ws[F_BK][F_BN + 4];
    int tid = threadIdx.x;
    int m0 = blockIdx.y * F_BM, n0 = blockIdx.x * F_BN;
    int tr = tid / 16, tc = tid % 16;
    float acc[4][4] = {};
    ffma_tile64(acc, As, Ws, A, W, m0, M, n0, N, K, tid);
    for (int i = 0; i < 4; i++) {
        int gm = m0 + tr + 16 * i;
        if (gm >= M) continue;
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tc + 16 * j;
            if (gn >= N) continue;
            float v = acc[i][j];
            if (bias) v += bias[gn];
            C[(long long)gm * N + gn] = R(v, bf);
        }
    }
}

// ---------------------------------------------------------------- GEMM, bf16 tensor cores (wmma, fp32 accumulate)
// C[M, N] = R(A[M, K] · W[N, K]ᵀ + bias[N]); A is a float buffer of bf16 values (converted exactly on load), W bf16.
// 128×128 block tile, 32-deep K step, 256 threads = 8 warps as 2 (M) × 4 (N), each warp 64×32 = 4×2 fragments.
#define G_BM 128
#define G_BN 128
#define G_BK 32
#define G_LD (G_BK + 8)
template <typename E>
__device__ __forceinline__ void gemm_wmma_impl(float* C, const float* A, const E* W, const float* bias, int M, int N, int K, int bf) {
    __shared__ __align__(128) E As[G_BM * G_LD];
    __shared__ __align__(128) E Bs[G_BN * G_LD];
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int wm = warp >> 2, wn = warp & 3;
    int m0 = blockIdx.y * G_BM, n0 = blockIdx.x * G_BN;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
    bool kvec = (K % 8) == 0;
    for (int k0 = 0; k0 < K; k0 += G_BK) {
        // A: 128 rows × 32 floats; a warp reads one row (128 coalesced bytes) per step, 16 steps per thread.
#pragma unroll 4
        for (int e = tid; e < G_BM * G_BK; e += 256) {
            int r = e >> 5, c = e & 31;
            int gm = m0 + r, gk = k0 + c;
            float v = (gm < M && gk < K) ? A[(long long)gm * K + gk] : 0.f;
            As[r * G_LD + c] = Elem<E>::from_f(v);
        }
        // W: 128 rows × 32 bf16 = 4 × 16-byte chunks per row; 512 chunks, 2 per thread.
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int chunk = tid + 256 * e;
            int r = chunk >> 2, c0 = (chunk & 3) * 8;
            int gn = n0 + r, gk = k0 + c0;
            E* dst = Bs + r * G_LD + c0;
            if (kvec && gn < N && gk + 8 <= K) {
                *(uint4*)dst = *(const uint4*)(W + (long long)gn * K + gk);
            } else {
#pragma unroll
                for (int c = 0; c < 8; c++)
                    dst[c] = (gn < N && gk + c < K) ? W[(long long)gn * K + gk + c] : Elem<E>::from_f(0.f);
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < G_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa[4];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 4; i++) wmma::load_matrix_sync(fa[i], As + (wm * 64 + i * 16) * G_LD + kk, G_LD);
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], Bs + (wn * 32 + j * 16) * G_LD + kk, G_LD);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
    // Epilogue through shared memory (reusing As/Bs space is too small; use a per-warp 16×16 staging tile).
    __shared__ __align__(128) float stage[8][16 * 16];
    float* st = stage[warp];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 256; e += 32) {
                int r = e >> 4, c = e & 15;
                int gm = m0 + wm * 64 + i * 16 + r, gn = n0 + wn * 32 + j * 16 + c;
                if (gm < M && gn < N) {
                    float v = st[e];
                    if (bias) v += bias[gn];
                    C[(long long)gm * N + gn] = R(v, bf);
                }
            }
            __syncwarp();
        }
}
extern "C" __global__ void __launch_bounds__(256) gemm_bf16(float* C, const float* A, const bf16* W, const float* bias,
                                                            int M, int N, int K, int bf) {
    gemm_wmma_impl<bf16>(C, A, W, bias, M, N, K, bf);
}
extern "C" __global__ void __launch_bounds__(256) gemm_f16(float* C, const float* A, const __half* W, const float* bias,
                                                           int M, int N, int K, int bf) {
    gemm_wmma_impl<__half>(C, A, W, bias, M, N, K, bf);
}

// ---------------------------------------------------------------- RoPE
// rotate_half (or interleaved) RoPE on the first 2·half dims of each head; angle = pos·inv_freq in fp32.
// cos/sin are multiplied by the attention scaling and rounded (bf16 mode), then R(x1·cos) + R(−x2·sin) rounded.
extern "C" __global__ void rope(float* x, int T, int heads, int hd, int half, const float* invFreq, int pos0,
                                float scaling, int interleaved, int bf16Angles, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * heads * half) return;
    int fp32CosSin = bf & 4;   // OLMo 2 (bit 4 over the rounding mode)
    bf &= 3;
    int j = (int)(i % half);
    long long th = i / half;
    int t = (int)(th / heads);
    float pos = (float)(pos0 + t);
    float inv = invFreq[j];
    float angle = bf16Angles ? R(pos, 1) * R(inv, 1) : pos * inv;
    float* base = x + th * hd;
    int i1 = interleaved ? 2 * j : j, i2 = interleaved ? 2 * j + 1 : j + half;
    float x1 = base[i1], x2 = base[i2];
    if (fp32CosSin) {
        // OLMo 2: cos/sin stay fp32, products and sum in fp32 (no contraction), one rounding at the end
        float c = cosf(angle) * scaling, s = sinf(angle) * scaling;
        base[i1] = R(__fadd_rn(__fmul_rn(x1, c), __fmul_rn(-x2, s)), bf);
        base[i2] = R(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)), bf);
        return;
    }
    float c = R(cosf(angle) * scaling, bf), s = R(sinf(angle) * scaling, bf);
    base[i1] = R(R(x1 * c, bf) + R(-x2 * s, bf), bf);
    base[i2] = R(R(x2 * c, bf) + R(x1 * s, bf), bf);
}

// ---------------------------------------------------------------- attention (flash-style)
// Causal attention, optionally sliding (query t sees key s when s <= t and t - s < window), grouped KV heads,
// optional tanh soft-cap. Grid (ceil(T / 16), heads); 4 warps, each owns 4 query rows; K/V tiles of ATT_BK keys are
// staged in shared memory and shared by the block's 16 queries; online softmax with running max subtraction.
// Each lane holds head dims lane, lane+32, ... (hd <= 256). In bf16 mode scores are rounded as HF rounds them
// (q·k, ·scale, soft-cap) and the output once; probabilities stay fp32 (a flash kernel never materialises them).
#define ATT_BK 16
#define ATT_Q 4
#define ATT_E 8
// sinks (may be null, gpt-oss): a learned logit per head in the softmax's denominator (running max starts at it, the
// sum at exp(0) = 1). chunk > 0 (Llama 4): keys before the query's chunk are masked (chunk_first).
extern "C" __global__ void __launch_bounds__(128) attention(float* out, const float* q, const float* k, const float* v,
        int T, int heads, int kvHeads, int hd, int window, float scale, int divide, float scaleDiv, float cap, int bf,
        const float* sinks, int chunk, int pos0) {
    extern __shared__ float sm[];
    float* Ks = sm;
    float* Vs = sm + ATT_BK * hd;
    int h = blockIdx.y, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int q0 = blockIdx.x * 16;
    int qStride = heads * hd, kStride = kvHeads * hd;
    float qr[ATT_Q][ATT_E], acc[ATT_Q][ATT_E], m[ATT_Q], l[ATT_Q];
    int qi[ATT_Q];
#pragma unroll
    for (int a = 0; a < ATT_Q; a++) {
        qi[a] = q0 + warp * ATT_Q + a;
        m[a] = sinks ? sinks[h] : -INFINITY;
        l[a] = sinks ? 1.f : 0.f;
#pragma unroll
        for (int e = 0; e < ATT_E; e++) {
            int d = lane + 32 * e;
            qr[a][e] = (qi[a] < T && d < hd) ? q[(long long)qi[a] * qStride + h * hd + d] : 0.f;
            acc[a][e] = 0.f;
        }
    }
    int kEnd = min(T, q0 + 16);
    int kStart = max(window > 0 ? max(0, q0 - window + 1) : 0, chunk_first(q0, chunk, pos0));
    for (int k0 = kStart; k0 < kEnd; k0 += ATT_BK) {
        int nk = min(ATT_BK, kEnd - k0);
        __syncthreads();
        for (int e = threadIdx.x; e < nk * hd; e += blockDim.x) {
            int r = e / hd, d = e % hd;
            long long g = (long long)(k0 + r) * kStride + kvh * hd + d;
            Ks[e] = k[g];
            Vs[e] = v[g];
        }
        __syncthreads();
        for (int jj = 0; jj < nk; jj++) {
            int j = k0 + jj;
#pragma unroll
            for (int a = 0; a < ATT_Q; a++) {
                int t = qi[a];
                bool valid = t < T && j <= t && (window <= 0 || t - j < window) && j >= chunk_first(t, chunk, pos0);
                if (!valid) continue;   // uniform across the warp
                float dot = 0.f;
#pragma unroll
                for (int e = 0; e < ATT_E; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) dot = fmaf(qr[a][e], Ks[jj * hd + d], dot);
                }
                for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
                float s = R(dot, bf);
                // divide: bit 1 = GPT-2 scale_attn_weights (/ scaleDiv), bit 2 = scale_attn_by_inverse_layer_idx
                // (/ scale, the layer number), each a rounded op; 0 = multiply by scale.
                if (divide) {
                    if (divide & 1) s = R(s / scaleDiv, bf);
                    if (divide & 2) s = R(s / scale, bf);
                } else {
                    s = R(s * scale, bf);
                }
                if (cap > 0.f) s = bf ? R(R(tanhf(R(s / cap, bf)), bf) * cap, bf) : cap * tanhf(s / cap);
                float mn = fmaxf(m[a], s);
                float corr = expf(m[a] - mn);
                float p = expf(s - mn);
                l[a] = l[a] * corr + p;
                m[a] = mn;
#pragma unroll
                for (int e = 0; e < ATT_E; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) acc[a][e] = fmaf(p, Vs[jj * hd + d], acc[a][e] * corr);
                }
            }
        }
    }
#pragma unroll
    for (int a = 0; a < ATT_Q; a++) {
        if (qi[a] >= T) continue;
#pragma unroll
        for (int e = 0; e < ATT_E; e++) {
            int d = lane + 32 * e;
            if (d < hd) out[(long long)qi[a] * qStride + h * hd + d] = R(acc[a][e] / l[a], bf);
        }
    }
}

// ---------------------------------------------------------------- attention as HF's eager path computes it
// The same scores as above (rounded as HF rounds them in bf16 mode: q·k, ·scale or /scaleDiv, soft-cap), then
// softmax(dim=-1, dtype=float32).to(dtype) op for op: max and sum of exp(s - max) in fp32, each probability
// exp(s - max) / sum rounded once to bf16 (PyTorch's softmax kernel divides by the sum); P·V accumulated in fp32 from
// the rounded probabilities, the output rounded once. One warp per (query, head), dims lane, lane+32, ... (hd <= 256);
// the scores are recomputed in each of the three passes (max, sum, P·V), so nothing is stored. The xor butterfly
// leaves the same sum in every lane (fp32 addition is commutative), so all lanes agree on every score. Slower than
// the flash kernels; for comparisons at the level of rounding ties (-Dmodeldiff.cuda.attention=eager).
__device__ __forceinline__ float eager_score(const float* qr, const float* kr, int hd, int lane, float scale, int divide,
                                             float scaleDiv, float cap, int bf) {
    float dot = 0.f;
    for (int d = lane; d < hd; d += 32) dot = fmaf(qr[d], kr[d], dot);
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    float s = R(dot, bf);
    if (divide) {   // see attention: bit 1 / scaleDiv, bit 2 / scale (GPT-2 layer number)
        if (divide & 1) s = R(s / scaleDiv, bf);
        if (divide & 2) s = R(s / scale, bf);
    } else {
        s = R(s * scale, bf);
    }
    if (cap > 0.f) s = bf ? R(R(tanhf(R(s / cap, bf)), bf) * cap, bf) : cap * tanhf(s / cap);
    return s;
}
// sinks (may be null), gpt-oss as HF computes it: cat(scores, sink) − max rounded to the dtype, then softmax in fp32
// with the sink's term in the sum, each probability rounded once (lowp's SINK_SHIFT). chunk: as in attention.
extern "C" __global__ void __launch_bounds__(32) attention_eager(float* out, const float* q, const float* k, const float* v,
        int T, int heads, int kvHeads, int hd, int window, float scale, int divide, float scaleDiv, float cap, int bf,
        const float* sinks, int chunk, int pos0) {
    int t = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    int kvh = h / (heads / kvHeads);
    const float* qr = q + ((long long)t * heads + h) * hd;
    int first = max(window > 0 ? max(0, t - window + 1) : 0, chunk_first(t, chunk, pos0));
    float m = -INFINITY;
    for (int j = first; j <= t; j++)
        m = fmaxf(m, eager_score(qr, k + ((long long)j * kvHeads + kvh) * hd, hd, lane, scale, divide, scaleDiv, cap, bf));
    if (sinks) m = fmaxf(m, sinks[h]);
    float l = 0.f;
    for (int j = first; j <= t; j++) {
        float d = eager_score(qr, k + ((long long)j * kvHeads + kvh) * hd, hd, lane, scale, divide, scaleDiv, cap, bf) - m;
        l += expf(sinks ? R(d, bf) : d);
    }
    if (sinks) l += expf(R(sinks[h] - m, bf));
    float acc[ATT_E];
#pragma unroll
    for (int e = 0; e < ATT_E; e++) acc[e] = 0.f;
    for (int j = first; j <= t; j++) {
        long long kv = ((long long)j * kvHeads + kvh) * hd;
        float d = eager_score(qr, k + kv, hd, lane, scale, divide, scaleDiv, cap, bf) - m;
        float p = R(expf(sinks ? R(d, bf) : d) / l, bf);
#pragma unroll
        for (int e = 0; e < ATT_E; e++) {
            int d = lane + 32 * e;
            if (d < hd) acc[e] = fmaf(p, v[kv + d], acc[e]);
        }
    }
#pragma unroll
    for (int e = 0; e < ATT_E; e++) {
        int d = lane + 32 * e;
        if (d < hd) out[((long long)t * heads + h) * hd + d] = R(acc[e], bf);
    }
}

// ---------------------------------------------------------------- MLP activation
// kind: 0 gelu (erf), 1 gelu tanh (fused kernel), 2 silu, 3 relu², 4 relu. geluNew: HF's Python NewGELU formula,
// rounded at each op (bf16 only). gated: out = R(act(g) · up) (GeGLU / SwiGLU), else out = act(g).
__device__ float gelu_new_composite(float x, int bf) {
    float cube = R(R(x * x, bf) * x, bf);
    float inner = R(x + R(0.044715f * cube, bf), bf);
    float t = R(tanhf(R(0.7978845608028654f * inner, bf)), bf);
    return R(R(0.5f * x, bf) * R(1.f + t, bf), bf);
}
extern "C" __global__ void mlp_act(float* out, bf16* outB, const float* g, const float* up, long long n, int kind, int gated,
                                   int geluNew, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = g[i], a;
    switch (kind) {
        case 0: a = R(x * 0.5f * (1.f + erff(x * 0.70710678118654752f)), bf); break;
        case 1:
            if (geluNew && bf) a = gelu_new_composite(x, bf);
            else {
                const float kBeta = 0.7978845608028654f, kKappa = 0.044715f;
                float inner = kBeta * (x + kKappa * x * x * x);
                a = R(0.5f * x * (1.f + tanhf(inner)), bf);
            }
            break;
        case 2: a = R(x / (1.f + expf(-x)), bf); break;
        case 3: { float r = fmaxf(x, 0.f); a = R(r * r, bf); break; }
        default: a = fmaxf(x, 0.f);
    }
    float y = gated ? R(a * up[i], bf) : a;
    out[i] = y;
    if (outB) store16(outB + i, y, bf);
}

// ---------------------------------------------------------------- residual add, soft-cap
extern "C" __global__ void copy_f32(float* dst, const float* src, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[i];
}
extern "C" __global__ void residual_add(float* x, const float* y, long long n, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = R(x[i] + y[i], bf);
}
extern "C" __global__ void softcap(float* x, long long n, float cap, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    x[i] = bf ? R(R(tanhf(R(x[i] / cap, bf)), bf) * cap, bf) : cap * tanhf(x[i] / cap);
}

// ---------------------------------------------------------------- synthetic weights (benchmarks)
// Seeded uniform values in [-amp, amp) from a counter hash, written as bf16 / float.
__device__ __forceinline__ unsigned int hash32(unsigned long long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return (unsigned int)x;
}
extern "C" __global__ void fill_bf16(bf16* w, long long n, unsigned long long seed, float amp, float offset) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float u = (hash32(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (1.0f / 16777216.0f);
    w[i] = __float2bfloat16_rn(offset + amp * (2.f * u - 1.f));
}
extern "C" __global__ void fill_f16(__half* w, long long n, unsigned long long seed, float amp, float offset) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float u = (hash32(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (1.0f / 16777216.0f);
    w[i] = __float2half_rn(offset + amp * (2.f * u - 1.f));
}
extern "C" __global__ void fill_f32(float* w, long long n, unsigned long long seed, float amp, float offset) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float u = (hash32(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (1.0f / 16777216.0f);
    w[i] = offset + amp * (2.f * u - 1.f);
}

// ---------------------------------------------------------------- fp32 -> bf16 (GEMM / attention operands)
extern "C" __global__ void f32_to_bf16(bf16* out, const float* in, long long n) {
    long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i + 4 <= n && ((((unsigned long long)in) & 15) == 0)) {
        float4 v = *(const float4*)(in + i);
        out[i] = __float2bfloat16_rn(v.x);
        out[i + 1] = __float2bfloat16_rn(v.y);
        out[i + 2] = __float2bfloat16_rn(v.z);
        out[i + 3] = __float2bfloat16_rn(v.w);
    } else {
        for (long long j = i; j < n && j < i + 4; j++) out[j] = __float2bfloat16_rn(in[j]);
    }
}

extern "C" __global__ void f32_to_f16(__half* out, const float* in, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half_rn(in[i]);
}

// ---------------------------------------------------------------- split-K: the fixed-order second pass
// C[M, N] = R(Σ_{z = 0..S-1} part[z][M][N] + bias[N]): the slices are added in order z = 0, 1, ..., so the result is
// the same on every run (no atomics).
// res (may be null): the fused residual, res = R(res + C).
extern "C" __global__ void splitk_reduce(float* C, const float* part, const float* bias, int M, int N, int S, int bf, float* res) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, mn = (long long)M * N;
    if (i >= mn) return;
    float v = part[i];
    for (int z = 1; z < S; z++) v += part[z * mn + i];
    if (bias) v += bias[(int)(i % N)];
    v = R(v, bf);
    C[i] = v;
    if (res) res[i] = R(res[i] + v, bf);
}

// ---------------------------------------------------------------- GEMM, bf16 tensor cores (mma.sync)
// C[M, N] = R(A[M, K] · W[N, K]ᵀ + bias[N]), A and W bf16 (K % 8 == 0, 16-byte aligned rows), fp32 accumulate.
// 128×256×64 block tile, 8 warps as 2 (M) × 4 (N) of 64×64, mma.sync m16n8k16 fed by ldmatrix from 128-byte-swizzled
// shared memory, MM_ST-stage cp.async pipeline (zero-filled beyond M, N, K). Grid: (M tiles, N tiles).
#define MM_BM 128
#define MM_BN 256
#define MM_ST 4
template <int MODE>
__device__ __forceinline__ void mma_epilogue(float* C, const float* bias, int M, int N, int r0, int c0, float (&acc)[4][8][4],
                                             float* res) {
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            store2<MODE>(C, bias, M, N, r0 + i * 16, c0 + j * 8, acc[i][j][0], acc[i][j][1], res);
            store2<MODE>(C, bias, M, N, r0 + i * 16 + 8, c0 + j * 8, acc[i][j][2], acc[i][j][3], res);
        }
}
// Split-K as gemm_wgmma (modeldiff_wgmma.cu): part != null = block z sums K tiles [z·ktPer, (z+1)·ktPer) into part[z].
template <typename T>
__device__ __forceinline__ void gemm_mma_impl(float* C, const T* A, const T* W, const float* bias, int M, int N, int K,
                                              int bf, float* part, int ktPer, float* res) {
    extern __shared__ unsigned char smem_raw[];
    unsigned sb = (smem_u32(smem_raw) + 1023u) & ~1023u;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int wm = warp >> 2, wn = warp & 3;
    int m0 = blockIdx.x * MM_BM, n0 = blockIdx.y * MM_BN;
    int KTall = (K + 63) / 64, kt0 = part ? blockIdx.z * ktPer : 0;
    int KT = part ? max(0, min(KTall, kt0 + ktPer) - kt0) : KTall;
    const T* A0 = A + kt0 * 64;
    const T* W0 = W + kt0 * 64;
    int Kend = K - kt0 * 64;
    float acc[4][8][4];
    mma_mainloop<T, MM_BM, MM_BN, MM_ST>(acc, sb, A0, W0, m0, M, n0, N, KT, Kend, K, tid);
    int r0 = m0 + wm * 64 + (lane >> 2), c0 = n0 + wn * 64 + (lane & 3) * 2;
    if (part) mma_epilogue<0>(part + (long long)blockIdx.z * M * N, nullptr, M, N, r0, c0, acc, nullptr);
    else if (bf == 1) mma_epilogue<1>(C, bias, M, N, r0, c0, acc, res);
    else if (bf == 2) mma_epilogue<2>(C, bias, M, N, r0, c0, acc, res);
    else mma_epilogue<0>(C, bias, M, N, r0, c0, acc, res);
}
extern "C" __global__ void __launch_bounds__(256, 1) gemm_mma(float* C, const bf16* A, const bf16* W, const float* bias,
                                                               int M, int N, int K, int bf, float* part, int ktPer, float* res) {
    gemm_mma_impl<bf16>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}
extern "C" __global__ void __launch_bounds__(256, 1) gemm_mma_f16(float* C, const __half* A, const __half* W,
        const float* bias, int M, int N, int K, int bf, float* part, int ktPer, float* res) {
    gemm_mma_impl<__half>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}

// ---------------------------------------------------------------- attention on tensor cores (bf16 operands)
// Causal (optionally sliding, soft-capped, grouped-KV) attention, flash-style: a block = 64 queries of one head,
// 4 warps × 16 query rows; K/V tiles of 64 keys in shared memory (cp.async, double-buffered, swizzled); S = Q·Kᵀ and
// O += P·V with mma.sync m16n8k16 (fp32 accumulate); online softmax in fp32; P is rounded to bf16 for the P·V product.
// Scores are rounded as HF rounds them in bf16 mode (q·k, ·scale, soft-cap), the output once. q/k/v are bf16 copies
// of the [T, heads·hd] / [T, kvHeads·hd] activations. out: fp32 [T, heads·hd]; outB (may be null): same, as bf16.
#define FA_BQ 64
#define FA_BK 64
// VAR: the attention variants (sinks, chunks) are compiled in; without them the kernel is the plain one (the variants'
// code, even when not taken, took attention_tc128 from 168 to 218 registers, 3 to 2 blocks per SM, and halved its
// speed: H100, 2026-12-06).
template <int HD, typename E, bool VAR>
__device__ __forceinline__ void attn_tc_impl(float* out, E* outB, const E* q, const E* k, const E* v, int T,
                                             int heads, int kvHeads, int window, float scale, int divide, float scaleDiv,
                                             float cap, int bf, const float* sinks, int chunk, int pos0) {
    constexpr int CH = HD / 8;             // 16-byte chunks per row
    constexpr int SW = CH < 8 ? CH : 8;    // swizzle width (chunks)
    constexpr int ROWB = HD * 2;
    constexpr int KD = HD / 16;            // k16 steps over the head dim
    constexpr int ND = HD / 8;             // n8 tiles over the head dim
    extern __shared__ unsigned char fa_smem[];
    unsigned sQ = (smem_u32(fa_smem) + 127u) & ~127u;
    unsigned sK = sQ + FA_BQ * ROWB, sV = sK + 2 * FA_BK * ROWB;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int h = blockIdx.y, kvh = h / (heads / kvHeads);
    int q0 = (gridDim.x - 1 - blockIdx.x) * FA_BQ;   // heaviest (latest) query blocks first
    long long qStride = (long long)heads * HD, kStride = (long long)kvHeads * HD;
    auto sw = [](int r, int c) { return (unsigned)(r * ROWB + ((c ^ (r & (SW - 1))) << 4)); };
    auto loadRows = [&](unsigned base, const E* g, long long stride, int col0, int t0, int n) {
        for (int id = tid; id < n * CH; id += 128) {
            int r = id / CH, c = id % CH;
            int t = t0 + r;
            bool ok = t < T;
            const E* src = ok ? g + (long long)t * stride + col0 + c * 8 : g;
            cp_async16(base + sw(r, c), src, ok);
        }
    };
    int kEnd = min(T, q0 + FA_BQ);
    int kStart = window > 0 ? max(0, q0 - window + 1) : 0;
    if (VAR) kStart = max(kStart, chunk_first(q0, chunk, pos0));
    int nTiles = (kEnd - kStart + FA_BK - 1) / FA_BK;
    loadRows(sQ, q, qStride, h * HD, q0, FA_BQ);
    loadRows(sK, k, kStride, kvh * HD, kStart, FA_BK);
    loadRows(sV, v, kStride, kvh * HD, kStart, FA_BK);
    cp_async_commit();

    unsigned qf[KD][4];
    float o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
    if (VAR && sinks) {   // the sink's exp(sink − max) term, counted once per row (lanes 4i hold it; the row sum adds lanes)
        mrow[0] = mrow[1] = sinks[h];
        lrow[0] = lrow[1] = (lane & 3) == 0 ? 1.f : 0.f;
    }
    int tRow = q0 + warp * 16 + (lane >> 2);   // and tRow + 8
    const int cf[2] = {VAR ? chunk_first(tRow, chunk, pos0) : 0, VAR ? chunk_first(tRow + 8, chunk, pos0) : 0};

    for (int it = 0; it < nTiles; it++) {
        int k0 = kStart + it * FA_BK, buf = it & 1;
        if (it + 1 < nTiles) {
            int nb = buf ^ 1;
            loadRows(sK + nb * FA_BK * ROWB, k, kStride, kvh * HD, k0 + FA_BK, FA_BK);
            loadRows(sV + nb * FA_BK * ROWB, v, kStride, kvh * HD, k0 + FA_BK, FA_BK);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (it == 0) {
#pragma unroll
            for (int kk = 0; kk < KD; kk++)
                ldsm_x4(sQ + sw(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)), qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3]);
        }
        unsigned Kb = sK + buf * FA_BK * ROWB, Vb = sV + buf * FA_BK * ROWB;
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++)
#pragma unroll
            for (int jp = 0; jp < 4; jp++) {
                unsigned b0, b1, b2, b3;
                ldsm_x4(Kb + sw(jp * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)), b0, b1, b2, b3);
                mma16<E>(s[2 * jp], qf[kk], b0, b1);
                mma16<E>(s[2 * jp + 1], qf[kk], b2, b3);
            }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = k0 + j * 8 + (lane & 3) * 2 + (e & 1), t = tRow + (e >> 1) * 8;
                float x = round_bf(s[j][e], bf);
                if (divide) {   // see attention: bit 1 / scaleDiv, bit 2 / scale (GPT-2 layer number)
                    if (divide & 1) x = round_bf(x / scaleDiv, bf);
                    if (divide & 2) x = round_bf(x / scale, bf);
                } else {
                    x = round_bf(x * scale, bf);
                }
                if (cap > 0.f) x = bf ? round_bf(round_bf(tanhf(round_bf(x / cap, bf)), bf) * cap, bf) : cap * tanhf(x / cap);
                bool valid = key < T && key <= t && (window <= 0 || t - key < window) && (!VAR || key >= cf[e >> 1]);
                x = valid ? x : -INFINITY;
                s[j][e] = x;
                mx[e >> 1] = fmaxf(mx[e >> 1], x);
            }
        float corr[2], base[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            float mn = fmaxf(mrow[r], mx[r]);
            base[r] = mn == -INFINITY ? 0.f : mn;
            corr[r] = expf(mrow[r] - base[r]);
            mrow[r] = mn;
            lrow[r] *= corr[r];
        }
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = expf(s[j][e] - base[e >> 1]);
                s[j][e] = p;
                lrow[e >> 1] += p;
            }
#pragma unroll
        for (int n = 0; n < ND; n++) {
            o[n][0] *= corr[0]; o[n][1] *= corr[0];
            o[n][2] *= corr[1]; o[n][3] *= corr[1];
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {   // 16 keys per step
            unsigned pa[4] = {Elem<E>::pack(s[2 * kk][0], s[2 * kk][1]), Elem<E>::pack(s[2 * kk][2], s[2 * kk][3]),
                              Elem<E>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), Elem<E>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dp = 0; dp < HD / 16; dp++) {
                unsigned b0, b1, b2, b3;
                ldsm_x4_t(Vb + sw(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), dp * 2 + (lane >> 4)), b0, b1, b2, b3);
                mma16<E>(o[2 * dp], pa, b0, b1);
                mma16<E>(o[2 * dp + 1], pa, b2, b3);
            }
        }
        __syncthreads();   // this buffer is refilled two tiles on
    }
    cp_async_wait<0>();
#pragma unroll
    for (int r = 0; r < 2; r++) {
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int t = tRow + r * 8;
        if (t >= T) continue;
        float inv = 1.f / lrow[r];
#pragma unroll
        for (int n = 0; n < ND; n++) {
            int d = n * 8 + (lane & 3) * 2;
            float v0 = round_bf(o[n][2 * r] * inv, bf), v1 = round_bf(o[n][2 * r + 1] * inv, bf);
            long long at = (long long)t * qStride + h * HD + d;
            *(float2*)(out + at) = make_float2(v0, v1);
            if (outB) *(unsigned*)(outB + at) = Elem<E>::pack(v0, v1);
        }
    }
}
#define ATTN_TC_ONE(NAME, E, VAR)                                                                                      \
    extern "C" __global__ void __launch_bounds__(128) NAME(float* out, E* outB, const E* q, const E* k, const E* v,    \
            int T, int heads, int kvHeads, int window, float scale, int divide, float scaleDiv, float cap, int bf,      \
            const float* sinks, int chunk, int pos0) {                                                                  \
        attn_tc_impl<HD_, E, VAR>(out, outB, q, k, v, T, heads, kvHeads, window, scale, divide, scaleDiv, cap, bf,     \
                                  sinks, chunk, pos0);                                                                   \
    }
// attention_tcHD (bf16), attention_tcHD_f16: v1, kept for comparison (-Dmodeldiff.cuda.attention=tc_v1). Its _var
// twins (VAR = true: sinks / chunks) are no longer instantiated: attention_faHD_gen serves those launches (every
// instantiation costs the driver's JIT time when the module loads).
#define ATTN_TC(HD)                                                                                                    \
    ATTN_TC_ONE(attention_tc##HD, bf16, false)                                                                         \
    ATTN_TC_ONE(attention_tc##HD##_f16, __half, false)
#define HD_ 16
ATTN_TC(16)
#undef HD_
#define HD_ 32
ATTN_TC(32)
#undef HD_
#define HD_ 64
ATTN_TC(64)
#undef HD_
#define HD_ 128
ATTN_TC(128)
#undef HD_

// ---------------------------------------------------------------- attention on tensor cores, v2 (issue #18)
// The same attention and the same rounding contract as attn_tc_impl above (which stays reachable as
// -Dmodeldiff.cuda.attention=tc_v1), reorganised for speed, since v1 was issue-bound on its per-score scalar code:
// - Compile-time kinds: RM is the rounding mode (1 bf16, 2 fp16; −1: the run-time argument bf, 0 or E's mode) and KIND says
//   which optional code is compiled in (FA_CAPDIV: soft-cap and GPT-2's divide, their values still run-time; FA_VAR:
//   sinks and chunks), so the plain path (scale, causal, window, GQA) carries none of the others' instructions or
//   registers. DeviceKernels.attentionTc picks the instantiation: attention_faHD[_f16] (plain, 16-bit mode),
//   attention_faHD_occ[_f16] (the same, registers capped), attention_faHD_gen[_f16] (everything, any mode).
// - Only the tiles that hold a masked (query, key) pair run the per-element mask test: the diagonal tile(s), the
//   window's first tile(s), tiles before a chunk start. Interior tiles skip it.
// - exp as exp2 (ex2.approx.ftz) of one FFMA per score: p = 2^(x·log2e − m'), m' = R32(m·log2e) the row max scaled
//   once per tile, and the rescale factor 2^(m'_old − m'_new) uses the same rounded m', so every p and correction of a
//   row is relative to one base (the factor is exactly 1 when the max does not move). Rounding contract unchanged: the
//   scores are still rounded where HF's eager path rounds them (q·k, ·scale, each soft-cap op; GPT-2's divisions),
//   masked scores are −inf, the sums and P·V accumulate in fp32, P is rounded to the 16-bit type for P·V, the output
//   once. Only the exp's last-ulp behaviour differs from v1's expf (ex2.approx: ≤ 2 ulp; the FFMA's argument error
//   ≤ half an ulp of x·log2e), far below the 16-bit rounding of P that follows. Like v1 this is not bit-exact to HF's
//   eager attention: it rounds the unnormalised P, HF the normalised one (docs/cuda.md).
// - Q goes through shared memory once, into registers, in the space of K/V buffer 1 (before tile 1 is fetched
//   there): 4 tiles of shared memory instead of 5 (64 KB at head_dim 128: 3 blocks per SM instead of 2).
// Block = 64 queries of one head, 4 warps × 16 rows, K/V tiles of 64 keys, double-buffered by cp.async.
#define FA_CAPDIV 1
#define FA_VAR 2
__device__ __forceinline__ float ex2_approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
// a and b rounded to bfloat16 (round to nearest even, as __float2bfloat16_rn each) by one cvt.rn.bf16x2 for the pair
__device__ __forceinline__ void round_bf16_pair(float& a, float& b) {
    unsigned u = pack_bf16(a, b);   // a in the low half, b in the high half
    a = __uint_as_float(u << 16);
    b = __uint_as_float(u & 0xffff0000u);
}
// MI: 16-row MMA blocks per warp (1: 64 queries per block, Q held in registers in the shared memory of K/V buffer 1;
// 2: 128 queries per block, each K/V fragment feeds twice the MMAs, Q re-read from its own shared memory every tile).
template <int HD, typename E, int RM, int KIND, int MI = 1>
__device__ __forceinline__ void attn_fa_impl(float* out, E* outB, const E* q, const E* k, const E* v, int T,
                                             int heads, int kvHeads, int window, float scale, int divide, float scaleDiv,
                                             float cap, int bf, const float* sinks, int chunk, int pos0) {
    constexpr bool GEN = (KIND & FA_CAPDIV) != 0, VAR = (KIND & FA_VAR) != 0, QREG = MI == 1;
    constexpr int BQ = FA_BQ * MI;         // queries per block
    constexpr int CH = HD / 8;             // 16-byte chunks per row
    constexpr int SW = CH < 8 ? CH : 8;    // swizzle width (chunks)
    constexpr int ROWB = HD * 2;
    constexpr int KD = HD / 16;            // k16 steps over the head dim
    constexpr int ND = HD / 8;             // n8 tiles over the head dim
    constexpr unsigned TILE = FA_BK * ROWB;
    constexpr float LOG2E = 1.4426950408889634f;
    static_assert(FA_BQ == FA_BK, "Q borrows one K tile's shared memory");
    static_assert(MI == 1 || MI == 2, "16 or 32 rows per warp");
    // RM −1: bf is 0 (fp32 mode) or E's own mode (DeviceKernels.mode): a select, not round_dt's three-way branch
    auto rnd = [bf](float x) {
        if constexpr (RM >= 0) return round_dt(x, RM);
        float r = round_dt(x, Elem<E>::MODE);
        return bf ? r : x;
    };
    extern __shared__ unsigned char fa_smem[];
    unsigned sK = (smem_u32(fa_smem) + 127u) & ~127u, sV = sK + 2 * TILE;
    // MI 1: K buffer 1 until Q is in registers (tile 1 is fetched there only after that); MI 2: after the V buffers
    unsigned sQ = QREG ? sK + TILE : sV + 2 * TILE;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int h = blockIdx.y, kvh = h / (heads / kvHeads);
    int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;   // heaviest (latest) query blocks first
    long long qStride = (long long)heads * HD, kStride = (long long)kvHeads * HD;
    auto sw = [](int r, int c) { return (unsigned)(r * ROWB + ((c ^ (r & (SW - 1))) << 4)); };
    auto loadRows = [&](unsigned base, const E* g, long long stride, int col0, int t0, int rows) {
        for (int id = tid; id < rows * CH; id += 128) {
            int r = id / CH, c = id % CH;
            int t = t0 + r;
            bool ok = t < T;   // rows beyond T are zero-filled, nothing read
            const E* src = ok ? g + (long long)t * stride + col0 + c * 8 : g;
            cp_async16(base + sw(r, c), src, ok);
        }
    };
    int qLast = min(T, q0 + BQ) - 1;   // the block's last real query
    int kStart = window > 0 ? max(0, q0 - window + 1) : 0;
    if (VAR) kStart = max(kStart, chunk_first(q0, chunk, pos0));
    int nTiles = (qLast + 1 - kStart + FA_BK - 1) / FA_BK;   // >= 1: query q0 sees key q0
    int cfLast = VAR ? chunk_first(qLast, chunk, pos0) : 0;
    loadRows(sQ, q, qStride, h * HD, q0, BQ);
    loadRows(sK, k, kStride, kvh * HD, kStart, FA_BK);
    loadRows(sV, v, kStride, kvh * HD, kStart, FA_BK);
    cp_async_commit();

    unsigned qf[QREG ? KD : 1][4];
    float o[MI][ND][4];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int n = 0; n < ND; n++) o[mi][n][0] = o[mi][n][1] = o[mi][n][2] = o[mi][n][3] = 0.f;
    // per row (rows tRow[mi], tRow[mi] + 8): running max m, m' = R32(m·log2e) (the exponent base), this lane's sum of p
    float mrow[MI][2], mlg[MI][2], lrow[MI][2];
    int tRow[MI], lo[MI][2];   // row r sees keys lo <= key <= t: the window's and the chunk's first key
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        tRow[mi] = q0 + mi * FA_BQ + warp * 16 + (lane >> 2);
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mrow[mi][r] = mlg[mi][r] = -INFINITY;
            lrow[mi][r] = 0.f;
            if (VAR && sinks) {   // the sink's exp(sink − max) term, once per row (lanes 4i hold it; the row sum adds lanes)
                mrow[mi][r] = sinks[h];
                mlg[mi][r] = __fmul_rn(sinks[h], LOG2E);
                lrow[mi][r] = (lane & 3) == 0 ? 1.f : 0.f;
            }
            int t = tRow[mi] + r * 8;
            lo[mi][r] = window > 0 ? max(0, t - window + 1) : 0;   // keys are >= 0: 0 is no bound
            if (VAR) lo[mi][r] = max(lo[mi][r], chunk_first(t, chunk, pos0));
        }
    }

    if constexpr (QREG) {   // Q and tile 0 landed: Q into registers; after the barrier its space is free for tile 1
        cp_async_wait<0>();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KD; kk++)
            ldsm_x4(sQ + sw(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)), qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3]);
        __syncthreads();
    }

    for (int it = 0; it < nTiles; it++) {
        int k0 = kStart + it * FA_BK, buf = it & 1;
        if (it + 1 < nTiles) {   // the other buffer was last read in tile it − 1 (or held Q), before a barrier
            loadRows(sK + (buf ^ 1) * TILE, k, kStride, kvh * HD, k0 + FA_BK, FA_BK);
            loadRows(sV + (buf ^ 1) * TILE, v, kStride, kvh * HD, k0 + FA_BK, FA_BK);
        }
        cp_async_commit();
        cp_async_wait<1>();   // tile it (and, MI 2, Q with tile 0)
        __syncthreads();
        unsigned Kb = sK + buf * TILE, Vb = sV + buf * TILE;
        float s[MI][8][4];
#pragma unroll
        for (int mi = 0; mi < MI; mi++)
#pragma unroll
            for (int j = 0; j < 8; j++) s[mi][j][0] = s[mi][j][1] = s[mi][j][2] = s[mi][j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            unsigned qa[MI][4];
#pragma unroll
            for (int mi = 0; mi < MI; mi++) {
                if constexpr (QREG) {
#pragma unroll
                    for (int i = 0; i < 4; i++) qa[mi][i] = qf[kk][i];
                } else {
                    ldsm_x4(sQ + sw(mi * FA_BQ + warp * 16 + (lane & 15), kk * 2 + (lane >> 4)), qa[mi][0], qa[mi][1],
                            qa[mi][2], qa[mi][3]);
                }
            }
#pragma unroll
            for (int jp = 0; jp < 4; jp++) {
                unsigned b0, b1, b2, b3;
                ldsm_x4(Kb + sw(jp * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)), b0, b1, b2, b3);
#pragma unroll
                for (int mi = 0; mi < MI; mi++) {
                    mma16<E>(s[mi][2 * jp], qa[mi], b0, b1);
                    mma16<E>(s[mi][2 * jp + 1], qa[mi], b2, b3);
                }
            }
        }
        // the mask, only where a masked pair can be: keys past the block's first query (causal; keys >= T are past
        // every real query), before the last query's window, before the last query's chunk start
        bool needMask = k0 + FA_BK - 1 > q0 || (window > 0 && qLast - k0 >= window) || (VAR && k0 < cfLast);
        float corr[MI][2];
#pragma unroll
        for (int mi = 0; mi < MI; mi++) {
            // the scores as HF rounds them (mode RM): R(q·k), then R(·scale) or GPT-2's R(/ scaleDiv), R(/ layer), cap
            if constexpr (RM == 1 && !GEN) {   // bf16, plain: each rounding one cvt per pair of scores (same RN bits)
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e += 2) {
                        round_bf16_pair(s[mi][j][e], s[mi][j][e + 1]);
                        s[mi][j][e] *= scale;
                        s[mi][j][e + 1] *= scale;
                        round_bf16_pair(s[mi][j][e], s[mi][j][e + 1]);
                    }
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float x = rnd(s[mi][j][e]);
                        if (GEN && divide) {   // see attention: bit 1 / scaleDiv, bit 2 / scale (GPT-2 layer number)
                            if (divide & 1) x = rnd(x / scaleDiv);
                            if (divide & 2) x = rnd(x / scale);
                        } else {
                            x = rnd(x * scale);
                        }
                        if (GEN && cap > 0.f)
                            x = (RM >= 0 ? RM : bf) ? rnd(rnd(tanhf(rnd(x / cap))) * cap) : cap * tanhf(x / cap);
                        s[mi][j][e] = x;
                    }
            }
            if (needMask) {   // key = k0 + c + j·8 + (e & 1), c = this lane's column: compare j·8 + (e & 1) with bounds
                int c = k0 + (lane & 3) * 2;
                int hiR[2] = {tRow[mi] - c, tRow[mi] + 8 - c}, loR[2] = {lo[mi][0] - c, lo[mi][1] - c};
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int rel = j * 8 + (e & 1);
                        if (rel > hiR[e >> 1] || rel < loR[e >> 1]) s[mi][j][e] = -INFINITY;
                    }
            }
            float mx[2] = {mrow[mi][0], mrow[mi][1]};
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) mx[e >> 1] = fmaxf(mx[e >> 1], s[mi][j][e]);
            float nb[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
                mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
                // m' rounded once and used as is (_rn: no contraction into an FMA), so p and the factor share one base
                float ml = mx[r] == -INFINITY ? 0.f : __fmul_rn(mx[r], LOG2E);   // no key yet: any finite base (p = 0)
                corr[mi][r] = mlg[mi][r] == ml ? 1.f : ex2_approx(__fsub_rn(mlg[mi][r], ml));   // 1 if the max stays; 0 from −inf
                nb[r] = -ml;
                mrow[mi][r] = mx[r];
                mlg[mi][r] = mx[r] == -INFINITY ? -INFINITY : ml;
                lrow[mi][r] *= corr[mi][r];
            }
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float p = ex2_approx(fmaf(s[mi][j][e], LOG2E, nb[e >> 1]));
                    s[mi][j][e] = p;
                    lrow[mi][e >> 1] += p;
                }
            // rescale O only where some row's max moved (a factor of exactly 1 changes no bit: skipping it is exact)
            if (!__all_sync(0xffffffffu, corr[mi][0] == 1.f && corr[mi][1] == 1.f)) {
#pragma unroll
                for (int n = 0; n < ND; n++) {
                    o[mi][n][0] *= corr[mi][0]; o[mi][n][1] *= corr[mi][0];
                    o[mi][n][2] *= corr[mi][1]; o[mi][n][3] *= corr[mi][1];
                }
            }
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {   // 16 keys per step; P rounded to the 16-bit type here
            unsigned pa[MI][4];
#pragma unroll
            for (int mi = 0; mi < MI; mi++) {
                pa[mi][0] = Elem<E>::pack(s[mi][2 * kk][0], s[mi][2 * kk][1]);
                pa[mi][1] = Elem<E>::pack(s[mi][2 * kk][2], s[mi][2 * kk][3]);
                pa[mi][2] = Elem<E>::pack(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
                pa[mi][3] = Elem<E>::pack(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < HD / 16; dp++) {
                unsigned b0, b1, b2, b3;
                ldsm_x4_t(Vb + sw(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), dp * 2 + (lane >> 4)), b0, b1, b2, b3);
#pragma unroll
                for (int mi = 0; mi < MI; mi++) {
                    mma16<E>(o[mi][2 * dp], pa[mi], b0, b1);
                    mma16<E>(o[mi][2 * dp + 1], pa[mi], b2, b3);
                }
            }
        }
        __syncthreads();   // this buffer is refilled two tiles on
    }
    cp_async_wait<0>();
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            lrow[mi][r] += __shfl_xor_sync(0xffffffffu, lrow[mi][r], 1);
            lrow[mi][r] += __shfl_xor_sync(0xffffffffu, lrow[mi][r], 2);
        }
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            int t = tRow[mi] + r * 8;
            if (t >= T) continue;
            float inv = 1.f / lrow[mi][r];
#pragma unroll
            for (int n = 0; n < ND; n++) {
                int d = n * 8 + (lane & 3) * 2;
                float v0 = rnd(o[mi][n][2 * r] * inv), v1 = rnd(o[mi][n][2 * r + 1] * inv);
                long long at = (long long)t * qStride + h * HD + d;
                *(float2*)(out + at) = make_float2(v0, v1);
                if (outB) *(unsigned*)(outB + at) = Elem<E>::pack(v0, v1);
            }
        }
}
// MINB: blocks per SM ptxas sizes the registers for (1: no cap). MI: 16-row MMA blocks per warp (attn_fa_impl).
#define ATTN_FA_MI(NAME, E, RM, KIND, MINB, MI)                                                                        \
    extern "C" __global__ void __launch_bounds__(128, MINB) NAME(float* out, E* outB, const E* q, const E* k,          \
            const E* v, int T, int heads, int kvHeads, int window, float scale, int divide, float scaleDiv, float cap,  \
            int bf, const float* sinks, int chunk, int pos0) {                                                          \
        attn_fa_impl<HD_, E, RM, KIND, MI>(out, outB, q, k, v, T, heads, kvHeads, window, scale, divide, scaleDiv, cap, \
                                           bf, sinks, chunk, pos0);                                                     \
    }
#define ATTN_FA_ONE(NAME, E, RM, KIND, MINB) ATTN_FA_MI(NAME, E, RM, KIND, MINB, 1)
// attention_faHD: plain (scale, causal, window, GQA), rounding in the 16-bit mode; _gen: soft-cap, divide, sinks,
// chunks compiled in and the rounding mode taken from bf (fp32 mode included); _f16: fp16 operands. _occ (head_dim 64 /
// 128): the plain kernel with its registers capped for one more block per SM (ptxas, nvcc 13.0, sm_90a: attention_fa128
// 203 registers, no spills, 2 blocks per SM; _occ 168 registers, 20 bytes spilled, 3 blocks; attention_fa64 155 / _occ
// 128 without spills (fp16: 40 bytes), 3 / 4 blocks; docs/cuda.md): which is faster is for the GPU to say
// (-Dmodeldiff.cuda.faPlain).
#define ATTN_FA(HD)                                                                                                    \
    ATTN_FA_ONE(attention_fa##HD, bf16, 1, 0, 1)                                                                       \
    ATTN_FA_ONE(attention_fa##HD##_gen, bf16, -1, FA_CAPDIV | FA_VAR, 1)                                               \
    ATTN_FA_ONE(attention_fa##HD##_f16, __half, 2, 0, 1)                                                               \
    ATTN_FA_ONE(attention_fa##HD##_gen_f16, __half, -1, FA_CAPDIV | FA_VAR, 1)
#define ATTN_FA_OCC(HD, MINB)                                                                                          \
    ATTN_FA_ONE(attention_fa##HD##_occ, bf16, 1, 0, MINB)                                                              \
    ATTN_FA_ONE(attention_fa##HD##_occ_f16, __half, 2, 0, MINB)
// _r32 (head_dim 64 / 128): the plain kernel with 32 query rows per warp, 128 per block (MI 2)
#define ATTN_FA_R32(HD)                                                                                                \
    ATTN_FA_MI(attention_fa##HD##_r32, bf16, 1, 0, 1, 2)                                                               \
    ATTN_FA_MI(attention_fa##HD##_r32_f16, __half, 2, 0, 1, 2)
#define HD_ 16
ATTN_FA(16)
#undef HD_
#define HD_ 32
ATTN_FA(32)
#undef HD_
#define HD_ 64
ATTN_FA(64)
ATTN_FA_OCC(64, 4)
ATTN_FA_R32(64)
#undef HD_
#define HD_ 128
ATTN_FA(128)
ATTN_FA_OCC(128, 3)
ATTN_FA_R32(128)
#undef HD_

// ---------------------------------------------------------------- attention variants (docs/cuda.md)
// dst[t, h, dstOff + d] = src[t, h, d'] for d < n, rows of dstRow / srcRow floats, heads dstHead / srcHead apart
// (srcHead 0: one head broadcast to all, MLA's shared k_pe); deinterleave: d' = 2d for d < n/2, 2(d − n/2) + 1 else
// (MLA's rope_interleave: pairs to halves, a view in HF, exact). A move of values: nothing is rounded.
extern "C" __global__ void copy_heads(float* dst, int dstRow, int dstHead, int dstOff, const float* src, int srcRow,
                                      int srcHead, int T, int heads, int n, int deinterleave) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * heads * n) return;
    int d = (int)(i % n);
    long long th = i / n;
    int h = (int)(th % heads), t = (int)(th / heads);
    int s = !deinterleave ? d : d < n / 2 ? 2 * d : 2 * (d - n / 2) + 1;
    dst[(long long)t * dstRow + (long long)h * dstHead + dstOff + d] = src[(long long)t * srcRow + (long long)h * srcHead + s];
}

// Llama 4's attention temperature tuning on x [T, width]: x · (log1p(floor((pos + 1) / floorScale)) · attnScale + 1),
// the factor in fp32 op by op (no contraction), the product rounded once (LowpLlama4.temperature).
extern "C" __global__ void temperature_scale(float* x, int T, int width, int pos0, float attnScale, float floorScale, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * width) return;
    int t = (int)(i / width);
    float p = __fadd_rn((float)(pos0 + t), 1.0f);
    float fl = floorf(__fdiv_rn(p, floorScale));
    float f = __fadd_rn(__fmul_rn(log1pf(fl), attnScale), 1.0f);
    x[i] = R(__fmul_rn(x[i], f), bf);
}
