package modeldiff.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both tokenizer libraries load from the jars with nothing fetched: a fresh JVM with ai.djl.offline=true, an empty DJL
 * cache folder and every HTTP(S) proxy pointed at a closed local port runs {@link NativeLibraries#main} (what
 * .ci/run shows), and the libraries it used are the ones copied from the jars into that empty cache.
 */
class NativeOfflineTest {
    @Test
    void tokenizerLibrariesLoadOfflineFromTheJars(@TempDir Path tmp) throws Exception {
        Path cache = tmp.resolve("djl-cache");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-cp", System.getProperty("java.class.path"),
                "-Dai.djl.offline=true", "-DDJL_CACHE_DIR=" + cache,
                "-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=9", "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9",
                NativeLibraries.class.getName(), Path.of("src/test/resources/tokenizers/sp-bpe/tokenizer.model").toAbsolutePath().toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        for (String v : List.of("DJL_CACHE_DIR", "ENGINE_CACHE_DIR", "DJL_OFFLINE", "RUST_LIBRARY_PATH")) pb.environment().remove(v);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(2, TimeUnit.MINUTES), "child JVM did not finish");
        System.out.print(out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("tokenizers (HF, JNI): loaded offline") && out.contains("sentencepiece (JNI): loaded offline"), out);
        try (Stream<Path> s = Files.walk(cache)) {
            List<String> names = s.map(f -> f.getFileName().toString()).toList();
            assertTrue(names.contains("libtokenizers.so"), "libtokenizers.so not copied into the fresh cache: " + names);
            assertTrue(names.contains("libsentencepiece_native.so"), "libsentencepiece_native.so not copied into the fresh cache: " + names);
        }
    }
}
