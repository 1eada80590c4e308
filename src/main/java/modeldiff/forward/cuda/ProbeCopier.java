package modeldiff.forward.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static jcuda.driver.JCudaDriver.*;

/**
 * Copies probes to the host while the GPU computes on. Kernels run on the legacy default stream; a probe whose buffer
 * is overwritten later is first snapshotted on that stream (device-to-device, into a staging ring), then copied to a
 * page-locked host ring (cuMemAllocHost) on the non-blocking copy stream, ordered by events. The sink gets each probe
 * as a FloatBuffer over the page-locked memory once its copy completed: at the latest when the ring needs the space,
 * opportunistically at {@link #poll}, and the rest at {@link #drain}. Staging space is reused once its copy is done
 * (the compute stream waits on that copy's event, the host does not).
 *
 * <p>Capacities: the host ring holds min(what one forward needs, {@code -Dmodeldiff.cuda.pinnedBytes}, default
 * 4 GiB, and at most 2 GiB, JCuda's limit for one page-locked block), at least the largest probe; the staging ring min(what the staged probes need, 1 GiB), at least the largest
 * staged probe. Both are kept (and grown) between forwards. A probe over 2 GiB (more than one ByteBuffer) is copied
 * synchronously instead.
 */
final class ProbeCopier implements AutoCloseable {
    private final CudaRuntime rt;
    private Pointer host;
    private long hostCap;
    private CUdeviceptr stage;
    private long stageCap;
    private long hostHead, stageHead;
    private final ArrayDeque<Pending> pending = new ArrayDeque<>();
    private final List<Staged> staged = new ArrayList<>();
    private CudaPass.ProbeSink sink;

    private static final class Pending {
        final String name;
        final int rows, cols;
        final long hostOff, bytes;
        CUevent done;

        Pending(String name, int rows, int cols, long hostOff, long bytes) {
            this.name = name;
            this.rows = rows;
            this.cols = cols;
            this.hostOff = hostOff;
            this.bytes = bytes;
        }
    }

    private record Staged(long off, long len, CUevent done) {
    }

    /** The largest single page-locked allocation JCuda can make (it returns it as one ByteBuffer). */
    static final long MAX_PINNED_BLOCK = Integer.MAX_VALUE & ~4095L;

    ProbeCopier(CudaRuntime rt) {
        this.rt = rt;
    }

    /** Sizes the rings for one forward (grows them when needed) and sets the sink. */
    void begin(CudaPass.ProbeSink sink, long hostNeed, long largest, long stageNeed, long largestStaged) {
        this.sink = sink;
        if (sink == null) return;
        long maxPinned = DeviceModel.parseBytes(System.getProperty("modeldiff.cuda.pinnedBytes", "4g"));
        // JCuda wraps cuMemAllocHost's memory in one ByteBuffer: at most 2 GiB − 1 per allocation
        long wantHost = Math.min(MAX_PINNED_BLOCK, Math.max(Math.min(hostNeed, maxPinned), largest));
        if (wantHost > hostCap) {
            if (host != null) cuMemFreeHost(host);
            host = new Pointer();
            cuMemAllocHost(host, wantHost);
            hostCap = wantHost;
        }
        long wantStage = Math.max(Math.min(stageNeed, 1L << 30), Math.min(largestStaged, Integer.MAX_VALUE));
        if (wantStage > stageCap) {
            if (stage != null) {
                CudaRuntime.sync();
                CudaRuntime.free(stage);
            }
            stage = CudaRuntime.alloc(wantStage);
            stageCap = wantStage;
        }
        hostHead = 0;
        stageHead = 0;
    }

    /**
     * Queues the copy of rows × cols floats at {@code buf}; stable = nothing overwrites buf before the forward ends
     * (no snapshot needed).
     */
    void probe(String name, CUdeviceptr buf, int rows, int cols, boolean stable) {
        if (sink == null) return;
        long bytes = 4L * rows * cols;
        if (bytes > Integer.MAX_VALUE || bytes > hostCap || (!stable && bytes > stageCap)) {   // too large: synchronous
            drain();
            float[] f = new float[Math.multiplyExact(rows, cols)];
            cuMemcpyDtoH(Pointer.to(f), buf, bytes);
            sink.accept(name, cols, FloatBuffer.wrap(f));
            return;
        }
        Pending p = start(name, rows, cols);
        CUdeviceptr src = buf;
        if (!stable) {
            long off = stageAlloc(bytes);
            src = stage.withByteOffset(off);
            cuMemcpyDtoDAsync(src, buf, bytes, null);
            copy(p, src, 0, bytes);
            staged.add(new Staged(off, bytes, p.done));
        } else {
            copy(p, src, 0, bytes);
        }
    }

