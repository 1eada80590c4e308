// modeldiff's Hopper-only kernels (sm_90a: wgmma), compiled to PTX with -arch=compute_90a by build-ptx.sh into a
// module of their own: if the driver cannot load it, the other kernels still run (docs/cuda.md).
#include <cuda_bf16.h>
#include <stdint.h>
#include "tc_common.cuh"
typedef __nv_bfloat16 bf16;

// Shared-memory matrix descriptor: K-major tile of 128-byte rows with the 128-byte swizzle, 8-row groups 1024 bytes
// apart (stride byte offset), leading byte offset 16 (unused for swizzled K-major), start address >> 4.
__device__ __forceinline__ uint64_t wg_desc(unsigned addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }

// D[64×256] += A[64×16] · B[256×16]ᵀ, both K-major in shared memory; bf16 or fp16 operands (TY), fp32 accumulate.
#define WGMMA256(NAME, TY) __device__ __forceinline__ void NAME(float (&d)[128], uint64_t da, uint64_t db) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32." TY "." TY " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127]) \
                 : "l"(da), "l"(db), "r"(1)); \
}

WGMMA256(wgmma256_bf16, "bf16")
WGMMA256(wgmma256_f16, "f16")
template <typename T>
__device__ __forceinline__ void wgmma256(float (&d)[128], uint64_t da, uint64_t db) {
    if constexpr (Elem<T>::MODE == 2) wgmma256_f16(d, da, db);
    else wgmma256_bf16(d, da, db);
}

// C[M, N] = R(A[M, K] · W[N, K]ᵀ + bias[N]), A and W bf16 (gemm_wgmma) or fp16 (gemm_wgmma_f16) (K % 8 == 0, 16-byte aligned rows), fp32 accumulate.
// 128×256×64 block tile; 2 warpgroups, each 64 rows × 256 columns with wgmma m64n256k16 straight from shared memory;
// WG_ST-stage cp.async pipeline (zero-filled beyond M, N, K) with the next-but-one tile loading while the tensor
// cores work on this one (one wgmma group kept in flight). Grid: (M tiles, N tiles).
#define WG_BM 128
#define WG_BN 256
#define WG_ST 4
template <int MODE>
__device__ __forceinline__ void wg_epilogue(float* C, const float* bias, int M, int N, int row, int c0, float (&d)[128],
                                            float* res) {
#pragma unroll
    for (int j = 0; j < 32; j++) {
        store2<MODE>(C, bias, M, N, row, c0 + j * 8, d[4 * j], d[4 * j + 1], res);
        store2<MODE>(C, bias, M, N, row + 8, c0 + j * 8, d[4 * j + 2], d[4 * j + 3], res);
    }
}
// A warpgroup's accumulators out: raw to split-K's slice part[blockIdx.z] (no bias, no rounding), else C with bias and the
// rounding mode bf (0 fp32, 1 bf16, 2 fp16) and the residual res. Shared by gemm_wgmma and gemm_wgmma_ws.
__device__ __forceinline__ void wg_store(float* C, const float* bias, int M, int N, int row, int c0, float (&d)[128],
                                         float* res, float* part, int bf) {
    if (part) wg_epilogue<0>(part + (long long)blockIdx.z * M * N, nullptr, M, N, row, c0, d, nullptr);
    else if (bf == 1) wg_epilogue<1>(C, bias, M, N, row, c0, d, res);
    else if (bf == 2) wg_epilogue<2>(C, bias, M, N, row, c0, d, res);
    else wg_epilogue<0>(C, bias, M, N, row, c0, d, res);
}
// Split-K (part != null): block z covers K tiles [z·ktPer, (z+1)·ktPer) and writes its raw fp32 sums (no bias, no
// rounding) to part[z][M][N]; splitk_reduce (modeldiff_kernels.cu) then adds the slices in a fixed order.
template <typename T>
__device__ __forceinline__ void gemm_wgmma_impl(float* C, const T* A, const T* W, const float* bias, int M, int N, int K,
                                                int bf, float* part, int ktPer, float* res) {
    extern __shared__ unsigned char wg_smem[];
    const unsigned STAGE = (WG_BM + WG_BN) * 128;
    unsigned sb = (smem_u32(wg_smem) + 1023u) & ~1023u;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    int m0 = blockIdx.x * WG_BM, n0 = blockIdx.y * WG_BN;
    int KTall = (K + 63) / 64, kt0 = part ? blockIdx.z * ktPer : 0;
    int KT = part ? max(0, min(KTall, kt0 + ktPer) - kt0) : KTall;
    const T* A0 = A + kt0 * 64;   // the split's first column; K (the row stride) stays; columns beyond K are zero-filled
    const T* W0 = W + kt0 * 64;
    int Kend = K - kt0 * 64;      // columns left from the split's start
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;
#pragma unroll
    for (int s = 0; s < WG_ST - 2; s++) {
        if (s < KT) {
            load_tile64<WG_BM, 256>(sb + s * STAGE, A0, m0, M, s * 64, Kend, K, tid);
            load_tile64<WG_BN, 256>(sb + s * STAGE + WG_BM * 128, W0, n0, N, s * 64, Kend, K, tid);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        cp_async_wait<WG_ST - 3>();
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        int nk = kt + WG_ST - 2;   // its stage was read by the wgmma group of kt - 2, finished in every warpgroup
        if (nk < KT) {
            unsigned st = sb + (nk % WG_ST) * STAGE;
            load_tile64<WG_BM, 256>(st, A0, m0, M, nk * 64, Kend, K, tid);
            load_tile64<WG_BN, 256>(st + WG_BM * 128, W0, n0, N, nk * 64, Kend, K, tid);
        }
        cp_async_commit();
        unsigned As = sb + (kt % WG_ST) * STAGE + wg * 64 * 128, Bs = sb + (kt % WG_ST) * STAGE + WG_BM * 128;
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < 4; kk++) wgmma256<T>(d, wg_desc(As + kk * 32), wg_desc(Bs + kk * 32));
        wg_commit();
        wg_wait<1>();
    }
    wg_wait<0>();
    cp_async_wait<0>();
    int row = m0 + wg * 64 + (warp & 3) * 16 + (lane >> 2), c0 = n0 + (lane & 3) * 2;
    wg_store(C, bias, M, N, row, c0, d, res, part, bf);
}
extern "C" __global__ void __launch_bounds__(256, 1) gemm_wgmma(float* C, const bf16* A, const bf16* W, const float* bias,
                                                                 int M, int N, int K, int bf, float* part, int ktPer,
                                                                 float* res) {
    gemm_wgmma_impl<bf16>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}
