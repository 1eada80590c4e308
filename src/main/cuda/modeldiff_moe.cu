// Mixture-of-experts kernels of the cuda passes (forward/cuda/CudaMoe.java, docs/cuda.md "MoE"): routing, grouping of
// the tokens' expert slots by expert (a counting sort), gather, grouped expert GEMMs over per-expert row ranges,
// the experts' activation and the weighted scatter-add in HF's order. Compiled to PTX (compute_90) by build-ptx.sh and
// loaded as a module of its own (CudaRuntime): if it fails to load, dense models still run.
//
// A "slot" is (token t, choice j), index t·k + j. After moe_place, the slots are laid out expert by expert: rows
// offsets[e] .. offsets[e+1]) of the grouped buffers belong to expert e, in token order; rowOf[slot] is a slot's row,
// slotOfRow[row] the inverse. bf = 1 rounds each op to bf16 where HF rounds (as modeldiff_kernels.cu).
#include <cuda_bf16.h>
#include <math.h>
#include "tc_common.cuh"

typedef __nv_bfloat16 bf16;

#define MOE_MAXE 512
#define MOE_MAXK 32

__device__ __forceinline__ float Rm(float x, int bf) {
    return bf ? __bfloat162float(__float2bfloat16_rn(x)) : x;
}

// ---------------------------------------------------------------- router logits
// C[T, E] = R(fp32(Σ a·w) + b): one warp per logit, the products summed in float64 (each product of two floats is exact
// there; the sum is the exact one to far below an fp32 ulp), rounded once to fp32, the bias added in fp32, then (round)
// rounded to bf16: lowp's linear. The router is tiny (E outputs), and routing is a discontinuity: summed this way the
// choice does not depend on a tensor-core accumulation order. W is [E, H], bf16 (wBf16) or fp32.
extern "C" __global__ void moe_router(float* C, const float* A, const void* W, int wBf16, const float* bias, int T, int E,
                                      int H, int round) {
    long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= (long long)T * E) return;   // warp-uniform
    int t = (int)(warp / E), e = (int)(warp % E);
    const float* a = A + (long long)t * H;
    double acc = 0.0;
    if (wBf16) {
        const bf16* w = (const bf16*)W + (long long)e * H;
        for (int i = lane; i < H; i += 32) acc += (double)a[i] * (double)__bfloat162float(w[i]);
    } else {
        const float* w = (const float*)W + (long long)e * H;
        for (int i = lane; i < H; i += 32) acc += (double)a[i] * (double)w[i];
    }
    for (int d = 16; d > 0; d >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, d);
    if (lane == 0) {
        float v = (float)acc;
        if (bias) v = __fadd_rn(v, bias[e]);
        C[(long long)t * E + e] = Rm(v, round);
    }
}

// ---------------------------------------------------------------- routing
// The k largest of v[0..n), largest first; of equal values at the cut the lower index; equal values inside the k are
// listed higher index first (LowpMoe.topK: torch.topk's order on CUDA in HF's traces).
__device__ void moe_topk(const float* v, int n, int k, int* out) {
    unsigned taken[MOE_MAXE / 32];
    for (int i = 0; i < MOE_MAXE / 32; i++) taken[i] = 0u;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n; e++)
            if (!((taken[e >> 5] >> (e & 31)) & 1u) && (best < 0 || v[e] > v[best])) best = e;
        if (best < 0) best = 0;
        taken[best >> 5] |= 1u << (best & 31);
        out[j] = best;
    }
    for (int a = 1; a < k; a++)
        for (int b = a; b > 0 && v[out[b]] == v[out[b - 1]] && out[b] > out[b - 1]; b--) {
            int t = out[b]; out[b] = out[b - 1]; out[b - 1] = t;
        }
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }

// torch.softmax in float32 over v[0..n) into p: exp(x − max), fp32 sum, one division each.
__device__ void moe_softmax(const float* v, int n, float* p) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, v[i]);
    float s = 0.f;
    for (int i = 0; i < n; i++) { p[i] = expf(v[i] - mx); s += p[i]; }
    for (int i = 0; i < n; i++) p[i] = p[i] / s;
}

