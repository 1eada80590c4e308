"""The one way the benchmark scripts (hf_bench.py, attn_bench.py, gemm_bench.py) time a CUDA call: one untimed call,
then `reps` calls between two CUDA events; milliseconds per call. Imported from the scripts' own folder."""


def time_cuda(fn, reps):
    import torch
    fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps
