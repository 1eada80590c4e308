package modeldiff.cli;

import modeldiff.Fixtures;
import modeldiff.model.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --model as a Hugging Face id, found in a fake HF cache laid out as huggingface_hub lays it out; foreign formats in one line. */
class ModelLocatorTest {
    @TempDir
    Path tmp;

    private static final String MAIN = "0123456789abcdef0123456789abcdef01234567", OLD = "fedcba9876543210fedcba9876543210fedcba98";

    /** HUB/models--org--tiny/{refs/main, refs/v1, snapshots/MAIN, snapshots/OLD}, each snapshot holding a config.json. */
    private Path fakeHub(Path hub) throws Exception {
        Path repo = hub.resolve("models--org--tiny");
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs/main"), MAIN + "\n");
        Files.writeString(repo.resolve("refs/v1"), OLD);
        for (String h : new String[]{MAIN, OLD}) {
            Files.createDirectories(repo.resolve("snapshots").resolve(h));
            Files.writeString(repo.resolve("snapshots").resolve(h).resolve("config.json"), "{}");
        }
        return repo;
    }

    private ModelLocator.Env env(Map<String, String> vars) {
        return new ModelLocator.Env(vars::get, tmp.resolve("home"));
    }

    @Test
    void hubIdResolvesToTheSnapshotOfMainOrTheGivenRevision() throws Exception {
        Path repo = fakeHub(tmp.resolve("hub"));
        ModelLocator.Env e = env(Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString()));
        assertEquals(repo.resolve("snapshots").resolve(MAIN), ModelLocator.resolve("org/tiny", e));
        assertEquals(repo.resolve("snapshots").resolve(OLD), ModelLocator.resolve("org/tiny@v1", e));
        assertEquals(repo.resolve("snapshots").resolve(OLD), ModelLocator.resolve("org/tiny@" + OLD, e), "a commit hash names its snapshot");
    }

    @Test
    void cacheFolderFollowsHuggingFaceHubPrecedence() throws Exception {
        fakeHub(tmp.resolve("hfhome/hub"));
        fakeHub(tmp.resolve("home/.cache/huggingface/hub"));
        fakeHub(tmp.resolve("xdg/huggingface/hub"));
        assertTrue(ModelLocator.resolve("org/tiny", env(Map.of("HF_HOME", tmp.resolve("hfhome").toString()))).startsWith(tmp.resolve("hfhome/hub")));
        assertTrue(ModelLocator.resolve("org/tiny", env(Map.of("XDG_CACHE_HOME", tmp.resolve("xdg").toString()))).startsWith(tmp.resolve("xdg")));
        assertTrue(ModelLocator.resolve("org/tiny", env(Map.of())).startsWith(tmp.resolve("home/.cache/huggingface/hub")));
    }

    @Test
    void aModelNotInTheCacheGetsOneLineWithTheDownloadCommand() throws Exception {
        fakeHub(tmp.resolve("hub"));
        ModelLocator.Env e = env(Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString()));
        BadInputException x = assertThrows(BadInputException.class, () -> ModelLocator.resolve("meta-llama/Llama-3.2-1B", e));
        assertTrue(x.getMessage().contains("huggingface-cli download meta-llama/Llama-3.2-1B"), x.getMessage());
        assertTrue(x.getMessage().contains(tmp.resolve("hub").toString()), x.getMessage());
        BadInputException rev = assertThrows(BadInputException.class, () -> ModelLocator.resolve("org/tiny@v9", e));
        assertTrue(rev.getMessage().endsWith("huggingface-cli download org/tiny --revision v9"), rev.getMessage());
    }

    @Test
    void aFolderIsTakenAsGiven() {
        Path llama = Fixtures.model("llama");
        assertEquals(llama, ModelLocator.resolve(llama.toString(), env(Map.of())));
    }

    @Test
    void ggufAndPytorchFilesGetOneLineNamingTheFormat() throws Exception {
        Path gguf = tmp.resolve("model.gguf"), bin = tmp.resolve("pytorch_model.bin");
        Files.write(gguf, "GGUF\u0003\u0000\u0000\u0000 rest of a gguf file".getBytes(StandardCharsets.ISO_8859_1));
        Files.write(bin, new byte[]{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});
        CliRun r = CliRun.of("info", "--model", gguf.toString());
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines(), r.toString());
        assertTrue(r.err().contains("GGUF is not supported"), r.toString());
        CliRun folder = CliRun.of("lint", "--model", tmp.toString());
        assertEquals(2, folder.code(), folder.toString());
        assertTrue(folder.err().contains("GGUF is not supported") || folder.err().contains("PyTorch checkpoint"), folder.toString());
        // As a trace (compare --candidate): the safetensors reader names the format too.
        CliRun trace = CliRun.of("compare", "--model", Fixtures.model("llama").toString(), "--reference", "reference", "--candidate", gguf.toString());
        assertEquals(2, trace.code(), trace.toString());
        assertEquals(1, trace.errLines(), trace.toString());
        assertTrue(trace.err().contains("GGUF is not supported"), trace.toString());
    }
}
