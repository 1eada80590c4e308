package modeldiff.forward.torch;

import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Loads libtorch through DJL once per JVM, offline, and says why when it can't.
 *
 * <p>The native CPU build comes from the Maven jar {@code ai.djl.pytorch:pytorch-native-cpu:2.7.1:linux-x86_64} and
 * the JNI glue from {@code pytorch-jni}; DJL extracts both into its cache folder (DJL_CACHE_DIR / ENGINE_CACHE_DIR,
 * system property or environment variable, default ~/.djl.ai) and loads them from there. {@code ai.djl.offline=true}
 * is set unless the user set it, so DJL never tries to download a native build: a machine with only Maven Central
 * works, and a machine without the native jar fails with a message instead of a download.
 *
 * <p>Every failure to load (missing jar, wrong platform, unloadable .so) is caught here and turned into
 * {@link #unavailableReason()}: no forward pass touches native code before {@link #require()} succeeded.
 */
public final class TorchRuntime {
    /** System property: intra-op threads for torch CPU kernels (default: available processors). */
    public static final String THREADS_PROPERTY = "modeldiff.torch.threads";

    private static volatile boolean attempted;
    private static volatile String failure;
    private static volatile String version;

    private TorchRuntime() {
    }

    /** Loads the engine if not yet tried; true when libtorch is usable in this JVM. */
    public static synchronized boolean available() {
        if (!attempted) {
            attempted = true;
            if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null)
                System.setProperty("ai.djl.offline", "true");
            chooseCacheDir();
            // DJL reads these at engine start; without them libtorch picks its own default.
            int threads = defaultThreads();
            if (System.getProperty("ai.djl.pytorch.num_threads") == null)
                System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
            if (System.getProperty("ai.djl.pytorch.num_interop_threads") == null)
                System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
            try {
                Engine e = Engine.getEngine("PyTorch");
                version = e.getVersion();
            } catch (Throwable t) {   // UnsatisfiedLinkError, EngineException, IllegalArgumentException ...
                failure = t.getClass().getSimpleName() + ": " + firstLine(t.getMessage())
                        + (t.getCause() != null ? " (cause: " + t.getCause().getClass().getSimpleName() + ": "
                        + firstLine(t.getCause().getMessage()) + ")" : "");
            }
        }
        return failure == null;
    }

    /** Why libtorch could not be loaded, or null when it could (loads it if not yet tried). */
    public static String unavailableReason() {
        return available() ? null : failure;
    }

    /** Throws with the reason when libtorch can't be loaded. */
    public static void require() {
        if (!available())
            throw new IllegalStateException("PyTorch native library could not be loaded through DJL: " + failure
                    + ". torch:* needs ai.djl.pytorch:pytorch-native-cpu (linux-x86_64) on the class path; see docs/torch.md");
    }

    /**
     * DJL extracts libtorch (~450 MB) into DJL_CACHE_DIR, default ~/.djl.ai. When neither DJL_CACHE_DIR nor
     * ENGINE_CACHE_DIR is set and the home folder can't take it (read-only or missing home on a CI box), use
     * java.io.tmpdir instead of failing.
     */
    private static void chooseCacheDir() {
        for (String key : new String[]{"DJL_CACHE_DIR", "ENGINE_CACHE_DIR"})
            if (System.getProperty(key) != null || System.getenv(key) != null) return;
        java.nio.file.Path home = java.nio.file.Path.of(System.getProperty("user.home", "/"), ".djl.ai");
        try {
            java.nio.file.Files.createDirectories(home);
            if (java.nio.file.Files.isWritable(home)) return;
        } catch (java.io.IOException | SecurityException e) {
            // fall through to the temporary folder
        }
        String user = System.getProperty("user.name", "user").replaceAll("[^A-Za-z0-9_.-]", "_");
        System.setProperty("DJL_CACHE_DIR", java.nio.file.Path.of(System.getProperty("java.io.tmpdir"), "djl.ai-" + user).toString());
    }

    /** libtorch's version, e.g. "2.7.1" (loads it if not yet tried; null when unavailable). */
    public static String version() {
        available();
        return version;
    }

    /** modeldiff.torch.threads, else the number of available processors. */
    public static int defaultThreads() {
        String p = System.getProperty(THREADS_PROPERTY);
        if (p != null && !p.isBlank()) {
            try {
                int n = Integer.parseInt(p.trim());
                if (n > 0) return n;
            } catch (NumberFormatException ignored) {
                // fall through to the default, as for any non-positive value
            }
            throw new IllegalArgumentException(THREADS_PROPERTY + " must be a positive integer, got '" + p + "'");
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /** torch.set_num_threads: process-wide in libtorch, so each run sets its own count. */
    static void setThreads(int n) {
        if (JniUtils.getNumThreads() != n) JniUtils.setNumThreads(n);
    }

    /**
     * The dtypes this DJL build can hand to native code. DJL 0.36.0's JNI maps only DJL dtype ordinals 0..8 to torch
     * scalar types and answers any other (BFLOAT16 is 11) with a bare C++ {@code throw;}, i.e. std::terminate: the JVM
     * dies with "terminate called without an active exception". Refuse such dtypes here, in Java.
     */
    static DataType checked(DataType t) {
        if (t.ordinal() > DataType.COMPLEX64.ordinal())
            throw new UnsupportedOperationException("dtype " + t + " is refused before native code: DJL 0.36.0 / PyTorch "
                    + "2.7.1 has no JNI mapping for it and would abort the JVM (docs/torch.md)");
        return t;
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