// One block of one thread per token (exactly the scalar definition, LowpMoe.route); its score arrays live in dynamic
// shared memory (3·E + nGroup floats), not in local memory. router: 0 softmax→top-k (Mixtral, Qwen3-MoE, OLMoE),
// 1 top-k→softmax (gpt-oss), 2 sigmoid with selection-only correction bias and group-limited top-k (GLM-4.5,
// DeepSeek-V3), 3 top-k→sigmoid (Llama 4). flags: 1 renormalise over the k, 2 weights rounded to the dtype (HF casts
// them), 4 moe.softmax_before_topk, 8 moe.bias_in_weights, 16 forced: the experts are read from idsF (the teacher's)
// instead of chosen. Outputs: ids [T, k] (int), idsF [T, k] (the same as floats: the "experts" probe), weights [T, k].
// E ≤ MOE_MAXE and k ≤ MOE_MAXK (the launcher refuses more).
extern "C" __global__ void moe_route(const float* logits, const float* corrBias, float* idsF, int* ids, float* weights,
                                     int T, int E, int k, int router, int flags, float scale, int nGroup, int topkGroup,
                                     int bf) {
    extern __shared__ float route_smem[];
    int t = blockIdx.x;
    if (t >= T || threadIdx.x != 0) return;
    const float* row = logits + (long long)t * E;
    bool renorm = flags & 1, inDtype = flags & 2, smBefore = flags & 4, biasInW = flags & 8, forced = flags & 16;
    float* v = route_smem;
    float* choice = route_smem + E;
    float* masked = route_smem + 2 * E;
    float* group = route_smem + 3 * E;
    int top[MOE_MAXK];
    float wk[MOE_MAXK];
    if (router == 2) {
        for (int e = 0; e < E; e++) {
            v[e] = sigmoidf_(row[e]);
            choice[e] = v[e] + (corrBias ? corrBias[e] : 0.f);
        }
        if (forced) {
            for (int j = 0; j < k; j++) top[j] = (int)idsF[t * k + j];
        } else {
            for (int e = 0; e < E; e++) masked[e] = choice[e];
            if (nGroup > 1) {
                int per = E / nGroup;
                for (int g = 0; g < nGroup; g++) {
                    int best[2];
                    int nb = per < 2 ? per : 2;
                    moe_topk(choice + g * per, per, nb, best);
                    group[g] = 0.f;
                    for (int b = 0; b < nb; b++) group[g] += choice[g * per + best[b]];
                }
                int keepIdx[MOE_MAXK];
                unsigned keep[MOE_MAXE / 32];
                for (int i = 0; i < MOE_MAXE / 32; i++) keep[i] = 0u;
                moe_topk(group, nGroup, topkGroup, keepIdx);
                for (int i = 0; i < topkGroup; i++) keep[keepIdx[i] >> 5] |= 1u << (keepIdx[i] & 31);
                for (int e = 0; e < E; e++) {
                    int g = e / per;
                    if (!((keep[g >> 5] >> (g & 31)) & 1u)) masked[e] = -INFINITY;
                }
            }
            moe_topk(masked, E, k, top);
        }
        const float* from = biasInW ? choice : v;
        for (int j = 0; j < k; j++) wk[j] = from[top[j]];
        if (renorm) {
            float s = 0.f;
            for (int j = 0; j < k; j++) s += wk[j];
            s += 1e-20f;
            for (int j = 0; j < k; j++) wk[j] = wk[j] / s;
        }
        for (int j = 0; j < k; j++) wk[j] = wk[j] * scale;     // float32 (HF keeps them so)
    } else if (router == 3) {
        for (int e = 0; e < E; e++) v[e] = row[e];
        if (forced) for (int j = 0; j < k; j++) top[j] = (int)idsF[t * k + j];
        else moe_topk(v, E, k, top);
        for (int j = 0; j < k; j++) wk[j] = Rm(sigmoidf_(v[top[j]]), bf);
        if (renorm) {
            float s = 0.f;
            for (int j = 0; j < k; j++) s += wk[j];
            for (int j = 0; j < k; j++) wk[j] = Rm(wk[j] / s, bf);
        }
        if (scale != 1.f) for (int j = 0; j < k; j++) wk[j] = Rm(wk[j] * scale, bf);
    } else {
        moe_softmax(row, E, v);
        if (forced) for (int j = 0; j < k; j++) top[j] = (int)idsF[t * k + j];
        else moe_topk(v, E, k, top);
        if (router == 1 && !smBefore) {
            float sel[MOE_MAXK];
            for (int j = 0; j < k; j++) sel[j] = row[top[j]];
            moe_softmax(sel, k, wk);
        } else {
            for (int j = 0; j < k; j++) wk[j] = v[top[j]];
        }
        if (renorm) {
            float s = 0.f;
            for (int j = 0; j < k; j++) s += wk[j];
            for (int j = 0; j < k; j++) wk[j] = wk[j] / s;
        }
        for (int j = 0; j < k; j++) {
            float x = scale == 1.f ? wk[j] : wk[j] * scale;
            wk[j] = inDtype ? Rm(x, bf) : x;
        }
    }
    for (int j = 0; j < k; j++) {
        ids[t * k + j] = top[j];
        idsF[t * k + j] = (float)top[j];
        weights[t * k + j] = wk[j];
    }
}

