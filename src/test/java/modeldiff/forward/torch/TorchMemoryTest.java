package modeldiff.forward.torch;

import modeldiff.Fixtures;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 200 consecutive forwards in one JVM must not grow native memory: every tensor lives in the forward's NDManager (or
 * a layer's sub-manager) and is freed when it closes. VmRSS from /proc/self/status is read after a GC every 5
 * forwards. RSS here is mostly libtorch's mapped code and glibc's malloc arenas, which breathe by tens of MB from one
 * reading to the next without a trend (2000 forwards measured: 450-565 MB, docs/torch.md), so the test compares the
 * medians of the second and last quarters. With the managers left unclosed (tried once) RSS grew ~6.8 MB per forward
 * and the medians 676 MB apart.
 */
@org.junit.jupiter.api.Tag("memory")
class TorchMemoryTest {
    static final int FORWARDS = 200, EVERY = 5;
    /**
     * Forwards run before the first reading: native memory climbs while libtorch's and malloc's pools fill (fp16,
     * 2026-12-06, in a JVM of its own: 248 MB after forward 5, 327 after 100, 370 after 200, medians of the measured
     * quarters 54 MB apart), then breathes without a trend (600 fp16 forwards: 275 … 428 MB, readings every 50).
     */
    static final int WARMUP = 100;
    /** Allowed growth of the median VmRSS from forwards 51-100 to forwards 151-200. */
    static final long SLACK_KB = 64 * 1024;

    @Test
    void rssFlatOver200ForwardsFp32() throws IOException {
        check(Precision.FP32);
    }

    @Test
    void rssFlatOver200ForwardsFp16() throws IOException {
        check(Precision.FP16);
    }

    private static void check(Precision precision) throws IOException {
        TorchTests.assumeTorch();
        Path status = Path.of("/proc/self/status");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isReadable(status), "no /proc/self/status on this OS");
        Model model = Model.open(Fixtures.model("gemma3"));
        int[] tokens = new int[32];
        for (int i = 0; i < tokens.length; i++) tokens[i] = i == 0 ? 2 : (37 * i + 11) % model.config.vocabSize;
        ForwardInput in = new ForwardInput(tokens, 0);
        TorchPass pass = new TorchPass(precision, Fixes.NONE);
        for (int i = 0; i < WARMUP; i++) pass.run(model, in, ProbeLevel.ALL);
        long before = rssKb(status);
        long[] rss = new long[FORWARDS / EVERY];
        long t0 = System.nanoTime();
        for (int i = 1; i <= FORWARDS; i++) {
            pass.run(model, in, ProbeLevel.ALL);
            if (i % EVERY == 0) rss[i / EVERY - 1] = rssKb(status);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        int q = rss.length / 4;
        long second = median(Arrays.copyOfRange(rss, q, 2 * q)), last = median(Arrays.copyOfRange(rss, 3 * q, rss.length));
        long min = Arrays.stream(rss).min().orElseThrow(), max = Arrays.stream(rss).max().orElseThrow();
        System.out.printf("%s gemma3 32 tokens probes=all, %d forwards after %d unmeasured, in %.1f s (%d threads); VmRSS MB: before %.0f, "
                        + "after forward 5 %.0f, 100 %.0f, 200 %.0f; min %.0f max %.0f; median forwards 51-100 %.0f, 151-200 %.0f (VmRSS less the committed Java heap)%n",
                pass.name(), FORWARDS, WARMUP, seconds, pass.threads(), mb(before), mb(rss[0]), mb(rss[100 / EVERY - 1]),
                mb(rss[rss.length - 1]), mb(min), mb(max), mb(second), mb(last));
        assertTrue(last - second < SLACK_KB, "median VmRSS grew by " + (last - second) / 1024 + " MB: " + Arrays.toString(rss));
    }

    private static double mb(long kb) {
        return kb / 1024.0;
    }

    private static long median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    /**
     * VmRSS in kB after a GC, less the Java heap's committed size: what is left is native memory (libtorch, DJL,
     * malloc arenas), where a leak of unclosed NDArrays shows. In the full suite's JVM the heap's committed size moves
     * by hundreds of MB as G1 shrinks and regrows it (CI on 2026-12-06: "before" 2536 MB, then 1002 … 1214 MB over
     * the 200 forwards, medians 1104 → 1208 MB, which failed the 64 MB slack with no leak: 600 fp16 forwards alone
     * stayed between 275 and 428 MB with no trend), and that is not what this test is about.
     */
    static long rssKb(Path status) throws IOException {
        System.gc();
        long heapKb = Runtime.getRuntime().totalMemory() / 1024;
        for (String l : Files.readAllLines(status))
            if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) - heapKb;
        throw new IllegalStateException("no VmRSS line");
    }
}
