package modeldiff.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The two JNI libraries behind the tokenizers, loaded offline.
 *
 * <p>{@code ai.djl.huggingface:tokenizers} carries {@code native/lib/linux-x86_64/cpu/libtokenizers.so} and
 * {@code ai.djl.sentencepiece:sentencepiece} carries {@code native/lib/linux-x86_64/libsentencepiece_native.so}. DJL
 * copies the one for this platform from the class path into its cache folder (DJL_CACHE_DIR / ENGINE_CACHE_DIR,
 * default ~/.djl.ai) and loads it from there; only when the jar lacks it does DJL try a download. Setting
 * {@code ai.djl.offline=true} (unless the user chose) turns that download into an error message, so nothing is ever
 * fetched at run time. {@link #main} is what {@code .ci/run} calls to show it.
 */
public final class NativeLibraries {
    private NativeLibraries() {
    }

    /** Before the first native call: offline mode, and a writable cache folder. */
    static synchronized void prepare() {
        if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null)
            System.setProperty("ai.djl.offline", "true");
        for (String key : new String[]{"DJL_CACHE_DIR", "ENGINE_CACHE_DIR"})
            if (System.getProperty(key) != null || System.getenv(key) != null) return;
        Path home = Path.of(System.getProperty("user.home", "/"), ".djl.ai");
        try {
            Files.createDirectories(home);
            if (Files.isWritable(home)) return;
        } catch (IOException | SecurityException e) {
            // fall through to the temporary folder
        }
        String user = System.getProperty("user.name", "user").replaceAll("[^A-Za-z0-9_.-]", "_");
        System.setProperty("DJL_CACHE_DIR", Path.of(System.getProperty("java.io.tmpdir"), "djl.ai-" + user).toString());
    }

    /** The cache folder DJL copies the libraries into. */
    static Path cacheDir() {
        for (String key : new String[]{"ENGINE_CACHE_DIR", "DJL_CACHE_DIR"}) {
            String v = System.getProperty(key, System.getenv(key));
            if (v != null) return Path.of(v);
        }
        return Path.of(System.getProperty("user.home", "/"), ".djl.ai");
    }

    /**
     * Loads the tokenizers library by tokenizing with the shipped demo tokenizer and, given a tokenizer.model path,
     * the SentencePiece library too; prints what loaded and what landed in the cache. Exit 0 when all load, 1 otherwise.
     */
    public static void main(String[] args) throws Exception {
        prepare();
        Path work = Files.createTempDirectory("modeldiff-natives");
        try {
            Path demo = work.resolve("demo");
            modeldiff.demo.DemoAssets.writeTokenizer(demo);
            try (ReleaseTokenizer t = ReleaseTokenizer.open(demo)) {
                int[] ids = t.encode("def f(x):", true).ids();
                System.out.println("tokenizers (HF, JNI): loaded offline; demo tokenizer encodes \"def f(x):\" as "
                        + java.util.Arrays.toString(ids));
            }
            if (args.length > 0) System.out.println("sentencepiece (JNI): " + SlowTokenizer.selfCheck(Path.of(args[0])));
            System.out.println("native libraries copied from the jars into " + cacheDir() + ": " + listLibraries(cacheDir()));
        } catch (Throwable e) {
            System.out.println("native tokenizer library failed to load offline: " + e);
            System.exit(1);
        } finally {
            try (var s = Files.walk(work)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    static java.util.List<String> listLibraries(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return java.util.List.of();
        try (var s = Files.walk(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".so")).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }
}