    /** A probe copied in row chunks as they are computed ({@link #rows}); the buffer must stay unchanged. */
    Object begin(String name, int rows, int cols) {
        if (sink == null) return null;
        long bytes = 4L * rows * cols;
        if (bytes > Integer.MAX_VALUE || bytes > hostCap) return new Object[]{name, rows, cols};   // synchronous at end
        return start(name, rows, cols);
    }

    /** Copies rows [r0, r0 + n) of a begun probe from buf (a [rows, cols] buffer) once the compute stream gets here. */
    void rows(Object handle, CUdeviceptr buf, int r0, int n) {
        if (!(handle instanceof Pending p) || n == 0) return;
        long off = 4L * r0 * p.cols;
        copy(p, buf.withByteOffset(off), off, 4L * n * p.cols);
    }

    /** Ends a begun probe (for the synchronous fallback: copies it now). */
    void end(Object handle, CUdeviceptr buf) {
        if (handle instanceof Object[] a) {
            int rows = (Integer) a[1], cols = (Integer) a[2];
            drain();
            float[] f = new float[Math.multiplyExact(rows, cols)];
            cuMemcpyDtoH(Pointer.to(f), buf, 4L * rows * cols);
            sink.accept((String) a[0], cols, FloatBuffer.wrap(f));
        }
    }

    private Pending start(String name, int rows, int cols) {
        long bytes = 4L * rows * cols;
        long off = hostHead;
        if (off + bytes > hostCap) off = 0;
        while (!pending.isEmpty() && overlapsPending(off, bytes)) deliver(pending.poll());
        hostHead = off + bytes;
        Pending p = new Pending(name, rows, cols, off, bytes);
        pending.add(p);
        return p;
    }

    private boolean overlapsPending(long off, long len) {
        for (Pending p : pending) if (p.hostOff < off + len && off < p.hostOff + p.bytes) return true;
        return false;
    }

    /** Copy stream: after the compute stream's work so far, device src → host ring at the probe's offset + rel. */
    private void copy(Pending p, CUdeviceptr src, long rel, long bytes) {
        var cs = rt.copyStream();
        CUevent ready = CudaRuntime.event();
        cuEventRecord(ready, null);
        cuStreamWaitEvent(cs, ready, 0);
        cuEventDestroy(ready);   // released once the wait is satisfied
        cuMemcpyDtoHAsync(host.withByteOffset(p.hostOff + rel), src, bytes, cs);
        if (p.done == null) p.done = CudaRuntime.event();
        cuEventRecord(p.done, cs);
    }

    private long stageAlloc(long bytes) {
        long off = stageHead;
        if (off + bytes > stageCap) off = 0;
        for (Iterator<Staged> it = staged.iterator(); it.hasNext(); ) {
            Staged s = it.next();
            if (s.off < off + bytes && off < s.off + s.len) {
                cuStreamWaitEvent(null, s.done, 0);   // the compute stream waits for that copy, not the host
                it.remove();
            }
        }
        stageHead = off + bytes;
        return off;
    }

    private void deliver(Pending p) {
        if (p.done != null) {
            cuEventSynchronize(p.done);
            staged.removeIf(s -> s.done == p.done);
            cuEventDestroy(p.done);
        }
        FloatBuffer fb = host.getByteBuffer(p.hostOff, p.bytes).order(ByteOrder.nativeOrder()).asFloatBuffer();
        sink.accept(p.name, p.cols, fb);
    }

    /** Delivers the probes whose copies are complete (oldest first), without waiting. */
    void poll() {
        while (!pending.isEmpty()) {
            Pending p = pending.peek();
            if (p.done != null) {
                try {
                    cuEventQuery(p.done);   // CUDA_SUCCESS, or throws CUDA_ERROR_NOT_READY
                } catch (CudaException notReady) {
                    return;
                }
            }
            deliver(pending.poll());
        }
    }

    /** Waits for and delivers every queued probe. */
    void drain() {
        while (!pending.isEmpty()) deliver(pending.poll());
    }

    @Override
    public void close() {
        drain();
        if (host != null) cuMemFreeHost(host);
        host = null;
        hostCap = 0;
        if (stage != null) {
            CudaRuntime.sync();
            CudaRuntime.free(stage);
        }
        stage = null;
        stageCap = 0;
    }
}
