package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static jcuda.driver.JCudaDriver.*;

/**
 * The process's one CUDA device, through JCuda's driver API only: the primary context of device 0, made current on
 * every calling thread, and the module of modeldiff's own kernels (PTX built from src/main/cuda by nvcc during the
 * Maven build, packaged at {@value #PTX_RESOURCE}). JCublas is not used (the GPU box has no libcublas.so.12).
 *
 * {@link #get()} never throws for a missing GPU, driver, native library or PTX: it records the reason, which
 * {@link #unavailableReason()} returns and the passes put into their "unavailable" error.
 */
public final class CudaRuntime {
    public static final String PTX_RESOURCE = "/cuda/modeldiff_kernels.ptx";
    /** Hopper-only kernels (wgmma, PTX for sm_90a): optional, loaded into a module of their own. */
    public static final String PTX_SM90A_RESOURCE = "/cuda/modeldiff_wgmma.ptx";
    /** The MoE kernels (modeldiff_moe.cu): optional, a module of their own, so dense models run if it fails. */
    public static final String PTX_MOE_RESOURCE = "/cuda/modeldiff_moe.ptx";

    private static CudaRuntime instance;
    private static String failure;
    /** The runtimes of device-list slots beyond the primary one, by "ordinal#occurrence" (made once per process). */
    private static final Map<String, CudaRuntime> slots = new HashMap<>();
    /** The runtime {@link #get()} returns on this thread while a split forward works on another device ({@link #use}). */
    private static final ThreadLocal<CudaRuntime> current = new ThreadLocal<>();

    public final CUdevice device;
    public final CUcontext context;
    public final String deviceName;
    /** The CUDA device ordinal. */
    public final int ordinal;
    /** A context of our own (cuCtxCreate: a second slot on a device already listed), not the device's primary one. */
    public final boolean created;
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<String, Integer> dynamicSmem = new HashMap<>();
    /** Why the sm_90a module is not loaded (null when it is). */
    public final String sm90aFailure;
    /** Why the MoE module is not loaded (null when it is). */
    public final String moeFailure;
    /** Non-blocking streams (no implicit synchronisation with the legacy default stream, where kernels run). */
    private CUstream copyStream, uploadStream;

    private CudaRuntime(byte[] ptx) {
        this(ptx, 0, false);
    }

    /**
     * Device {@code ordinal}'s primary context, or (created) a context of our own on it: two slots of one device
     * ("0,0") are two contexts, so a split forward on one GPU crosses a real context boundary.
     */
    private CudaRuntime(byte[] ptx, int ordinal, boolean created) {
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        int[] count = new int[1];
        cuDeviceGetCount(count);
        if (count[0] == 0) throw new IllegalStateException("no CUDA device");
        if (ordinal >= count[0]) throw new IllegalStateException("no CUDA device " + ordinal + " (this host has " + count[0] + ")");
        this.ordinal = ordinal;
        this.created = created;
        device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        String n = new String(name, java.nio.charset.StandardCharsets.US_ASCII);
        deviceName = n.indexOf(0) >= 0 ? n.substring(0, n.indexOf(0)) : n;
        context = new CUcontext();
        if (created) cuCtxCreate(context, 0, device);   // pushed and current; set current again below
        else cuDevicePrimaryCtxRetain(context, device);
        cuCtxSetCurrent(context);
        CUmodule module = new CUmodule();
        cuModuleLoadData(module, ptx);
        modules.add(module);
        String why = null;
        try {
            byte[] ptx90a = loadPtx(PTX_SM90A_RESOURCE);
            if (ptx90a == null) why = "no " + PTX_SM90A_RESOURCE;
            else {
                CUmodule m = new CUmodule();
                cuModuleLoadData(m, ptx90a);
                modules.add(m);
            }
        } catch (Throwable t) {
            why = t.getClass().getSimpleName() + ": " + String.valueOf(t.getMessage()).lines().findFirst().orElse("");
        }
        sm90aFailure = why;
        moeFailure = loadOptional(PTX_MOE_RESOURCE);
    }

    /** Loads an optional module; null when loaded, else why not. */
    private String loadOptional(String resource) {
        try {
            byte[] ptx = loadPtx(resource);
            if (ptx == null) return "no " + resource;
            CUmodule m = new CUmodule();
            cuModuleLoadData(m, ptx);
            modules.add(m);
            return null;
        } catch (Throwable t) {
            return t.getClass().getSimpleName() + ": " + String.valueOf(t.getMessage()).lines().findFirst().orElse("");
        }
    }