// ---------------------------------------------------------------- grouping (counting sort, deterministic)
// One warp per expert: counts[e] = number of slots choosing e.
extern "C" __global__ void moe_count(const int* ids, int n, int E, int* counts) {
    int e = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (e >= E) return;   // warp-uniform
    int c = 0;
    for (int base = 0; base < n; base += 32) {
        int i = base + lane;
        c += __popc(__ballot_sync(0xffffffffu, i < n && ids[i] == e));
    }
    if (lane == 0) counts[e] = c;
}

// One warp per expert: offsets[e] = Σ counts[< e] (offsets[E] = n), and each slot of e its row, in slot order.
extern "C" __global__ void moe_place(const int* ids, int n, int E, const int* counts, int* offsets, int* rowOf,
                                     int* slotOfRow) {
    int e = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (e >= E) return;
    int off = 0;
    for (int i = lane; i < e; i += 32) off += counts[i];
    for (int d = 16; d > 0; d >>= 1) off += __shfl_xor_sync(0xffffffffu, off, d);
    if (lane == 0) {
        offsets[e] = off;
        if (e == E - 1) offsets[E] = off + counts[e];
    }
    int rank = 0;
    for (int base = 0; base < n; base += 32) {
        int i = base + lane;
        bool m = i < n && ids[i] == e;
        unsigned mask = __ballot_sync(0xffffffffu, m);
        if (m) {
            int r = off + rank + __popc(mask & ((1u << lane) - 1u));
            rowOf[i] = r;
            slotOfRow[r] = i;
        }
        rank += __popc(mask);
    }
}

// xg[row] = x[token of row] (Llama 4: R(x · the slot's weight), the expert's input scaled); xgB its bf16 copy.
extern "C" __global__ void moe_gather(float* xg, bf16* xgB, const float* x, const int* slotOfRow, const float* weights,
                                      int n, int k, int H, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)n * H) return;
    int r = (int)(i / H), j = (int)(i % H);
    int s = slotOfRow[r];
    float v = x[(long long)(s / k) * H + j];
    if (weights) v = Rm(v * weights[s], bf);
    xg[i] = v;
    if (xgB) xgB[i] = __float2bfloat16_rn(v);
}

// ---------------------------------------------------------------- grouped GEMMs
// C[rows of e] = A[rows of e] · W[e]ᵀ (+ bias[e]) for every expert e at once: W [E, N, K], bias [E, N] (or null).
// Block x is a tile of BM rows of one expert (the schedule walks the experts' row counts: tiles of an expert never
// straddle into the next; the grid has ⌈n/BM⌉ + E blocks in x, the unused ones exit), block y a tile of N.
// Epilogue: R(acc), then with a bias R(R(acc) + b) (gpt-oss: `x @ W[e] + b`, two rounded ops).
__device__ __forceinline__ bool moe_tile(const int* offsets, int E, int BM, int* e_, int* m0_, int* mEnd_) {
    int t = blockIdx.x;
    for (int e = 0; e < E; e++) {
        int cnt = offsets[e + 1] - offsets[e];
        int tiles = (cnt + BM - 1) / BM;
        if (t < tiles) {
            *e_ = e;
            *m0_ = offsets[e] + t * BM;
            *mEnd_ = offsets[e + 1];
            return true;
        }
        t -= tiles;
    }
    return false;
}