extern "C" __global__ void __launch_bounds__(256, 1) gemm_wgmma_f16(float* C, const __half* A, const __half* W,
        const float* bias, int M, int N, int K, int bf, float* part, int ktPer, float* res) {
    gemm_wgmma_impl<__half>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}

// ---- gemm_wgmma_ws: the same product, warp-specialised (issue #18) -------------------------------------------------
// 384 threads: warpgroup 0 the producer (cp.async of the A and W tiles into a WS_ST-stage ring, the same 128B-swizzled
// K-major layout load_tile64 writes for gemm_wgmma), warpgroups 1 and 2 the consumers (64 rows × 256 columns each, as
// gemm_wgmma's two warpgroups). No block-wide barrier in the main loop: per stage a "full" mbarrier (expected count =
// the 128 producer threads; each thread's cp.async.mbarrier.arrive.noinc fires once its copies of the stage landed) and
// an "empty" one (expected count = the 8 consumer warps; a warp arrives once wgmma.wait_group says the wgmma group that
// read the stage is done). No setmaxnreg: the consumers fit the 168 registers a 384-thread block may have (ptxas -v:
// 154, no spills), and an .inc the pool cannot serve would hang the block. Same arguments, epilogue, zero-fill and split-K as gemm_wgmma (DeviceKernels switches by name).
#define WS_ST 4
#define WS_THREADS 384
__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// One arrive on bar once every cp.async this thread issued so far has landed (.noinc: counted in the expected count).
__device__ __forceinline__ void mbar_cp_async_arrive(unsigned bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try(unsigned bar, unsigned parity) {
    unsigned done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    return done != 0;
}
__device__ __forceinline__ unsigned long long globaltimer_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;\n" : "=l"(t));
    return t;
}
// Blocks until the barrier's phase of this parity has completed (acquire: the data it guards is visible after it).
// A wait past 2 s is a pipeline bug, not a slow copy: trap, so the launch fails with an error instead of hanging.
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    if (mbar_try(bar, parity)) return;
    unsigned long long t0 = globaltimer_ns();
    while (!mbar_try(bar, parity))
        if (globaltimer_ns() - t0 > 2000000000ull) __trap();
}
template <typename T>
__device__ __forceinline__ void gemm_wgmma_ws_impl(float* C, const T* A, const T* W, const float* bias, int M, int N, int K,
                                                   int bf, float* part, int ktPer, float* res) {
    extern __shared__ unsigned char wg_smem[];
    const unsigned STAGE = (WG_BM + WG_BN) * 128;
    unsigned sb = (smem_u32(wg_smem) + 1023u) & ~1023u;
    unsigned full = sb + WS_ST * STAGE, empty = full + WS_ST * 8;   // WS_ST mbarriers each, 8 bytes apiece
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    int m0 = blockIdx.x * WG_BM, n0 = blockIdx.y * WG_BN;
    int KTall = (K + 63) / 64, kt0 = part ? blockIdx.z * ktPer : 0;
    int KT = part ? max(0, min(KTall, kt0 + ktPer) - kt0) : KTall;
    if (tid == 0) {
        for (int s = 0; s < WS_ST; s++) {
            mbar_init(full + s * 8, 128);
            mbar_init(empty + s * 8, 8);
        }
    }
    __syncthreads();   // the barriers' initialisation is visible to every thread (the last block-wide barrier)
    if (wg == 0) {
        const T* A0 = A + kt0 * 64;   // as gemm_wgmma: the split's first column, row stride K, zero beyond Kend
        const T* W0 = W + kt0 * 64;
        int Kend = K - kt0 * 64;
        for (int kt = 0; kt < KT; kt++) {
            int s = kt % WS_ST, round = kt / WS_ST;
            if (round > 0) mbar_wait(empty + s * 8, (round - 1) & 1);   // the consumers are done with its last use
            unsigned st = sb + s * STAGE;
            load_tile64<WG_BM, 128>(st, A0, m0, M, kt * 64, Kend, K, tid);
            load_tile64<WG_BN, 128>(st + WG_BM * 128, W0, n0, N, kt * 64, Kend, K, tid);
            mbar_cp_async_arrive(full + s * 8);
        }
        // nothing of ours in flight when the warp exits (wait_all: these copies were never committed to a group)
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        return;
    }
    int cw = wg - 1;   // consumer warpgroup: rows cw·64 .. cw·64 + 63 of the block tile
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;
    unsigned s = 0, phase = 0;   // the stage of kt and the parity of its "full" phase, stepped without a division
    for (int kt = 0; kt < KT; kt++) {
        mbar_wait(full + s * 8, phase);
        // the stage was written through the generic proxy (cp.async); wgmma reads it through the async proxy
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        unsigned As = sb + s * STAGE + cw * 64 * 128, Bs = sb + s * STAGE + WG_BM * 128;
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < 4; kk++) wgmma256<T>(d, wg_desc(As + kk * 32), wg_desc(Bs + kk * 32));
        wg_commit();
        wg_wait<1>();   // the group of kt - 1 is done: its stage goes back to the producer
        __syncwarp();
        if (kt > 0 && lane == 0) mbar_arrive(empty + (s == 0 ? WS_ST - 1 : s - 1) * 8);
        if (++s == WS_ST) s = 0, phase ^= 1;
    }
    wg_wait<0>();
    int row = m0 + cw * 64 + (warp & 3) * 16 + (lane >> 2), c0 = n0 + (lane & 3) * 2;
    wg_store(C, bias, M, N, row, c0, d, res, part, bf);
}
extern "C" __global__ void __launch_bounds__(WS_THREADS, 1) gemm_wgmma_ws(float* C, const bf16* A, const bf16* W,
        const float* bias, int M, int N, int K, int bf, float* part, int ktPer, float* res) {
    gemm_wgmma_ws_impl<bf16>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}
extern "C" __global__ void __launch_bounds__(WS_THREADS, 1) gemm_wgmma_ws_f16(float* C, const __half* A, const __half* W,
        const float* bias, int M, int N, int K, int bf, float* part, int ktPer, float* res) {
    gemm_wgmma_ws_impl<__half>(C, A, W, bias, M, N, K, bf, part, ktPer, res);
}