    /**
     * The runtime, or null when CUDA cannot be used here ({@link #unavailableReason()} says why): device 0's primary
     * context, or, while a split forward works on another slot, that slot's runtime ({@link #use}). Its context is
     * made current on the calling thread.
     */
    public static synchronized CudaRuntime get() {
        CudaRuntime c = current.get();
        if (c != null) {
            c.makeCurrent();
            return c;
        }
        if (instance != null) {
            instance.makeCurrent();
            return instance;
        }
        if (failure != null) return null;
        try {
            byte[] ptx = loadPtx(PTX_RESOURCE);
            if (ptx == null) {
                failure = "kernels not built (no " + PTX_RESOURCE + " on the class path: the build found no nvcc)";
                return null;
            }
            instance = new CudaRuntime(ptx);
        } catch (UnsatisfiedLinkError t) {
            // JCuda's driver library links against libcuda.so, which only an NVIDIA driver installs.
            failure = "no NVIDIA GPU driver (JCuda could not load libcuda: " + String.valueOf(t.getMessage()).lines().findFirst().orElse("") + ")";
            return null;
        } catch (Throwable t) {   // CudaException (no device), ...
            failure = t.getClass().getSimpleName() + ": " + String.valueOf(t.getMessage()).lines().findFirst().orElse("");
            return null;
        }
        return instance;
    }

    /**
     * Makes {@code rt} this thread's runtime ({@link #get()} returns it) and its context current; null goes back to
     * the primary runtime. A split forward calls it at every device boundary and with null when it ends.
     */
    public static synchronized void use(CudaRuntime rt) {
        if (rt == null || rt == instance) current.remove();
        else current.set(rt);
        CudaRuntime now = rt != null ? rt : instance;
        if (now != null) now.makeCurrent();
    }

