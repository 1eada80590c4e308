package modeldiff.cli;

import modeldiff.model.BadInputException;
import modeldiff.model.FileFormats;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Turns a --model argument into a model folder: a folder as given, or a Hugging Face id ORG/NAME[@REVISION] looked up
 * offline in the local HF cache, where transformers users already have their models. The cache layout is
 * huggingface_hub's (https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
 * {@code HUB/models--ORG--NAME/refs/REVISION} holds a commit hash, {@code snapshots/HASH/} the files. HUB is
 * $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
 * (https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables).
 */
final class ModelLocator {
    static final String HELP = "Model folder (config.json + *.safetensors), or a Hugging Face id ORG/NAME[@REVISION] found in the "
            + "local HF cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub); read offline, never modified.";
    private static final Pattern HUB_ID = Pattern.compile("([A-Za-z0-9][\\w.-]*)/([A-Za-z0-9][\\w.-]*)(?:@([\\w./-]+))?");

    /** The environment lookups, a seam so tests use a fake cache instead of mutating the real environment. */
    record Env(Function<String, String> getenv, Path home) {
        static Env system() {
            return new Env(System::getenv, Path.of(System.getProperty("user.home")));
        }
    }

    private ModelLocator() {
    }

    /** picocli converter for --model options: bad input becomes a one-line parameter error (exit 2). */
    static final class Converter implements CommandLine.ITypeConverter<Path> {
        @Override
        public Path convert(String value) {
            try {
                return resolve(value, Env.system());
            } catch (BadInputException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    static Path resolve(String arg, Env env) {
        Path p = Path.of(arg);
        if (Files.isRegularFile(p)) throw new BadInputException(fileRefusal(p));
        if (Files.isDirectory(p)) {
            checkFolderFormat(p);
            return p;
        }
        Matcher m = HUB_ID.matcher(arg);
        if (!m.matches() || p.isAbsolute() || arg.startsWith(".")) return p;   // Model.open names the missing folder
        return snapshot(m.group(1), m.group(2), m.group(3), env);
    }

    static Path hubCache(Env env) {
        String hub = env.getenv().apply("HF_HUB_CACHE");
        if (hub != null && !hub.isBlank()) return Path.of(hub);
        String home = env.getenv().apply("HF_HOME");
        if (home != null && !home.isBlank()) return Path.of(home, "hub");
        String xdg = env.getenv().apply("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "huggingface", "hub");
        return env.home().resolve(".cache/huggingface/hub");
    }

    private static Path snapshot(String org, String name, String revision, Env env) {
        Path hub = hubCache(env);
        Path repo = hub.resolve("models--" + org + "--" + name);
        String rev = revision == null ? "main" : revision;
        Path dir = null;
        try {
            Path ref = repo.resolve("refs").resolve(rev);
            if (Files.isRegularFile(ref)) dir = repo.resolve("snapshots").resolve(Files.readString(ref).trim());
            else if (Files.isDirectory(repo.resolve("snapshots").resolve(rev))) dir = repo.resolve("snapshots").resolve(rev);
        } catch (IOException | RuntimeException e) {
            dir = null;
        }
        if (dir == null || !Files.isDirectory(dir))
            throw new BadInputException(org + "/" + name + (revision == null ? "" : "@" + revision) + ": not a folder here, and not in the local "
                    + "Hugging Face cache " + hub + "; download it with: huggingface-cli download " + org + "/" + name
                    + (revision == null ? "" : " --revision " + revision));
        checkFolderFormat(dir);
        return dir;
    }

    private static String fileRefusal(Path p) {
        String foreign = FileFormats.refusal(p);
        if (foreign != null) return foreign;
        return p + ": is a file; --model takes the release's folder (config.json + *.safetensors)";
    }

    /** A folder without config.json that holds a foreign format's files says so, instead of "no config.json". */
    private static void checkFolderFormat(Path dir) {
        if (Files.exists(dir.resolve("config.json"))) return;
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.sorted().toList()) {
                if (!Files.isRegularFile(f)) continue;
                String foreign = FileFormats.refusal(f);
                if (foreign != null) throw new BadInputException(foreign);
            }
        } catch (IOException e) {
            // Model.open reports the unreadable folder.
        }
    }
}
