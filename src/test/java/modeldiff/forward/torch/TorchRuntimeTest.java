package modeldiff.forward.torch;

import ai.djl.ndarray.types.DataType;
import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading, offline operation, the bf16 guard, threads and the timing hook. */
class TorchRuntimeTest {

    /** torch:bf16 is refused in Java, before any native call: this test needs no native library at all. */
    @Test
    void bf16RefusedBeforeNativeCode() {
        BadInputException e = assertThrows(BadInputException.class, () -> Implementations.create("torch:bf16"));
        assertTrue(e.getMessage().contains("bfloat16"), e.getMessage());
        assertThrows(BadInputException.class, () -> new TorchPass(Precision.BF16, Fixes.NONE));
        assertThrows(BadInputException.class, () -> Implementations.create("torch:fp64"));
        assertThrows(BadInputException.class, () -> Implementations.create("torch:nonsense"));
        UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class,
                () -> TorchRuntime.checked(DataType.BFLOAT16));
        assertTrue(u.getMessage().contains("abort"), u.getMessage());
        assertEquals(DataType.FLOAT16, TorchRuntime.checked(DataType.FLOAT16));
    }

    @Test
    void registered() {
        assertTrue(Implementations.available().containsAll(List.of("torch:fp32", "torch:fp16")));
        assertFalse(Implementations.available().contains("torch:bf16"));
        assertEquals("torch:fp32", Implementations.create("torch:fp32").name());
        assertEquals("float16", Implementations.create("torch:fp16").dtype());
    }

    @Test
    void threadsConfigurable() {
        String old = System.getProperty(TorchRuntime.THREADS_PROPERTY);
        try {
            System.setProperty(TorchRuntime.THREADS_PROPERTY, "3");
            assertEquals(3, new TorchPass(Precision.FP32, Fixes.NONE).threads());
            System.setProperty(TorchRuntime.THREADS_PROPERTY, "zero");
            assertThrows(IllegalArgumentException.class, TorchRuntime::defaultThreads);
            System.clearProperty(TorchRuntime.THREADS_PROPERTY);
            assertEquals(Runtime.getRuntime().availableProcessors(), TorchRuntime.defaultThreads());
        } finally {
            if (old == null) System.clearProperty(TorchRuntime.THREADS_PROPERTY);
            else System.setProperty(TorchRuntime.THREADS_PROPERTY, old);
        }
        assertEquals(1, new TorchPass(Precision.FP16, Fixes.NONE, 1).threads());
        assertThrows(IllegalArgumentException.class, () -> new TorchPass(Precision.FP32, Fixes.NONE, 0));
    }

    /** One and two threads give the same answer to within fp32 noise; the trace records the count. */
    @Test
    void runsWithOneAndTwoThreads() {
        TorchTests.assumeTorch();
        Model model = Model.open(Fixtures.model("qwen3"));
        ForwardInput in = new ForwardInput(new int[]{1, 5, 9, 77, 3}, 0);
        Trace one = new TorchPass(Precision.FP32, Fixes.NONE, 1).run(model, in, ProbeLevel.LAYERS);
        Trace two = new TorchPass(Precision.FP32, Fixes.NONE, 2).run(model, in, ProbeLevel.LAYERS);
        assertEquals("1", one.extra().get("torch_threads"));
        assertEquals("2", two.extra().get("torch_threads"));
        assertTrue(Metrics.logL2(one.probe("logits").data(), two.probe("logits").data()) <= -6);
    }

    /** The timing hook runs and returns seconds (no assertion on speed). */
    @Test
    void timingHook() {
        TorchTests.assumeTorch();
        Model model = Model.open(Fixtures.model("llama"));
        ForwardPass pass = new TorchPass(Precision.FP16, Fixes.NONE);
        double s = TorchPass.timeForwards(pass, model, new ForwardInput(new int[]{1, 2, 3, 4}, 0), ProbeLevel.LAYERS, 3);
        System.out.printf("torch:fp16 llama, 3 forwards of 4 tokens: %.4f s%n", s);
        assertTrue(s > 0);
    }

    /**
     * A fresh JVM with ai.djl.offline=true, an empty DJL cache folder and every HTTP(S) proxy pointed at a closed
     * local port loads libtorch from the Maven jars and runs a forward: nothing is fetched at run time.
     */
    @Test
    void worksOfflineWithAnEmptyCache(@TempDir Path tmp) throws Exception {
        TorchTests.assumeTorch();   // the child can't do better than this JVM
        Path cache = tmp.resolve("djl-cache");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(),
                "-cp", System.getProperty("java.class.path"),
                "-Dai.djl.offline=true",
                "-DDJL_CACHE_DIR=" + cache,
                "-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=9",
                "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9",
                "-Dmodeldiff.torch.threads=1",
                OfflineMain.class.getName(), Fixtures.model("llama").toAbsolutePath().toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        for (String v : List.of("DJL_CACHE_DIR", "ENGINE_CACHE_DIR", "PYTORCH_LIBRARY_PATH", "PYTORCH_VERSION",
                "PYTORCH_FLAVOR", "DJL_OFFLINE")) pb.environment().remove(v);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "child JVM did not finish");
        System.out.print(out);
        try {
            assertEquals(0, p.exitValue(), "child failed:\n" + out);
            assertTrue(out.contains("OFFLINE-OK"), out);
            try (Stream<Path> s = Files.walk(cache)) {
                List<String> names = s.map(f -> f.getFileName().toString()).toList();
                assertTrue(names.stream().anyMatch(n -> n.startsWith("libtorch")), "libtorch not extracted into the fresh cache: " + names);
            }
        } finally {
            deleteTree(cache);   // ~450 MB of extracted libtorch
        }
    }

    /** Entry point of the child JVM of {@link #worksOfflineWithAnEmptyCache}. */
    public static final class OfflineMain {
        public static void main(String[] args) {
            if (!TorchRuntime.available()) {
                System.out.println("UNAVAILABLE " + TorchRuntime.unavailableReason());
                System.exit(2);
            }
            Model model = Model.open(Path.of(args[0]));
            Trace t = new TorchPass(Precision.FP32, Fixes.NONE).run(model, new ForwardInput(new int[]{1, 2, 3}, 0), ProbeLevel.LAYERS);
            double[] logits = t.probe("logits").data();
            for (double d : logits) if (!Double.isFinite(d)) System.exit(3);
            System.out.println("OFFLINE-OK libtorch " + TorchRuntime.version() + " logits[0]=" + logits[0]
                    + " offline=" + System.getProperty("ai.djl.offline"));
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }
}