    /**
     * The runtimes of a device list, one per slot: the first time an ordinal is listed its primary context (ordinal
     * 0's is the process's runtime), each repeat a context created for it. Peer access is enabled between distinct
     * devices that allow it (cuDeviceCanAccessPeer); copies between slots work either way (cuMemcpyPeerAsync stages
     * through the host without it). A device that does not exist or a context that cannot be made is a
     * BadInputException naming the slot.
     */
    public static synchronized List<CudaRuntime> devices(int[] ordinals) {
        get();
        CudaRuntime primary = instance;
        if (primary == null) throw new modeldiff.model.BadInputException("cuda unavailable: " + unavailableReason());
        List<CudaRuntime> out = new ArrayList<>();
        Map<Integer, Integer> seen = new HashMap<>();
        try {
            for (int d : ordinals) {
                int occurrence = seen.merge(d, 1, Integer::sum) - 1;
                if (d == 0 && occurrence == 0) {
                    out.add(primary);
                    continue;
                }
                String key = d + "#" + occurrence;
                CudaRuntime rt = slots.get(key);
                if (rt == null) {
                    rt = new CudaRuntime(loadPtx(PTX_RESOURCE), d, occurrence > 0);
                    slots.put(key, rt);
                }
                out.add(rt);
            }
            for (CudaRuntime a : out)
                for (CudaRuntime b : out)
                    if (a.ordinal != b.ordinal) a.enablePeerAccess(b);
        } catch (IOException | RuntimeException e) {
            throw new modeldiff.model.BadInputException("cuda devices " + java.util.Arrays.toString(ordinals) + ": "
                    + e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
        } finally {
            use(null);
        }
        return out;
    }

    /** Whether peer access from this context to {@code peer}'s is on (distinct devices only). */
    private final java.util.Set<CudaRuntime> peers = new java.util.HashSet<>();

    private void enablePeerAccess(CudaRuntime peer) {
        if (peers.contains(peer)) return;
        int[] can = new int[1];
        cuDeviceCanAccessPeer(can, device, peer.device);
        if (can[0] == 0) return;
        makeCurrent();
        try {
            cuCtxEnablePeerAccess(peer.context, 0);
        } catch (jcuda.CudaException e) {   // CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED: someone did it
            if (!String.valueOf(e.getMessage()).contains("ALREADY_ENABLED")) throw e;
        }
        peers.add(peer);
    }

    /** Whether kernels of this context may read {@code peer}'s memory directly (the copies are faster then). */
    public boolean peerAccess(CudaRuntime peer) {
        return peers.contains(peer);
    }

    /**
     * Copies {@code bytes} from {@code src} (memory of {@code from}'s context) to {@code dst} (of {@code to}'s), in
     * stream order on both sides: after the work queued so far on {@code to}'s legacy stream (its last use of dst)
     * and on {@code from}'s (what wrote src), before what {@code to}'s stream gets next. The host does not wait.
     * Leaves {@code to}'s context current.
     */
    public static void peerCopy(CudaRuntime from, CUdeviceptr src, CudaRuntime to, CUdeviceptr dst, long bytes) {
        to.makeCurrent();
        CUevent dstFree = event();
        cuEventRecord(dstFree, null);
        from.makeCurrent();
        cuStreamWaitEvent(null, dstFree, 0);   // an event of another context: allowed (cuStreamWaitEvent)
        cuMemcpyPeerAsync(dst, to.context, src, from.context, bytes, null);
        CUevent copied = event();
        cuEventRecord(copied, null);
        to.makeCurrent();
        cuStreamWaitEvent(null, copied, 0);
        cuEventDestroy(dstFree);   // each event destroyed in its own context; released once the waits are satisfied
        from.makeCurrent();
        cuEventDestroy(copied);
        to.makeCurrent();
    }

    /** cuCtxSynchronize on this runtime's context (left current). */
    public void synchronize() {
        makeCurrent();
        cuCtxSynchronize();
    }

    @Override
    public String toString() {
        return "cuda device " + ordinal + (created ? " (created context)" : "") + " " + deviceName;
    }

    public static synchronized boolean available() {
        return get() != null;
    }

    public static synchronized String unavailableReason() {
        get();
        return failure;
    }

    /** PTX text with the trailing NUL cuModuleLoadData needs, or null when the resource is absent. */
    static byte[] loadPtx(String resource) throws IOException {
        try (InputStream in = CudaRuntime.class.getResourceAsStream(resource)) {
            if (in == null) return null;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            out.write(0);
            return out.toByteArray();
        }
    }

    /** The primary context is per device, but "current" is per thread: set it on every thread that calls CUDA. */
    public void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    public synchronized CUfunction function(String name) {
        CUfunction f = functions.get(name);
        if (f != null) return f;
        RuntimeException last = null;
        for (CUmodule m : modules) {
            try {
                f = new CUfunction();
                cuModuleGetFunction(f, m, name);
                functions.put(name, f);
                return f;
            } catch (RuntimeException e) {   // CUDA_ERROR_NOT_FOUND in this module
                last = e;
            }
        }
        throw last != null ? last : new IllegalStateException("no kernel " + name);
    }

    /** Whether a kernel of this name is loaded (the sm_90a ones only when their module loaded). */
    public synchronized boolean has(String name) {
        try {
            function(name);
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Lets {@code kernel} use {@code bytes} of dynamic shared memory (over 48 KB must be opted into). */
    public synchronized void allowDynamicSmem(String kernel, int bytes) {
        Integer have = dynamicSmem.get(kernel);
        if (have != null && have >= bytes) return;
        cuFuncSetAttribute(function(kernel), CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
        dynamicSmem.put(kernel, bytes);
    }

    /** The stream for device-to-host copies of probes (non-blocking). */
    public synchronized CUstream copyStream() {
        if (copyStream == null) {
            copyStream = new CUstream();
            cuStreamCreate(copyStream, jcuda.driver.CUstream_flags.CU_STREAM_NON_BLOCKING);
        }
        return copyStream;
    }

    /** The stream for host-to-device weight uploads of streamed layers (non-blocking). */
    public synchronized CUstream uploadStream() {
        if (uploadStream == null) {
            uploadStream = new CUstream();
            cuStreamCreate(uploadStream, jcuda.driver.CUstream_flags.CU_STREAM_NON_BLOCKING);
        }
        return uploadStream;
    }

    /** An event without timing (for ordering between streams). */
    public static CUevent event() {
        CUevent e = new CUevent();
        cuEventCreate(e, jcuda.driver.CUevent_flags.CU_EVENT_DISABLE_TIMING);
        return e;
    }

    /** Free and total device memory in bytes. */
    public static long[] memInfo() {
        long[] free = new long[1], total = new long[1];
        cuMemGetInfo(free, total);
        return new long[]{free[0], total[0]};
    }

    // ---- small helpers ----

    public static CUdeviceptr alloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, Math.max(bytes, 4));
        return p;
    }

    public static CUdeviceptr upload(float[] data) {
        CUdeviceptr p = alloc((long) data.length * Sizeof.FLOAT);
        if (data.length > 0) cuMemcpyHtoD(p, Pointer.to(data), (long) data.length * Sizeof.FLOAT);
        return p;
    }

    public static CUdeviceptr upload(short[] data) {
        CUdeviceptr p = alloc((long) data.length * Sizeof.SHORT);
        if (data.length > 0) cuMemcpyHtoD(p, Pointer.to(data), (long) data.length * Sizeof.SHORT);
        return p;
    }

    public static CUdeviceptr upload(int[] data) {
        CUdeviceptr p = alloc((long) data.length * Sizeof.INT);
        if (data.length > 0) cuMemcpyHtoD(p, Pointer.to(data), (long) data.length * Sizeof.INT);
        return p;
    }

    public static float[] download(CUdeviceptr p, int n) {
        float[] out = new float[n];
        if (n > 0) cuMemcpyDtoH(Pointer.to(out), p, (long) n * Sizeof.FLOAT);
        return out;
    }

    public static short[] downloadShorts(CUdeviceptr p, int n) {
        short[] out = new short[n];
        if (n > 0) cuMemcpyDtoH(Pointer.to(out), p, (long) n * Sizeof.SHORT);
        return out;
    }

    public static void free(CUdeviceptr p) {
        if (p != null) cuMemFree(p);
    }

    /**
     * The stream kernels are launched on: null = the legacy default stream (every pass); a CUDA-graph capture
     * ({@link CudaGraph}) sets its own stream for the duration of the capture, on the capturing thread.
     */
    private final ThreadLocal<CUstream> launchStream = new ThreadLocal<>();

    void setLaunchStream(CUstream s) {
        if (s == null) launchStream.remove();
        else launchStream.set(s);
    }

    /** Launches a kernel on the default stream; args are CUdeviceptr (or null for a null pointer), Integer, Long, Float. */
    public void launch(String kernel, int gx, int gy, int bx, int sharedBytes, Object... args) {
        launchZ(kernel, gx, gy, 1, bx, sharedBytes, args);
    }

    /** As {@link #launch}, with a third grid dimension gz. */
    public void launchZ(String kernel, int gx, int gy, int gz, int bx, int sharedBytes, Object... args) {
        Pointer[] ps = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) ps[i] = Pointer.to(new CUdeviceptr());
            else if (a instanceof CUdeviceptr d) ps[i] = Pointer.to(d);
            else if (a instanceof Integer v) ps[i] = Pointer.to(new int[]{v});
            else if (a instanceof Long v) ps[i] = Pointer.to(new long[]{v});
            else if (a instanceof Float v) ps[i] = Pointer.to(new float[]{v});
            else throw new IllegalArgumentException("kernel argument " + i + ": " + a.getClass());
        }
        if (sharedBytes > 48 * 1024) allowDynamicSmem(kernel, sharedBytes);
        cuLaunchKernel(function(kernel), gx, gy, gz, bx, 1, 1, sharedBytes, launchStream.get(), Pointer.to(ps), null);
    }