__device__ __forceinline__ float moe_epi(float v, const float* bias, int col, int bf) {
    v = Rm(v, bf);
    return bias ? Rm(v + bias[col], bf) : v;
}

#define MF_BM 64
#define MF_BN 64
#define MF_BK 16

// FFMA (fp32 accumulate): cuda:fp32, and the bf16 fallback (K % 8 != 0 or no bf16 copy of A). 64×64 tiles.
template <typename WT>
__device__ void moe_gemm_ffma(float* C, const float* A, const WT* Wall, const float* biasAll, const int* offsets, int E,
                              int N, int K, int bf) {
    __shared__ float As[MF_BK][MF_BM + 4];
    __shared__ float Ws[MF_BK][MF_BN + 4];
    __shared__ int sE, sM0, sEnd;
    int tid = threadIdx.x;
    if (tid == 0) {
        int e, m0, end;
        if (!moe_tile(offsets, E, MF_BM, &e, &m0, &end)) e = -1;
        sE = e; sM0 = m0; sEnd = end;
    }
    __syncthreads();
    int e = sE;
    if (e < 0) return;   // block-uniform
    int m0 = sM0, M = sEnd, n0 = blockIdx.y * MF_BN;
    const WT* W = Wall + (long long)e * N * K;
    const float* bias = biasAll ? biasAll + (long long)e * N : nullptr;
    int tr = tid / 16, tc = tid % 16;
    float acc[4][4] = {};
    ffma_tile64(acc, As, Ws, A, W, m0, M, n0, N, K, tid);
    for (int i = 0; i < 4; i++) {
        int gm = m0 + tr + 16 * i;
        if (gm >= M) continue;
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tc + 16 * j;
            if (gn >= N) continue;
            C[(long long)gm * N + gn] = moe_epi(acc[i][j], bias, gn, bf);
        }
    }
}
extern "C" __global__ void __launch_bounds__(256) moe_gemm_f32(float* C, const float* A, const float* W, const float* bias,
                                                               const int* offsets, int E, int N, int K, int bf) {
    moe_gemm_ffma<float>(C, A, W, bias, offsets, E, N, K, bf);
}
extern "C" __global__ void __launch_bounds__(256) moe_gemm_bf16w(float* C, const float* A, const bf16* W, const float* bias,
                                                                 const int* offsets, int E, int N, int K, int bf) {
    moe_gemm_ffma<bf16>(C, A, W, bias, offsets, E, N, K, bf);
}

// bf16 tensor cores: gemm_mma's tiles (128×256×64, 8 warps of 64×64, mma.sync m16n8k16 from ldmatrix over
// 128-byte-swizzled shared memory, 4-stage cp.async pipeline, zero-fill beyond the expert's rows, N and K) with the
// expert schedule above. A and W bf16, K % 8 == 0 (the launcher guarantees it).
#define MG_BM 128
#define MG_BN 256
#define MG_ST 4
extern "C" __global__ void __launch_bounds__(256, 1) moe_gemm_mma(float* C, const bf16* A, const bf16* Wall,
                                                                   const float* biasAll, const int* offsets, int E, int N,
                                                                   int K, int bf) {
    extern __shared__ unsigned char moe_smem[];
    __shared__ int sE, sM0, sEnd;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    if (tid == 0) {
        int e, m0, end;
        if (!moe_tile(offsets, E, MG_BM, &e, &m0, &end)) e = -1;
        sE = e; sM0 = m0; sEnd = end;
    }
    __syncthreads();
    int e = sE;
    if (e < 0) return;
    int m0 = sM0, M = sEnd, n0 = blockIdx.y * MG_BN;
    const bf16* W = Wall + (long long)e * N * K;
    const float* bias = biasAll ? biasAll + (long long)e * N : nullptr;
    unsigned sb = (smem_u32(moe_smem) + 1023u) & ~1023u;
    int wm = warp >> 2, wn = warp & 3;
    int KT = (K + 63) / 64;
    float acc[4][8][4];
    mma_mainloop<bf16, MG_BM, MG_BN, MG_ST>(acc, sb, A, W, m0, M, n0, N, KT, K, K, tid);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row = m0 + wm * 64 + i * 16 + (lane >> 2) + 8 * h, col = n0 + wn * 64 + j * 8 + (lane & 3) * 2;
                if (row >= M) continue;
                float* p = C + (long long)row * N;
                if (col < N) p[col] = moe_epi(acc[i][j][2 * h], bias, col, bf);
                if (col + 1 < N) p[col + 1] = moe_epi(acc[i][j][2 * h + 1], bias, col + 1, bf);
            }
}

