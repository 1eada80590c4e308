package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;

import java.util.List;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

/**
 * A forward without probe copies captured once as a CUDA graph (driver API: cuStreamBeginCapture / cuStreamEndCapture
 * / cuGraphInstantiate) and replayed by one cuGraphLaunch, so the ~300 kernel launches of an 8B forward cost one.
 * The legacy default stream cannot be captured, so the capture runs the launches on a (non-blocking) stream of its
 * own; the token upload before a replay is followed by a context synchronisation. What the kernels read is fixed at
 * capture: the workspace buffers, the RoPE tables (kept here), the split-K scratch (its {@link SplitK#generation}) and
 * the kernels' scalar arguments (tokens count, position offset); the token ids are re-uploaded before each replay.
 * Only for resident models and forwards with no sink and no teacher. -Dmodeldiff.cuda.graphs=true, default off
 * (docs/cuda.md).
 */
final class CudaGraph implements AutoCloseable {
    /** What the captured forward depends on besides the workspace it lives in. */
    record Key(int T, int pos0, int scratchGeneration, boolean fp16) {
    }

    final Key key;
    private final CUstream stream;
    private final CUgraphExec exec;
    private final List<CUdeviceptr> keep;

    private CudaGraph(Key key, CUstream stream, CUgraphExec exec, List<CUdeviceptr> keep) {
        this.key = key;
        this.stream = stream;
        this.exec = exec;
        this.keep = keep;
    }

    /** -Dmodeldiff.cuda.graphs=true|false (default false until measured). */
    static boolean enabled() {
        return Boolean.parseBoolean(System.getProperty("modeldiff.cuda.graphs", "false"));
    }

    /** The launches {@code body} makes, captured (not run); {@code keep}: device buffers the graph reads, freed with it. */
    static CudaGraph capture(CudaRuntime rt, Key key, Runnable body, List<CUdeviceptr> keep) {
        CUstream s = new CUstream();
        // non-blocking: a blocking stream's capture would merge with the legacy stream (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
        // the caller orders host copies before a replay by a context synchronisation instead
        cuStreamCreate(s, jcuda.driver.CUstream_flags.CU_STREAM_NON_BLOCKING);
        CUgraph g = new CUgraph();
        CUgraphExec exec = new CUgraphExec();
        try {
            rt.setLaunchStream(s);
            // relaxed: the JCuda calls of other threads (probe copies of another pass) are not refused meanwhile
            cuStreamBeginCapture(s, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED);
            try {
                body.run();
            } finally {
                rt.setLaunchStream(null);
                cuStreamEndCapture(s, g);   // also ends a capture that failed midway
            }
            cuGraphInstantiate(exec, g, 0);
            cuGraphDestroy(g);
        } catch (RuntimeException e) {
            quietly(() -> cuGraphDestroy(g));
            quietly(() -> cuStreamDestroy(s));
            throw new IllegalStateException("cuda: capturing the forward as a CUDA graph failed (-Dmodeldiff.cuda.graphs=false"
                    + " runs without): " + e.getMessage(), e);
        }
        return new CudaGraph(key, s, exec, keep);
    }

    private static void quietly(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException ignored) {
            // cleaning up after a failure that is reported instead
        }
    }

    /** Runs the captured forward and waits for it. */
    void launch() {
        cuGraphLaunch(exec, stream);
        cuStreamSynchronize(stream);
    }

    @Override
    public void close() {
        cuStreamSynchronize(stream);
        cuGraphExecDestroy(exec);
        cuStreamDestroy(stream);
        for (CUdeviceptr p : keep) CudaRuntime.free(p);
    }
}