    public static void sync() {
        cuCtxSynchronize();
    }

    /** float → bfloat16 bits, round to nearest even (the exhaustively tested codec in numeric.Precision). */
    public static short bf16Bits(float f) {
        return (short) modeldiff.numeric.Precision.BF16.toBits(f);
    }

    public static float bf16Round(float f) {
        return Float.intBitsToFloat((bf16Bits(f) & 0xffff) << 16);
    }

    /** The 16-bit bits of f: IEEE half when fp16, else bfloat16 (round to nearest even, as PyTorch's .to()). */
    public static short bits16(float f, boolean fp16) {
        return fp16 ? (short) modeldiff.numeric.Precision.FP16.toBits(f) : bf16Bits(f);
    }

    /** f rounded to IEEE half when fp16, else to bfloat16. */
    public static float round16(float f, boolean fp16) {
        return fp16 ? modeldiff.numeric.Precision.FP16.round(f) : bf16Round(f);
    }

    private int sms;

    /** The device's multiprocessor count (split-K planning). */
    public synchronized int smCount() {
        if (sms == 0) {
            int[] v = new int[1];
            jcuda.driver.CUdevice dev = new jcuda.driver.CUdevice();
            cuCtxGetDevice(dev);
            cuDeviceGetAttribute(v, jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
            sms = Math.max(1, v[0]);
        }
        return sms;
    }
}