// ---------------------------------------------------------------- the experts' activation
// gu [rows, 2·ff]: gate in the first ff columns, up in the last (the upload de-interleaves gpt-oss's columns).
// mode 0: R(act(gate) · up) with act as mlp_act's kind (0 gelu, 1 gelu tanh, 2 silu, 3 relu², 4 relu; HF's gelu_new
// formula op by op when geluNew in bf16); mode 1: gpt-oss's clamped SwiGLU (gate ≤ limit, |up| ≤ limit), mode 2 the
// same unclamped (mlp.no_clamp): R(R(up + 1) · R(gate · R(sigmoid(R(gate · alpha))))).
__device__ float moe_gelu_new(float x, int bf) {
    float cube = Rm(Rm(x * x, bf) * x, bf);
    float inner = Rm(x + Rm(0.044715f * cube, bf), bf);
    float t = Rm(tanhf(Rm(0.7978845608028654f * inner, bf)), bf);
    return Rm(Rm(0.5f * x, bf) * Rm(1.f + t, bf), bf);
}
extern "C" __global__ void moe_act(float* out, bf16* outB, const float* gu, long long rows, int ff, int kind, int geluNew,
                                   int mode, float alpha, float limit, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * ff) return;
    long long r = i / ff;
    int j = (int)(i % ff);
    float g = gu[r * 2 * ff + j], u = gu[r * 2 * ff + ff + j], y;
    if (mode == 0) {
        float a;
        switch (kind) {
            case 0: a = Rm(g * 0.5f * (1.f + erff(g * 0.70710678118654752f)), bf); break;
            case 1:
                if (geluNew && bf) a = moe_gelu_new(g, bf);
                else a = Rm(0.5f * g * (1.f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))), bf);
                break;
            case 2: a = Rm(g / (1.f + expf(-g)), bf); break;
            case 3: { float q = fmaxf(g, 0.f); a = Rm(q * q, bf); break; }
            default: a = fmaxf(g, 0.f);
        }
        y = Rm(a * u, bf);
    } else {
        if (mode == 1) {
            g = fminf(g, limit);
            u = fmaxf(-limit, fminf(u, limit));
        }
        float sg = Rm(1.f / (1.f + expf(-Rm(g * alpha, bf))), bf);
        float glu = Rm(g * sg, bf);
        y = Rm(Rm(u + 1.f, bf) * glu, bf);
    }
    out[i] = y;
    if (outB) outB[i] = __float2bfloat16_rn(y);
}

// ---------------------------------------------------------------- weighted scatter-add, HF's order
// out[t] = the token's experts in ascending expert id, each R(y · w) added by index_add_ in the dtype: acc = R(acc + c)
// from zero. sumFp32 (Llama 4, the weight already scaled the input): the k outputs summed in fp32, rounded once.
extern "C" __global__ void moe_scatter(float* out, const float* y, const int* rowOf, const int* ids, const float* w,
                                       int T, int k, int H, int sumFp32, int bf) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * H) return;
    int t = (int)(i / H), j = (int)(i % H);
    int order[MOE_MAXK];
    for (int a = 0; a < k; a++) {
        order[a] = a;
        for (int b = a; b > 0 && ids[t * k + order[b]] < ids[t * k + order[b - 1]]; b--) {
            int q = order[b]; order[b] = order[b - 1]; order[b - 1] = q;
        }
    }
    float acc = 0.f;
    for (int a = 0; a < k; a++) {
        int s = t * k + order[a];
        float v = y[(long long)rowOf[s] * H + j];
        if (sumFp32) acc += v;
        else acc = Rm(acc + Rm(v * w[s], bf), bf);
    }
    out[i] = sumFp32 ? Rm(acc, bf) : acc;
}
